"""Scheduling meetings: create, edit, publish, cancel, delete a draft, record attendance, and the next one in a
series. Each of edit, cancel, delete and attendance has one `why_not_...` rule, which the operation enforces and
pages call to offer only what is allowed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session, joinedload, selectinload

from .. import timefmt
from ..extensions import db
from ..kept import read_through
from ..models import (
    AgendaItem,
    Answer,
    Meeting,
    MeetingNotes,
    MeetingStatus,
    Member,
    Rsvp,
    RsvpSource,
    Visibility,
    WorkshopQuestion,
    WorkshopRoom,
    utcnow,
)
from ..text import slugify
from ..wording import plural
from . import feedback, invitations, notices, rsvps, series
from .errors import ServiceError
from .locking import lock_meeting


class MeetingError(ServiceError):
    pass


def meeting_slug(title: str, starts_at: dt.datetime, zone: str, *, exclude_id: int | None = None) -> str:
    short = " ".join(title.split(",")[0].split()[:4])
    words = slugify(short, max_length=40, fallback="meeting")
    base = f"{starts_at.astimezone(ZoneInfo(zone)):%Y-%m-%d}-{words}"
    slug, n = base, 2
    while True:
        query = select(Meeting.id).where(Meeting.slug == slug)
        if exclude_id is not None:
            query = query.where(Meeting.id != exclude_id)
        if db.session.scalar(query) is None:
            return slug
        slug, n = f"{base}-{n}", n + 1


@functools.cache
def _find_statement(by_id: bool, load_details: bool):
    """Built once per process: on the busiest pages, building the statement cost more than running it."""
    query = select(Meeting).where((Meeting.id if by_id else Meeting.slug) == bindparam("ref"))
    if load_details:
        query = query.options(
            selectinload(Meeting.agenda_items),
            selectinload(Meeting.workshop_rooms).selectinload(WorkshopRoom.questions),
            joinedload(Meeting.contact),
            joinedload(Meeting.series),
        )
    return query


def find_meeting(ref: str | int, *, load_details: bool = False) -> Meeting | None:
    """A meeting by slug or numeric id."""
    value = Meeting.parse_ref(ref)
    if value is None:
        return None
    return db.session.scalar(_find_statement(isinstance(value, int), load_details), {"ref": value})


KEPT_MEETINGS = 64


def meeting_to_read(ref: str | int) -> Meeting | None:
    """find_meeting(ref, load_details=True) for a page that only reads the meeting (its page, a personal link's
    page). Loaded in a Session of its own, on the request's connection (in its transaction, if it has one), and
    closed at once, so the copy belongs to no request's session: no commit expires it and no request changes it.
    Kept per process for PUBLIC_PAGE_SECONDS, the lag visitors' pages already allow. Every change reads the meeting
    afresh under its lock (services.locking)."""
    value = Meeting.parse_ref(ref)
    if value is None:
        return None

    def read() -> Meeting | None:
        # Not a second connection: with many requests waiting for a lock the pool would run out, and the copy
        # would be read in another snapshot than the rest of the page.
        with Session(bind=db.session.connection()) as own:
            return own.scalar(_find_statement(isinstance(value, int), True), {"ref": value})

    return read_through("kxn_meetings_to_read", KEPT_MEETINGS, value, current_app.config["PUBLIC_PAGE_SECONDS"], read)


@dataclass
class AgendaRow:
    title: str
    start_time: dt.time | None = None
    speaker_name: str = ""
    speaker_role: str = ""
    speaker_organisation: str = ""


@dataclass
class RoomRow:
    name: str
    questions: list[str] = field(default_factory=list)


@dataclass
class MeetingData:
    title: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    timezone: str
    theme: str = ""
    description: str = ""
    join_url: str = ""
    location: str = ""
    capacity: int | None = None
    rsvp_deadline: dt.datetime | None = None
    visibility: Visibility = Visibility.PUBLIC
    contact_id: int | None = None
    series_id: int | None = None
    agenda: list[AgendaRow] = field(default_factory=list)
    rooms: list[RoomRow] = field(default_factory=list)

    @classmethod
    def of(cls, meeting: Meeting, *, speakers: bool = True) -> MeetingData:
        """The meeting as its form shows it; without `speakers`, the agenda keeps its items and times only."""
        return cls(
            **{name: getattr(meeting, name) for name in _COPIED},
            agenda=[
                AgendaRow(
                    title=item.title,
                    start_time=item.start_time,
                    **({name: getattr(item, name) for name in _SPEAKER} if speakers else {}),
                )
                for item in meeting.agenda_items
            ],
            rooms=[RoomRow(name=r.name, questions=[q.text for q in r.questions]) for r in meeting.workshop_rooms],
        )


_SPEAKER = ("speaker_name", "speaker_role", "speaker_organisation")
_COPIED = (
    "title",
    "theme",
    "description",
    "starts_at",
    "ends_at",
    "timezone",
    "join_url",
    "location",
    "capacity",
    "rsvp_deadline",
    "visibility",
    "contact_id",
    "series_id",
)


MAX_YEARS_AHEAD = 10
MAX_LENGTH = dt.timedelta(days=7)


def validate(data: MeetingData, *, is_new: bool, copied_from: Meeting | None = None) -> None:
    """MeetingError, carrying every problem found (each with the form field it belongs to), unless the meeting can
    be saved."""
    problems: list[MeetingError] = []
    if not data.title.strip():
        problems.append(MeetingError("Enter a title.", "title"))
    elif "\r" in data.title or "\n" in data.title:
        problems.append(MeetingError("Keep the title on one line.", "title"))
    elif copied_from is not None and data.title.strip().casefold() == copied_from.title.strip().casefold():
        problems.append(
            MeetingError("Change the title: it is still that of the meeting this one is copied from.", "title")
        )
    if data.ends_at <= data.starts_at:
        problems.append(
            MeetingError(
                "The meeting must end after it starts. For a meeting that ends after midnight, "
                "give the day it ends under \u201cEnds on\u201d.",
                "end_time",
            )
        )
    elif data.ends_at - data.starts_at > MAX_LENGTH:
        problems.append(
            MeetingError(f"A meeting can last at most {MAX_LENGTH.days} days: check the day it ends.", "end_time")
        )
    if is_new and data.starts_at <= utcnow():
        problems.append(MeetingError("A new meeting cannot start in the past.", "date"))
    elif data.starts_at.year > utcnow().year + MAX_YEARS_AHEAD:
        problems.append(MeetingError(f"Choose a date in the next {MAX_YEARS_AHEAD} years.", "date"))
    if data.capacity is not None and data.capacity < 1:
        problems.append(MeetingError("Capacity is a whole number of at least 1, or empty for no limit.", "capacity"))
    if data.join_url and not data.join_url.lower().startswith("https://"):
        problems.append(MeetingError("The join link must start with https://", "join_url"))
    if not data.join_url and not data.location.strip():
        problems.append(MeetingError("Give a join link for an online meeting, an address, or both.", "join_url"))
    if data.rsvp_deadline is not None and data.rsvp_deadline >= data.starts_at:
        problems.append(MeetingError("The answer-by date must be before the meeting starts.", "rsvp_deadline_date"))
    if problems:
        first, *others = problems
        raise MeetingError(first.message, first.field, also=others)


# The columns an edit sets from MeetingData of the same name: one-line text trimmed, the rest as given.
_TRIMMED_COLUMNS = ("title", "theme", "join_url", "location")
_COPIED_COLUMNS = (
    "description",
    "starts_at",
    "ends_at",
    "timezone",
    "capacity",
    "rsvp_deadline",
    "visibility",
    "contact_id",
)


def _apply(meeting: Meeting, data: MeetingData) -> None:
    for name in _TRIMMED_COLUMNS:
        setattr(meeting, name, getattr(data, name).strip())
    for name in _COPIED_COLUMNS:
        setattr(meeting, name, getattr(data, name))
    if data.series_id is not None:
        meeting.series_id = data.series_id
    # The agenda is replaced rather than changed in place, which leaves the meeting's row untouched; calendar
    # files and feeds are versioned by that row, so it records the edit too.
    meeting.updated_at = utcnow()
    meeting.agenda_items = [AgendaItem(position=i, **asdict(row)) for i, row in enumerate(data.agenda)]
    meeting.workshop_rooms = _kept_rooms(meeting.workshop_rooms, data.rooms)


def _same(text: str) -> str:
    return " ".join(text.split()).casefold()


def _kept_rooms(existing: list[WorkshopRoom], rows: list[RoomRow]) -> list[WorkshopRoom]:
    """The rooms as the form gives them, changed in place rather than replaced: who sits in a room, its scribes and
    what they wrote belong to the room and its questions, and an edit to the meeting must not lose them. A room is
    matched by its name, then by a question it keeps, then in order; a question by its text, then in order."""
    rooms = _matched(
        existing,
        rows,
        lambda room, row: _same(room.name) == _same(row.name),
        lambda room, row: bool({_same(q.text) for q in room.questions} & {_same(q) for q in row.questions}),
        make=WorkshopRoom,
    )
    for position, (room, row) in enumerate(zip(rooms, rows, strict=True)):
        room.position, room.name = position, row.name
        room.questions = _matched(
            room.questions,
            row.questions,
            lambda question, text: _same(question.text) == _same(text),
            make=WorkshopQuestion,
        )
        for order, (question, text) in enumerate(zip(room.questions, row.questions, strict=True)):
            question.position, question.text = order, text
    return rooms


def _matched(existing: list, wanted: list, *rules, make) -> list:
    """An existing row for each wanted one: by the first rule that finds one, for every wanted row, before the
    next rule; what is left goes in order; then new rows."""
    left = list(existing)
    found: list = [None] * len(wanted)
    for rule in rules:
        for index, item in enumerate(wanted):
            if found[index] is None and (same := next((row for row in left if rule(row, item)), None)) is not None:
                left.remove(same)
                found[index] = same
    return [row if row is not None else (left.pop(0) if left else make()) for row in found]


def create_meeting(data: MeetingData, *, copied_from: Meeting | None = None) -> Meeting:
    """A draft; `copied_from`, the meeting its details were copied from, whose title it must not keep."""
    validate(data, is_new=True, copied_from=copied_from)
    if data.series_id is None:
        data.series_id = series.default_series().id
    meeting = Meeting(
        status=MeetingStatus.DRAFT, sequence=0, slug=meeting_slug(data.title, data.starts_at, data.timezone)
    )
    _apply(meeting, data)
    db.session.add(meeting)
    db.session.flush()
    return meeting


@dataclass
class Change:
    field: str
    old: object
    new: object


@dataclass
class MeetingUpdate:
    changes: list[Change]
    promoted: list[Rsvp]
    # None when members are not told of this edit; otherwise updates queued at once (0 while the batch window is
    # open: services.notices.pending_update).
    announced: int | None = None


def _wall_clock(instant: dt.datetime, zone: str) -> dt.datetime:
    return instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def move_agenda(agenda: list[AgendaRow], old_start: dt.datetime, old_zone: str, new_start: dt.datetime, new_zone: str):
    """Agenda times moved as far as the start moved, on the wall clock of the meeting's zone: a meeting moved across
    a change of the clocks keeps each item as many minutes after its start as before."""
    shift = _wall_clock(new_start, new_zone) - _wall_clock(old_start, old_zone)
    if not shift:
        return
    anchor = _wall_clock(old_start, old_zone)
    for row in agenda:
        if row.start_time is not None:
            row.start_time = (dt.datetime.combine(anchor.date(), row.start_time) + shift).time()


class Timed(Protocol):
    start_time: dt.time | None


T = TypeVar("T", bound=Timed)


def agenda_outside(starts_at: dt.datetime, ends_at: dt.datetime, zone: str, items: Sequence[T]) -> list[T]:
    """The agenda items whose time falls before the start or at or after the end of the meeting (on any of its
    days, for a meeting that runs past midnight). Pages warn of them; saving does not refuse them."""
    start, end = _wall_clock(starts_at, zone), _wall_clock(ends_at, zone)
    days = [start.date() + dt.timedelta(days=n) for n in range((end.date() - start.date()).days + 1)]
    return [
        item
        for item in items
        if item.start_time is not None
        and not any(start <= dt.datetime.combine(day, item.start_time) < end for day in days)
    ]


def misplaced_agenda(meeting: Meeting) -> list[AgendaItem]:
    """The meeting's agenda items outside its time (agenda_outside)."""
    return agenda_outside(meeting.starts_at, meeting.ends_at, meeting.timezone, meeting.agenda_items)


