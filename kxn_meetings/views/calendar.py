"""Calendar files: one meeting, the network's feed, and each member's own feed."""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..extensions import db
from ..forms import ConfirmForm
from ..models import MeetingStatus, Visibility
from ..services import calendars as calendar_service
from ..services import meetings as meeting_service
from ..urls import external_url

bp = Blueprint("calendar", __name__)

ICS_TYPE = "text/calendar; charset=utf-8"


def _ics(body: bytes, *, filename: str | None = None, etag: str | None = None, last_modified=None,
         private: bool = False) -> Response:
    response = Response(body, content_type=ICS_TYPE)
    if filename:
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.set_etag(etag or hashlib.sha256(body).hexdigest()[:32])
    if last_modified is not None:
        response.last_modified = last_modified
    response.headers["Cache-Control"] = ("private" if private else "public") + ", max-age=300"
    return response.make_conditional(request)


@bp.route("/meetings/<ref>/calendar.ics")
def meeting_ics(ref: str):
    meeting = meeting_service.find_meeting(ref)
    organiser = current_user.is_authenticated and current_user.is_organiser
    if meeting is None or (meeting.status == MeetingStatus.DRAFT and not organiser):
        abort(404)
    if meeting.visibility == Visibility.MEMBERS and not current_user.is_authenticated:
        return redirect(url_for("auth.sign_in", next=request.path))
    return _ics(calendar_service.meeting_download_bytes(meeting), filename=calendar_service.download_filename(meeting),
                private=meeting.visibility == Visibility.MEMBERS)


@bp.route("/calendar.ics")
def feed():
    etag, last_modified = calendar_service.public_feed_version()
    if request.if_none_match.contains(etag) or (
        not request.if_none_match and last_modified is not None and request.if_modified_since is not None
        and request.if_modified_since >= last_modified.replace(microsecond=0)
    ):
        response = Response(status=304)
        response.set_etag(etag)
        if last_modified is not None:
            response.last_modified = last_modified
        return response
    body = calendar_service.public_feed_bytes(calendar_service.public_feed_meetings())
    return _ics(body, etag=etag, last_modified=last_modified)


@bp.route("/calendar/<token>.ics")
def personal_feed(token: str):
    member = calendar_service.personal_feed_member(token)
    if member is None:
        abort(404)
    response = _ics(calendar_service.personal_feed_bytes(member), private=True)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.route("/profile/calendar", methods=["GET", "POST"])
@login_required
def personal():
    form = ConfirmForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        had_one = current_user.calendar_token is not None
        calendar_service.new_feed_token(current_user)
        db.session.commit()
        flash("Your calendar address has been reset: the old one no longer works. Subscribe again with the new one."
              if had_one else "Your personal calendar address is ready.", "success")
        return redirect(url_for("calendar.personal"))
    feed_url = webcal_url = None
    if current_user.calendar_token:
        feed_url = external_url("calendar.personal_feed", token=current_user.calendar_token)
        webcal_url = "webcal://" + feed_url.split("://", 1)[1]
    public_url = external_url("calendar.feed")
    return render_template("calendar/personal.html", form=form, feed_url=feed_url, webcal_url=webcal_url,
                           public_url=public_url, public_webcal="webcal://" + public_url.split("://", 1)[1])
