"""Blueprints, one per area, and the error pages."""

from __future__ import annotations

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..extensions import db
from ..urls import IdConverter

TITLES = {
    400: "That request could not be understood",
    403: "You do not have access to this page",
    404: "Page not found",
    405: "That action is not allowed here",
    410: "That link is no longer valid",
    413: "That upload is too large",
    429: "Too many attempts",
    500: "Something went wrong on our side",
}


def init_app(app: Flask) -> None:
    from . import auth, calendar, invitations, main, meetings, members, notes, outbox, replies

    app.url_map.converters["id"] = IdConverter
    app.register_blueprint(main.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(meetings.bp)
    app.register_blueprint(calendar.bp)
    app.register_blueprint(invitations.bp)
    app.register_blueprint(members.bp)
    app.register_blueprint(outbox.bp)
    app.register_blueprint(notes.bp)
    app.register_blueprint(replies.bp)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _error_page(400, "The form had expired or did not come from this site. Please go back, "
                                "reload the page and try again. Nothing was changed.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code is None or error.code < 400:
            return error
        response = _error_page(error.code, error.description if error.code not in (404, 500) else None)
        if getattr(error, "retry_after", None):
            response[2]["Retry-After"] = str(error.retry_after)
        return response

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        app.logger.exception("unhandled error")
        db.session.rollback()
        return _error_page(500, None)


def _error_page(code: int, message: str | None):
    headers: dict[str, str] = {}
    title = TITLES.get(code, "Error")
    return render_template("errors/error.html", code=code, title=title, message=message), code, headers
