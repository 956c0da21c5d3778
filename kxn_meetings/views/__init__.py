"""Blueprints, one per area, and the error pages."""

from __future__ import annotations

import logging

from flask import Flask, g, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from ..database import READ_ONLY_METHODS, discard_session, is_disconnect, is_unavailable, roll_back
from ..extensions import login_manager
from ..urls import IdConverter

log = logging.getLogger(__name__)

TITLES = {
    400: "That request could not be understood",
    403: "You do not have access to this page",
    404: "Page not found",
    405: "That action is not allowed here",
    410: "That link is no longer valid",
    413: "That upload is too large",
    429: "Too many attempts",
    500: "Something went wrong on our side",
    503: "Please try again in a moment",
}
RETRY_AFTER_SECONDS = 5
UNAVAILABLE = (
    "The site lost its connection to the database for a moment. Please try again in a few seconds; "
    "if what you sent did not go through, sending it again is safe."
)
# Set by the error handler on a read-only request that lost its connection; RetryReads then runs it again, at most
# READ_RETRIES times. Two: a restart that finds an idle connection dead can end the fresh one the retry opened too.
RETRY = "kxn.retry_on_fresh_connection"
RETRIED = "kxn.retried"
READ_RETRIES = 2


def init_app(app: Flask) -> None:
    from . import (
        auth,
        calendar,
        feedback,
        insights,
        invitations,
        main,
        meetings,
        members,
        messages,
        notes,
        outbox,
        public_pages,
        replies,
        rooms,
        series,
    )

    app.url_map.converters["id"] = IdConverter
    public_pages.init_app(app)
    areas = (auth, calendar, feedback, insights, invitations, main)
    for area in (*areas, meetings, members, messages, notes, outbox, replies, rooms, series):
        app.register_blueprint(area.bp)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        if not _reads_as_a_form():
            return _error_page(
                400,
                "What was sent could not be read as a form from this site's pages, so nothing was changed. "
                "Please go back, reload the page and try again.",
            )
        return _error_page(
            400,
            "The form had expired or did not come from this site. Please go back, "
            "reload the page and try again. Nothing was changed.",
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code is None or error.code < 400:
            return error
        response = _error_page(error.code, error.description if error.code not in (404, 500) else None)
        retry_after = getattr(error, "retry_after", None)
        if retry_after:
            response[2]["Retry-After"] = str(retry_after)
        return response

    @app.errorhandler(DBAPIError)
    def database_error(error: DBAPIError):
        if not is_unavailable(error):
            return unexpected_error(error)
        discard_session()
        if (
            is_disconnect(error)
            and request.method in READ_ONLY_METHODS
            and request.environ.get(RETRIED, 0) < READ_RETRIES
        ):
            log.warning(
                "database connection lost during %s %s; trying again on a fresh one", request.method, request.path
            )
            request.environ[RETRY] = True
            return "", 503
        log.warning("database unavailable during %s %s: %s", request.method, request.path, error.orig)
        return _unavailable_page()

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        app.logger.exception("unhandled error")
        roll_back()
        return _error_page(500, None)

    app.wsgi_app = RetryReads(app.wsgi_app)  # type: ignore[method-assign]
    calendar.init_app(app)


def _unavailable_page():
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}
    if request.path.endswith(".ics"):  # calendar apps and feed readers get the status and a line of text
        return UNAVAILABLE + "\n", 503, dict(headers, **{"Content-Type": "text/plain; charset=utf-8"})
    # The page is drawn without the database: the member who was signed in is not looked up again.
    g._login_user = login_manager.anonymous_user()
    return render_template("errors/error.html", code=503, title=TITLES[503], message=UNAVAILABLE), 503, headers


class RetryReads:
    """WSGI middleware: a GET or HEAD whose database connection was lost midway runs again, from the start, on a
    fresh connection (at most READ_RETRIES times). Reads change nothing, so another try is always safe; a failed
    try's answer is dropped before anything of it reaches the client."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") not in READ_ONLY_METHODS:
            return self.wsgi_app(environ, start_response)
        as_received = dict(environ)  # middleware further in (ProxyFix) rewrites the environ it is given
        started: list[tuple] = []

        def hold(status, headers, exc_info=None):
            started.append((status, headers, exc_info))
            return lambda data: None  # Flask never writes through start_response's callable

        body = self.wsgi_app(environ, hold)
        retries = 0
        while environ.get(RETRY):
            getattr(body, "close", lambda: None)()
            retries += 1
            environ = dict(as_received, **{RETRIED: retries})
            body = self.wsgi_app(environ, hold)
        start_response(*started[-1])
        return body


def _error_page(code: int, message: str | None):
    headers: dict[str, str] = {}
    title = TITLES.get(code, "Error")
    return render_template("errors/error.html", code=code, title=title, message=message), code, headers


FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def _reads_as_a_form() -> bool:
    """Whether the request's body is of a type a browser sends from a form (multipart with its boundary). A CSRF
    refusal of anything else is not about an expired page."""
    if request.mimetype not in FORM_TYPES:
        return False
    return request.mimetype != "multipart/form-data" or bool(request.mimetype_params.get("boundary"))
