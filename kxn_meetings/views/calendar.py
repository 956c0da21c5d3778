"""Calendar files: one meeting, the network's feed, and each member's own feed."""

from __future__ import annotations

import datetime as dt
import hashlib

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.http import http_date, quote_etag

from ..forms import ConfirmForm
from ..models import utcnow
from ..security import is_organiser
from ..services import calendars as calendar_service
from ..services import rsvps as rsvp_service
from ..urls import external_url
from .public_pages import same_for_every_visitor
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
    download = calendar_service.meeting_download(head)
    if download is None:
        abort(404)
    response = _ics(
        download.body,
        filename=download.filename,
        etag=download.etag,
        cache_control="private, max-age=300" if members_only else PUBLIC_CACHE,
    )
    return response.make_conditional(request)


@bp.route("/meetings/<ref>/answer/<token>/calendar.ics")
def personal_meeting_ics(ref: str, token: str):
    """The same shareable file, for a member who came by her personal link and is not signed in (the meeting may
    be for members only). A cancelled meeting's file says STATUS:CANCELLED, for calendars that hold it."""
    head = calendar_service.meeting_head(ref)
    if head is None or head.status.is_draft or rsvp_service.invitation_by_token(head.id, token) is None:
        abort(404)
    download = calendar_service.meeting_download(head)
    if download is None:
        abort(404)
    response = _ics(download.body, filename=download.filename, etag=download.etag, cache_control="private, no-cache")
    return response.make_conditional(request)


def _http_date(last_modified: dt.datetime | None) -> dt.datetime | None:
    """Last-Modified to whole seconds, held back by one while that second lasts: a later change in the
    same second would otherwise carry the same date and be answered 304 to If-Modified-Since."""
    if last_modified is None:
        return None
    whole = last_modified.replace(microsecond=0)
    return whole if utcnow().replace(microsecond=0) > whole else whole - dt.timedelta(seconds=1)


@bp.route("/calendar.ics")
def feed():
    """The network's public meetings. Most requests are polls: answered 304 after one aggregate query."""
    etag, newest = calendar_service.public_feed_version()
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
    return _ics(
        calendar_service.public_feed_body(etag), etag=etag, last_modified=last_modified, cache_control=PUBLIC_CACHE
    )


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
