"""Which meetings go into which calendar file, and the secret address of each member's own feed."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from urllib.parse import urlencode

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from .. import ical
from ..extensions import db
from ..models import Answer, Meeting, MeetingStatus, Member, Rsvp, Visibility, utcnow
from ..urls import external_url

FEED_HISTORY = dt.timedelta(days=183)


def _public_feed_filter():
    return (
        Meeting.visibility == Visibility.PUBLIC,
        Meeting.status.in_([MeetingStatus.SCHEDULED, MeetingStatus.CANCELLED]),
        Meeting.starts_at >= utcnow() - FEED_HISTORY,
    )


def public_feed_version() -> tuple[str, dt.datetime | None]:
    """An ETag and Last-Modified for the public feed from one aggregate query, without loading meetings."""
    count, newest, highest = db.session.execute(
        select(func.count(Meeting.id), func.max(Meeting.updated_at), func.max(Meeting.id)).where(*_public_feed_filter())
    ).one()
    config = current_app.config
    key = f"{count}:{newest.isoformat() if newest else ''}:{highest}:{config['NETWORK_NAME']}:{config['BASE_URL']}"
    return hashlib.sha256(key.encode()).hexdigest()[:32], newest


def public_feed_meetings() -> list[Meeting]:
    return list(db.session.scalars(
        select(Meeting).where(*_public_feed_filter()).options(selectinload(Meeting.agenda_items))
        .order_by(Meeting.starts_at)
    ))


def options_for(meeting: Meeting, *, include_join_link: bool = False, attendee: ical.Attendee | None = None,
                dtstamp: dt.datetime | None = None, status: str | None = None, extra: str = "",
                organizer_email: str | None = None) -> ical.EventOptions:
    config = current_app.config
    return ical.EventOptions(
        url=external_url("meetings.show", ref=meeting.slug),
        organizer_email=organizer_email or config["CALENDAR_ADDRESS"],
        organizer_name=config["NETWORK_NAME"],
        include_join_link=include_join_link,
        attendee=attendee,
        dtstamp=dtstamp,
        status=status,
        extra_description=extra,
    )


def public_feed_bytes(meetings: list[Meeting]) -> bytes:
    name = current_app.config["NETWORK_NAME"]
    return ical.calendar_bytes(
        [(m, options_for(m, dtstamp=m.updated_at)) for m in meetings],
        method="PUBLISH", name=name, description=f"Meetings of the {name}", refresh=True,
    )


def meeting_download_bytes(meeting: Meeting) -> bytes:
    """A shareable file: no attendee and never the join link."""
    return ical.calendar_bytes([(meeting, options_for(meeting))], method="PUBLISH")


def download_filename(meeting: Meeting) -> str:
    return f"kxn-{meeting.slug}.ics"


def personal_feed_member(token: str) -> Member | None:
    if not token or len(token) > 64:
        return None
    member = db.session.scalar(select(Member).where(Member.calendar_token == token))
    return member if member is not None and member.active else None


def personal_feed_bytes(member: Member) -> bytes:
    """Meetings the member is going to or might go to; the join link only where they are going."""
    rows = db.session.execute(
        select(Meeting, Rsvp)
        .join(Rsvp, Rsvp.meeting_id == Meeting.id)
        .where(Rsvp.member_id == member.id, Rsvp.answer.in_([Answer.GOING, Answer.MAYBE]),
               Meeting.status != MeetingStatus.DRAFT, Meeting.starts_at >= utcnow() - FEED_HISTORY)
        .options(selectinload(Meeting.agenda_items))
        .order_by(Meeting.starts_at)
    ).all()
    events = []
    for meeting, rsvp in rows:
        status = None if meeting.is_cancelled else ("CONFIRMED" if rsvp.is_going else "TENTATIVE")
        extra = "You are on the waiting list." if rsvp.is_waiting else ""
        events.append((meeting, options_for(meeting, include_join_link=rsvp.is_going, dtstamp=meeting.updated_at,
                                            status=status, extra=extra)))
    name = f"{current_app.config['NETWORK_NAME']}: my meetings"
    return ical.calendar_bytes(events, method="PUBLISH", name=name, refresh=True)


def new_feed_token(member: Member) -> str:
    """Give the member a new secret feed address; the old one stops working at once."""
    member.calendar_token = secrets.token_urlsafe(32)
    return member.calendar_token


def add_to_calendar_links(meeting: Meeting) -> dict[str, str]:
    """Template URLs of web calendars (times in UTC) for the 'Add to calendar' menu."""
    start = meeting.starts_at.astimezone(dt.UTC)
    end = meeting.ends_at.astimezone(dt.UTC)
    page = external_url("meetings.show", ref=meeting.slug)
    details = f"{meeting.theme}\n\n{page}" if meeting.theme else page
    location = ical.location_text(meeting, include_join_link=False)
    google = "https://calendar.google.com/calendar/render?" + urlencode({
        "action": "TEMPLATE", "text": meeting.title,
        "dates": f"{start:%Y%m%dT%H%M%SZ}/{end:%Y%m%dT%H%M%SZ}", "details": details, "location": location,
        "ctz": meeting.timezone,
    })
    outlook_params = urlencode({
        "path": "/calendar/action/compose", "rru": "addevent", "subject": meeting.title,
        "startdt": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "enddt": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "body": details, "location": location,
    })
    return {
        "google": google,
        "outlook": f"https://outlook.live.com/calendar/0/action/compose?{outlook_params}",
        "office365": f"https://outlook.office.com/calendar/0/action/compose?{outlook_params}",
    }