def update_meeting(
    meeting: Meeting, data: MeetingData, *, notify: bool = True, move_agenda_times: bool = False
) -> MeetingUpdate:
    """Apply an edit: the changes members' calendars must hear about raise SEQUENCE once the meeting is published,
    and places added to a full meeting go to the front of the waiting list. With `move_agenda_times`, the agenda
    given (as it stood before the edit) moves as far as the start does (move_agenda).

    Members are told of those changes in one update per batch of edits (services.notices), unless
    `notify` is False for a minor correction.

    Call it before changing anything else in the transaction: it takes the meeting's write lock.
    """
    validate(data, is_new=False)
    meeting = lock_meeting(meeting.id)
    if problem := why_not_editable(meeting):
        raise MeetingError(problem)
    if move_agenda_times:
        move_agenda(data.agenda, meeting.starts_at, meeting.timezone, data.starts_at, data.timezone)
    before = {name: getattr(meeting, name) for name in Meeting.NOTIFIABLE_FIELDS}
    announced_before = invitations.snapshot(meeting)
    old_capacity = meeting.capacity
    _apply(meeting, data)
    changes = [
        Change(name, before[name], getattr(meeting, name))
        for name in Meeting.NOTIFIABLE_FIELDS
        if before[name] != getattr(meeting, name)
    ]
    announced = notices.record_changes(meeting, announced_before, notify=notify)
    db.session.flush()
    promoted: list[Rsvp] = []
    if old_capacity is not None and (meeting.capacity is None or meeting.capacity > old_capacity):
        promoted = rsvps.promote_waiting(meeting)
        notices.queue_promotions(meeting, promoted)
    return MeetingUpdate(changes=changes, promoted=promoted, announced=announced)


