"""Which meetings go into which calendar file, and the secret address of each member's own feed."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlencode

from flask import Flask, current_app
from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import selectinload

from .. import ical
from ..extensions import db
from ..models import (
    AgendaItem,
    Answer,
    Meeting,
    MeetingSeries,
    MeetingStatus,
    Member,
    Rsvp,
    SeriesFollow,
    Visibility,
    utcnow,
)
from ..urls import external_url
from .rsvps import may_see_join_link, rsvp_of

FEED_HISTORY = dt.timedelta(days=183)


# What the public feed holds, as SQL. The version query is built once (with the cut-off as a parameter)
# because feed readers poll and most polls end in a 304 after this one query.
_IN_PUBLIC_FEED = (
    Meeting.visibility == Visibility.PUBLIC,
    or_(Meeting.status == MeetingStatus.SCHEDULED, Meeting.status == MeetingStatus.CANCELLED),
    Meeting.starts_at >= bindparam("since"),
)
# Agenda items count too: replacing them changes the description but not the meeting row. Counting
# every agenda item (drafts' too) keeps the query cheap; a draft's edit only costs one extra download.
_PUBLIC_FEED_VERSION = select(
    func.count(Meeting.id),
    func.max(Meeting.updated_at),
    func.max(Meeting.id),
    select(func.count()).select_from(AgendaItem).scalar_subquery(),
    select(func.max(AgendaItem.id)).scalar_subquery(),
).where(*_IN_PUBLIC_FEED)
# Changes whenever the calendar text this module writes changes, so clients fetch the new form.
FEED_FORMAT = "2"


def _feed_since() -> dt.datetime:
    return utcnow() - FEED_HISTORY


def public_feed_version() -> tuple[str, dt.datetime | None]:
    """An ETag and Last-Modified for the public feed from one aggregate query, without loading meetings.

    Each process reuses the answer for FEED_VERSION_SECONDS: calendar apps poll hourly, so a change
    reaching them a few seconds later costs nothing, and most polls then end in a 304 without a query.
    """
    fresh = remembered_feed_version(current_app)
    if fresh is not None:
        return fresh
    version = _read_public_feed_version()
    current_app.extensions["kxn_feed_version"] = {"at": time.monotonic(), "version": version}
    return version


def remembered_feed_version(app: Flask) -> tuple[str, dt.datetime | None] | None:
    """The version this process read less than FEED_VERSION_SECONDS ago, or None: needs no request context."""
    remembered = app.extensions.get("kxn_feed_version")
    ttl = app.config["FEED_VERSION_SECONDS"]
    if ttl <= 0 or not remembered or time.monotonic() - remembered["at"] >= ttl:
        return None
    return remembered["version"]


def _read_public_feed_version() -> tuple[str, dt.datetime | None]:
    # A short Core connection rather than the ORM session: on this path, polled by every subscribed
    # calendar, the session's bookkeeping costs more than the query.
    with db.engine.connect() as connection:
        row = connection.execute(_PUBLIC_FEED_VERSION, {"since": _feed_since()}).one()
    newest = row[1]
    config = current_app.config
    key = ":".join(
        [
            FEED_FORMAT,
            str(row[0]),
            newest.isoformat() if newest else "",
            str(row[2]),
            str(row[3]),
            str(row[4]),
            config["NETWORK_NAME"],
            config["BASE_URL"],
            config["CALENDAR_ADDRESS"],
        ]
    )
    return hashlib.sha256(key.encode()).hexdigest()[:32], newest


def public_feed_meetings(series_id: int | None = None) -> list[Meeting]:
    query = select(Meeting).where(*_IN_PUBLIC_FEED)
    if series_id is not None:
        query = query.where(Meeting.series_id == series_id)
    return list(
        db.session.scalars(
            query.options(selectinload(Meeting.agenda_items)).order_by(Meeting.starts_at), {"since": _feed_since()}
        )
    )


def public_feed_body(etag: str) -> bytes:
    """The feed for a version, built once per version and process: every poll after a change asks for it."""
    cache: dict[str, bytes] = current_app.extensions.setdefault("kxn_public_feed", {})
    body = cache.get(etag)
    if body is None:
        # Built after the version was read, so the body is never older than the ETag it is filed under.
        body = public_feed_bytes(public_feed_meetings())
        cache.clear()
        cache[etag] = body
    return body


_SERIES_FEED_VERSION = _PUBLIC_FEED_VERSION.where(Meeting.series_id == bindparam("series_id"))


def series_feed_version(series: MeetingSeries) -> tuple[str, dt.datetime | None]:
    """The ETag and Last-Modified of one series' feed: its public meetings, as the network feed counts them, and
    the series' own name and description."""
    row = db.session.execute(_SERIES_FEED_VERSION, {"since": _feed_since(), "series_id": series.id}).one()
    newest = max((t for t in (row[1], series.updated_at) if t is not None), default=None)
    config = current_app.config
    settings = (config["NETWORK_NAME"], config["BASE_URL"], config["CALENDAR_ADDRESS"])
    key = "\x1f".join([FEED_FORMAT, *(str(value) for value in row), series.name, series.description, *settings])
    return hashlib.sha256(key.encode()).hexdigest()[:32], newest


