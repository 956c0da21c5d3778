"""Calendar files: one meeting, the network's feed, and each member's own feed."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

from flask import Blueprint, Flask, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.http import http_date, parse_etags, quote_etag, unquote_etag

from ..forms import ConfirmForm
from ..models import utcnow
from ..security import is_organiser
from ..services import calendars as calendar_service
from ..services import rsvps as rsvp_service
from ..services import series as series_service
from ..urls import external_url
from .public_pages import is_visitor, same_for_every_visitor
from .transactions import transaction

bp = Blueprint("calendar", __name__)

ICS_TYPE = "text/calendar; charset=utf-8"
PUBLIC_CACHE = "public, max-age=300"


def _ics(
    body: bytes,
    *,
    cache_control: str,
    filename: str | None = None,
    etag: str | None = None,
    last_modified: dt.datetime | None = None,
) -> Response:
    response = Response(body, content_type=ICS_TYPE)
    if filename:
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.set_etag(etag or hashlib.sha256(body).hexdigest()[:32])
    if last_modified is not None:
        response.last_modified = last_modified
    response.headers["Cache-Control"] = cache_control
    return response


@bp.route("/meetings/<ref>/calendar.ics")
@same_for_every_visitor
def meeting_ics(ref: str):
    # Who is signed in is asked only where the answer matters: a public meeting's file is the same for all.
    head = calendar_service.meeting_head(ref)
    if head is None or (head.status.is_draft and not is_organiser()):
        abort(404)
    members_only = head.visibility.is_members_only
    if members_only and not current_user.is_authenticated:
        return redirect(url_for("auth.sign_in", next=request.path))
    # A request without a session cookie is nobody's: its file stays the one shared caches may keep for all.
    own = not is_visitor() and current_user.is_authenticated and calendar_service.sees_join_link(head, current_user)
    download = calendar_service.meeting_download(head, include_join_link=own)
    if download is None:
        abort(404)
    response = _ics(
        download.body,
        filename=download.filename,
        etag=download.etag,
        cache_control=OWN_COPY if own else "private, max-age=300" if members_only else PUBLIC_CACHE,
    )
    return response.make_conditional(request)


# Her own copy, with the join link: for her browser alone, and asked again each time (she may stop going).
OWN_COPY = "private, no-cache"


@bp.route("/meetings/<ref>/answer/<token>/calendar.ics")
def personal_meeting_ics(ref: str, token: str):
    """The meeting's file for a member who came by her personal link and is not signed in (the meeting may be for
    members only): the shareable file, with the join link once she is going, as in the invitation she was emailed
    (the same event: a calendar importing this one must not lose the link). A cancelled meeting's file says
    STATUS:CANCELLED, for calendars that hold it."""
    head = calendar_service.meeting_head(ref)
    invitation = None if head is None or head.status.is_draft else rsvp_service.invitation_by_token(head.id, token)
    if head is None or invitation is None:
        abort(404)
    own = calendar_service.sees_join_link(head, invitation.member)
    download = calendar_service.meeting_download(head, include_join_link=own)
    if download is None:
        abort(404)
    response = _ics(download.body, filename=download.filename, etag=download.etag, cache_control=OWN_COPY)
    return response.make_conditional(request)


def _http_date(last_modified: dt.datetime | None) -> dt.datetime | None:
    """Last-Modified to whole seconds, held back by one while that second lasts: a later change in the
    same second would otherwise carry the same date and be answered 304 to If-Modified-Since."""
    if last_modified is None:
        return None
    whole = last_modified.replace(microsecond=0)
    return whole if utcnow().replace(microsecond=0) > whole else whole - dt.timedelta(seconds=1)


def conditional_feed(etag: str, newest: dt.datetime | None, body: Callable[[], bytes]) -> Response:
    """A feed's 304 when the client holds this version, else `body()` with its ETag and Last-Modified."""
    last_modified = _http_date(newest)
    # If-None-Match wins over If-Modified-Since (RFC 9110, 13.2.2).
    if request.if_none_match:
        unchanged = request.if_none_match.contains(etag)
    else:
        since = request.if_modified_since
        unchanged = since is not None and newest is not None and since >= newest.replace(microsecond=0)
    if unchanged:
        headers = [("ETag", quote_etag(etag)), ("Cache-Control", PUBLIC_CACHE)]
        if last_modified is not None:
            headers.append(("Last-Modified", http_date(last_modified)))
        return Response(status=304, headers=headers)
    return _ics(body(), etag=etag, last_modified=last_modified, cache_control=PUBLIC_CACHE)


@bp.route("/calendar.ics")
def feed():
    """The network's public meetings. Most requests are polls: answered 304 after one aggregate query."""
    etag, newest = calendar_service.public_feed_version()
    return conditional_feed(etag, newest, lambda: calendar_service.public_feed_body(etag))


@bp.route("/series/<ref>/calendar.ics")
def series_feed(ref: str):
    """One series' public meetings, answered like the network feed."""
    series = series_service.find_series(ref)
    if series is None:
        abort(404)
    etag, newest = calendar_service.series_feed_version(series)
    return conditional_feed(etag, newest, lambda: calendar_service.series_feed_body(series, etag))