def publish(meeting: Meeting) -> series.PublishedToFollowers:
    """Publish a draft: the followers of its series are answered by their standing answer and invited."""
    meeting = lock_meeting(meeting.id)
    if not meeting.is_draft:
        raise MeetingError("Only a draft can be published.")
    meeting.status = MeetingStatus.SCHEDULED
    meeting.published_at = utcnow()
    invitations.ensure_announced(meeting)
    db.session.flush()
    return series.publish_to_followers(meeting)


def why_not_editable(meeting: Meeting) -> str | None:
    """Why this meeting cannot be edited, or None when it can."""
    if meeting.is_cancelled:
        return "A cancelled meeting cannot be edited."
    return None


def why_not_cancellable(meeting: Meeting) -> str | None:
    """Why this meeting cannot be cancelled, or None when it can."""
    if meeting.is_cancelled:
        return "This meeting is already cancelled."
    if meeting.is_draft:
        # A cancelled meeting is shown to everyone, so a draft would become public by being cancelled.
        return "A draft has not been announced, so there is nothing to cancel."
    return None


def cancel(meeting: Meeting, reason: str) -> int:
    """Cancel the meeting and queue its cancellation to everyone whose calendar holds it; how many were queued
    (notices.recipient_count says beforehand)."""
    if problem := why_not_cancellable(meeting):
        raise MeetingError(problem)
    meeting.status = MeetingStatus.CANCELLED
    meeting.cancel_reason = reason.strip()
    meeting.cancelled_at = utcnow()
    meeting.sequence += 1
    return notices.queue_cancellation(meeting)