def series_feed_body(series: MeetingSeries, etag: str) -> bytes:
    """One series' feed, built once per version and process, like the network feed."""
    cache: dict[tuple[int, str], bytes] = current_app.extensions.setdefault("kxn_series_feeds", {})
    body = cache.get((series.id, etag))
    if body is None:
        if len(cache) >= 64:
            cache.clear()
        meetings = public_feed_meetings(series.id)
        body = cache[(series.id, etag)] = ical.calendar_bytes(
            [(m, options_for(m, dtstamp=m.updated_at)) for m in meetings],
            method="PUBLISH",
            name=series.name,
            description=series.description or f"Meetings of {series.name}",
            refresh=True,
        )
    return body


def options_for(
    meeting: Meeting,
    *,
    include_join_link: bool = False,
    dtstamp: dt.datetime | None = None,
    status: str | None = None,
    extra: str = "",
    organizer_email: str | None = None,
) -> ical.EventOptions:
    config = current_app.config
    return ical.EventOptions(
        url=external_url("meetings.show", ref=meeting.slug),
        organizer_email=organizer_email or config["CALENDAR_ADDRESS"],
        organizer_name=config["NETWORK_NAME"],
        include_join_link=include_join_link,
        dtstamp=dtstamp,
        status=status,
        extra_description=extra,
    )


def public_feed_bytes(meetings: list[Meeting]) -> bytes:
    name = current_app.config["NETWORK_NAME"]
    return ical.calendar_bytes(
        [(m, options_for(m, dtstamp=m.updated_at)) for m in meetings],
        method="PUBLISH",
        name=name,
        description=f"Meetings of the {name}",
        refresh=True,
    )


DOWNLOADS_KEPT = 500


@dataclass(frozen=True)
class MeetingHead:
    """What deciding on a meeting's download needs, read without loading the meeting."""

    id: int
    slug: str
    status: MeetingStatus
    visibility: Visibility
    updated_at: dt.datetime
    join_url: str

    @property
    def is_cancelled(self) -> bool:
        return self.status.is_cancelled


@dataclass(frozen=True)
class Download:
    body: bytes
    etag: str
    filename: str


_HEAD = select(Meeting.id, Meeting.slug, Meeting.status, Meeting.visibility, Meeting.updated_at, Meeting.join_url)
_HEAD_BY_ID = _HEAD.where(Meeting.id == bindparam("ref"))
_HEAD_BY_SLUG = _HEAD.where(Meeting.slug == bindparam("ref"))


def meeting_head(ref: str) -> MeetingHead | None:
    value = Meeting.parse_ref(ref)
    if value is None:
        return None
    # Statements built once and a short Core connection, as for the feed's version: on a path that usually
    # ends with a file already built, the ORM session's bookkeeping would cost more than the query.
    with db.engine.connect() as connection:
        row = connection.execute(_HEAD_BY_ID if isinstance(value, int) else _HEAD_BY_SLUG, {"ref": value}).first()
    return MeetingHead(*row) if row is not None else None


def meeting_download(head: MeetingHead, *, include_join_link: bool = False) -> Download | None:
    """A shareable file: no attendee and, unless `include_join_link` (a member going, for her own calendar), no join
    link. None if the meeting has just been deleted.

    Built once per version of the meeting (its row's updated_at, which every edit moves) and process, since
    building costs several times the rest of the request; DTSTAMP is when that version was first built."""
    config = current_app.config
    settings = (config["NETWORK_NAME"], config["BASE_URL"], config["CALENDAR_ADDRESS"], include_join_link)
    cache: dict[tuple, Download] = current_app.extensions.setdefault("kxn_meeting_downloads", {})
    download = cache.get((head.id, head.updated_at, *settings))
    if download is None:
        meeting = db.session.scalar(
            select(Meeting).where(Meeting.id == head.id).options(selectinload(Meeting.agenda_items))
        )
        if meeting is None:
            return None
        options = options_for(meeting, include_join_link=include_join_link)
        body = ical.calendar_bytes([(meeting, options)], method="PUBLISH")
        download = Download(body, hashlib.sha256(body).hexdigest()[:32], download_filename(meeting))
        if len(cache) >= DOWNLOADS_KEPT:
            cache.clear()
        # Filed under the version built, which may be newer than the head read a moment before.
        cache[(meeting.id, meeting.updated_at, *settings)] = download
    return download