@bp.route("/calendar/<token>.ics")
def personal_feed(token: str):
    member = calendar_service.personal_feed_member(token)
    if member is None:
        abort(404)
    # Revalidated on every poll, so a reset address or a changed answer shows at once.
    response = _ics(calendar_service.personal_feed_bytes(member), cache_control="private, no-cache")
    return response.make_conditional(request)


@bp.route("/profile/calendar", methods=["GET", "POST"])
@login_required
def personal():
    form = ConfirmForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        had_one = current_user.calendar_token is not None
        with transaction():
            calendar_service.new_feed_token(current_user)
        flash(
            "Your calendar address has been reset: the old one no longer works. Subscribe again with the new one."
            if had_one
            else "Your personal calendar address is ready.",
            "success",
        )
        return redirect(url_for("calendar.personal"))
    feed_url = webcal_url = None
    if current_user.calendar_token:
        feed_url = external_url("calendar.personal_feed", token=current_user.calendar_token)
        webcal_url = "webcal://" + feed_url.split("://", 1)[1]
    public_url = external_url("calendar.feed")
    return render_template(
        "calendar/personal.html",
        form=form,
        feed_url=feed_url,
        webcal_url=webcal_url,
        public_url=public_url,
        public_webcal="webcal://" + public_url.split("://", 1)[1],
    )


FEED_PATH = "/calendar.ics"


# Request headers that may make the feed's answer other than the whole current feed.
_CONDITIONAL = (
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_MATCH",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_RANGE",
    "HTTP_IF_RANGE",
)


class FeedPolls:
    """WSGI middleware, outermost: a request for the network feed is answered from what the feed view last gave for
    the version this process read less than FEED_VERSION_SECONDS ago, without a request context, as a caching proxy
    in front would: a poll whose If-None-Match holds that version gets the very 304 (every header, security headers
    included), and a plain GET (no conditional or Range header) the very 200, its bytes included. Polls and
    downloads of the feed are most of the traffic calendars make. Anything else (a cookie, a query string, another
    version, a version not read lately, HEAD without If-None-Match) goes to the app."""

    def __init__(self, app: Flask, wsgi_app) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.not_modified: tuple[str, list[tuple[str, str]]] | None = None
        self.whole: tuple[str, list[tuple[str, str]], bytes] | None = None

    def _fresh_etag(self) -> str | None:
        fresh = calendar_service.remembered_feed_version(self.app)
        return fresh[0] if fresh is not None else None

    def __call__(self, environ, start_response):
        if (
            environ.get("PATH_INFO") != FEED_PATH
            or environ.get("REQUEST_METHOD") not in ("GET", "HEAD")
            or environ.get("QUERY_STRING")
            or "HTTP_COOKIE" in environ
        ):
            return self.wsgi_app(environ, start_response)
        if environ.get("HTTP_IF_NONE_MATCH"):
            return self._poll(environ, start_response)
        if environ["REQUEST_METHOD"] == "GET" and not any(name in environ for name in _CONDITIONAL):
            return self._whole(environ, start_response)
        return self.wsgi_app(environ, start_response)

    def _poll(self, environ, start_response):
        kept, etag = self.not_modified, self._fresh_etag()
        if (
            kept is not None
            and etag is not None
            and kept[0] == etag
            and parse_etags(environ["HTTP_IF_NONE_MATCH"]).contains(etag)
        ):
            start_response("304 NOT MODIFIED", list(kept[1]))
            return []

        def keep(status: str, headers: list[tuple[str, str]], exc_info=None):
            if status.startswith("304 ") and (sent := _kept_etag(headers)) is not None:
                self.not_modified = (sent, list(headers))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, keep)

    def _whole(self, environ, start_response):
        kept, etag = self.whole, self._fresh_etag()
        if kept is not None and etag is not None and kept[0] == etag:
            start_response("200 OK", list(kept[1]))
            return [kept[2]]
        answered: list[tuple[str | None, list[tuple[str, str]]]] = []

        def keep(status: str, headers: list[tuple[str, str]], exc_info=None):
            # An answer started again (with exc_info, after an error) is not the feed's: none is kept.
            sent = _kept_etag(headers) if status.startswith("200 ") and exc_info is None else None
            answered.append((sent, list(headers)))
            return start_response(status, headers, exc_info)

        result = self.wsgi_app(environ, keep)
        etag, headers = answered[0] if len(answered) == 1 else (None, [])
        if etag is None:
            return result
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        self.whole = (etag, headers, body)
        return [body]


def _kept_etag(headers: list[tuple[str, str]]) -> str | None:
    """The version an answer of the feed view may be kept for: its ETag, unless it sets a cookie."""
    names = {name.lower(): value for name, value in headers}
    if "set-cookie" in names or "etag" not in names:
        return None
    return unquote_etag(names["etag"])[0]


def init_app(app: Flask) -> None:
    app.wsgi_app = FeedPolls(app, app.wsgi_app)  # type: ignore[method-assign]