def why_not_deletable(meeting: Meeting) -> str | None:
    """Why this meeting cannot be deleted, or None when it can."""
    if not meeting.is_draft:
        return (
            "Only a draft can be deleted. A published meeting can be cancelled instead, so that members' "
            "calendars hear of it."
        )
    if db.session.scalar(select(exists().where(MeetingNotes.meeting_id == meeting.id))):
        return "This draft has notes written for it, so it is kept."
    return None


def delete_draft(meeting: Meeting) -> None:
    """Remove a meeting that was never published, with its agenda and rooms."""
    if problem := why_not_deletable(meeting):
        raise MeetingError(problem)
    db.session.delete(meeting)
    db.session.flush()


def why_not_attendance(meeting: Meeting, now: dt.datetime) -> str | None:
    """Why attendance cannot be recorded for this meeting at `now`, or None when it can."""
    if meeting.starts_at > now:
        return "Attendance can be recorded once the meeting has started."
    return None


@dataclass(frozen=True)
class AttendanceSaved:
    """How many came, and how many of them were sent the feedback request just now: those recorded as having come
    after the meeting's members were asked."""

    came: int
    feedback_asked: int


@dataclass(frozen=True)
class WalkInRecorded:
    rsvp: Rsvp
    feedback_asked: int


def mark_attendance(
    meeting: Meeting, attended_rsvp_ids: set[int], *, now: dt.datetime | None = None
) -> AttendanceSaved:
    """Record who came; every answered row not ticked is recorded as not attended, and a walk-in not ticked is
    forgotten (they had no answer to keep)."""
    meeting = lock_meeting(meeting.id)
    if problem := why_not_attendance(meeting, now or utcnow()):
        raise MeetingError(problem)
    rows = db.session.scalars(select(Rsvp).where(Rsvp.meeting_id == meeting.id)).all()
    for rsvp in rows:
        rsvp.attended = rsvp.id in attended_rsvp_ids
        if rsvp.is_walk_in and not rsvp.attended:
            db.session.delete(rsvp)
    db.session.flush()
    asked = feedback.asked_later(meeting)
    return AttendanceSaved(came=sum(1 for r in rows if r.attended), feedback_asked=asked)