def sees_join_link(head: MeetingHead, member: Member) -> bool:
    """Whether her own copy of the meeting's file carries its join link, by the one rule for who sees it
    (services.rsvps.may_see_join_link); her answer is read only when the meeting has a link to show."""
    if not head.join_url or head.is_cancelled:
        return False
    return may_see_join_link(head, rsvp_of(head.id, member.id))


def download_filename(meeting: Meeting | MeetingHead) -> str:
    return f"kxn-{meeting.slug}.ics"


def personal_feed_member(token: str) -> Member | None:
    if not token or len(token) > 64:
        return None
    member = db.session.scalar(select(Member).where(Member.calendar_token == token))
    return member if member is not None and member.active else None


def personal_feed_bytes(member: Member) -> bytes:
    """Meetings the member is going to or might go to, and every meeting of the series she follows with "all
    meetings in my calendar" that she has not declined; the join link only where she is going."""
    in_feed = select(SeriesFollow.series_id).where(SeriesFollow.member_id == member.id, SeriesFollow.in_feed.is_(True))
    rows = db.session.execute(
        select(Meeting, Rsvp)
        .outerjoin(Rsvp, (Rsvp.meeting_id == Meeting.id) & (Rsvp.member_id == member.id))
        .where(
            or_(
                Rsvp.answer.in_([Answer.GOING, Answer.MAYBE]),
                Meeting.series_id.in_(in_feed) & or_(Rsvp.id.is_(None), Rsvp.answer != Answer.DECLINED),
            ),
            Meeting.status != MeetingStatus.DRAFT,
            Meeting.starts_at >= _feed_since(),
        )
        .options(selectinload(Meeting.agenda_items))
        .order_by(Meeting.starts_at)
    ).all()
    events = []
    for meeting, rsvp in rows:
        going = rsvp is not None and rsvp.is_going
        status = None if meeting.is_cancelled else ("CONFIRMED" if going else "TENTATIVE")
        if rsvp is None:
            extra = "In your calendar because you follow its series; you have not answered yet."
        else:
            extra = "You are on the waiting list." if rsvp.is_waiting else ""
        events.append(
            (
                meeting,
                options_for(
                    meeting,
                    include_join_link=may_see_join_link(meeting, rsvp),
                    dtstamp=meeting.updated_at,
                    status=status,
                    extra=extra,
                ),
            )
        )
    name = f"{current_app.config['NETWORK_NAME']}: my meetings"
    return ical.calendar_bytes(events, method="PUBLISH", name=name, refresh=True)


def new_feed_token(member: Member) -> str:
    """Give the member a new secret feed address; the old one stops working at once."""
    member.calendar_token = secrets.token_urlsafe(32)
    return member.calendar_token


def add_to_calendar_links(meeting: Meeting, include_join_link: bool = False) -> Mapping[str, str]:
    """Template URLs of web calendars (times in UTC) for the 'Add to calendar' menu; with `include_join_link` (the
    page shows her the join link), the event's location carries it, as her emailed invitation's does."""
    return _calendar_links(
        meeting.title,
        meeting.theme,
        meeting.starts_at,
        meeting.ends_at,
        meeting.timezone,
        ical.location_text(meeting, include_join_link=include_join_link),
        external_url("meetings.show", ref=meeting.slug),
    )


@functools.lru_cache(maxsize=256)
def _calendar_links(
    title: str, theme: str, starts_at: dt.datetime, ends_at: dt.datetime, timezone: str, location: str, page: str
) -> Mapping[str, str]:
    """Made once for each version of a meeting: every member's meeting page offers them."""
    start = starts_at.astimezone(dt.UTC)
    end = ends_at.astimezone(dt.UTC)
    details = f"{theme}\n\n{page}" if theme else page
    google = "https://calendar.google.com/calendar/render?" + urlencode(
        {
            "action": "TEMPLATE",
            "text": title,
            "dates": f"{start:%Y%m%dT%H%M%SZ}/{end:%Y%m%dT%H%M%SZ}",
            "details": details,
            "location": location,
            "ctz": timezone,
        }
    )
    outlook_params = urlencode(
        {
            "path": "/calendar/action/compose",
            "rru": "addevent",
            "subject": title,
            "startdt": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "enddt": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "body": details,
            "location": location,
        }
    )
    return MappingProxyType(
        {
            "google": google,
            "outlook": f"https://outlook.live.com/calendar/0/action/compose?{outlook_params}",
            "office365": f"https://outlook.office.com/calendar/0/action/compose?{outlook_params}",
        }
    )