def walk_in_candidates(meeting: Meeting) -> list[Member]:
    """Active members with no answer to the meeting: those an organiser may record as having come anyway."""
    answered = exists().where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == Member.id)
    return list(
        db.session.scalars(select(Member).where(Member.active.is_(True), ~answered).order_by(Member.name, Member.id))
    )


def record_walk_in(meeting: Meeting, member_id: int, *, now: dt.datetime | None = None) -> WalkInRecorded:
    """Record that a member came: one who answered is marked as attended, one who did not becomes a walk-in
    (models.Rsvp). Recording the same member twice changes nothing."""
    meeting = lock_meeting(meeting.id)
    if problem := why_not_attendance(meeting, now or utcnow()):
        raise MeetingError(problem)
    member = db.session.get(Member, member_id)
    if member is None or not member.active:
        raise MeetingError("Choose a member from the list.", "member_id")
    rsvp = db.session.scalar(select(Rsvp).where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == member.id))
    if rsvp is None:
        rsvp = Rsvp(meeting_id=meeting.id, member_id=member.id, answer=Answer.DECLINED, source=RsvpSource.ORGANISER)
        db.session.add(rsvp)
    rsvp.attended = True
    db.session.flush()
    return WalkInRecorded(rsvp=rsvp, feedback_asked=feedback.asked_later(meeting))


DEFAULT_GAP = dt.timedelta(weeks=6)


@dataclass
class NextMeeting:
    """A new meeting pre-filled from the last one of a series, with what the organiser is told about it."""

    data: MeetingData
    copied_from: Meeting
    date_reason: str


def _gap_in_words(gap: dt.timedelta) -> str:
    return plural(gap.days // 7, "week") if gap.days % 7 == 0 else plural(gap.days, "day")


def _series_gap(last: Meeting) -> tuple[dt.timedelta, str]:
    """The gap between the last two meetings of the series, when it has two, else the usual six weeks."""
    if last.series_id is not None:
        before = db.session.scalar(
            select(Meeting)
            .where(
                Meeting.series_id == last.series_id,
                Meeting.status == MeetingStatus.SCHEDULED,
                Meeting.starts_at < last.starts_at,
            )
            .order_by(Meeting.starts_at.desc())
            .limit(1)
        )
        if before is not None:
            zone = ZoneInfo(last.timezone)
            days = (last.starts_at.astimezone(zone).date() - before.starts_at.astimezone(zone).date()).days
            if 1 <= days <= 366:
                gap = dt.timedelta(days=days)
                return gap, f"the same gap as between the last two meetings ({_gap_in_words(gap)})"
    return DEFAULT_GAP, f"the usual gap of {_gap_in_words(DEFAULT_GAP)}"


def next_in_series(meeting: Meeting) -> NextMeeting:
    """The next meeting of `meeting`'s series, copied from the series' last meeting: title (to be changed), theme,
    description, the agenda's items and times without speakers, workshop rooms and their questions, capacity,
    answer-by time, visibility, contact and join link; same weekday and clock time, the series' usual gap later."""
    last = meeting
    if meeting.series_id is not None:
        latest = db.session.scalar(
            select(Meeting)
            .options(selectinload(Meeting.agenda_items), selectinload(Meeting.workshop_rooms))
            .where(Meeting.series_id == meeting.series_id, Meeting.status == MeetingStatus.SCHEDULED)
            .order_by(Meeting.starts_at.desc())
            .limit(1)
        )
        last = latest or meeting
    zone = ZoneInfo(last.timezone)
    start_local = last.starts_at.astimezone(zone)
    gap, why = _series_gap(last)
    day = start_local.date() + gap
    reason = f"{_gap_in_words(gap)} after the last meeting, {why}"
    today = utcnow().astimezone(zone).date()
    if day <= today:
        while day <= today:
            day += dt.timedelta(weeks=1)
        reason = f"the first {day:%A} from today: {_gap_in_words(gap)} after the last meeting has already passed"
    wall_clock = dt.datetime.combine(day, start_local.time().replace(tzinfo=None))
    starts_at = wall_clock.replace(tzinfo=zone).astimezone(dt.UTC)
    deadline = None
    if last.rsvp_deadline is not None:
        ahead = start_local.replace(tzinfo=None) - last.rsvp_deadline.astimezone(zone).replace(tzinfo=None)
        deadline = (wall_clock - ahead).replace(tzinfo=zone).astimezone(dt.UTC)
    copied = MeetingData.of(last, speakers=False)
    data = dataclasses.replace(
        copied, starts_at=starts_at, ends_at=starts_at + (last.ends_at - last.starts_at), rsvp_deadline=deadline
    )
    return NextMeeting(data, last, f"{timefmt.day(day)}: {reason}.")
