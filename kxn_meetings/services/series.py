"""Series: the meetings that belong together ("Knowledge Exchange Network meetings"), their pages and feeds, and the
members who follow them with a standing answer.

A follower chooses *Invite me to each meeting* or *Count me in for each meeting unless I say otherwise* (a standing
Going). When a meeting of the series is published (`publish_to_followers`), each follower with a standing Going and
no answer of her own is answered Going, in the order the members followed (the follow's id), so that with a
capacity the first to follow take the places and the others join the waiting list in that order; then every
follower gets the usual invitation, with her answer already recorded. Answers made by hand while a meeting is being
published wait for the meeting's lock and come after. A member's own answer to one meeting always wins: the standing
answer only fills in where she has given none, and declining one meeting leaves it in place for the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError

from ..database import begin_write
from ..extensions import db
from ..models import (
    Answer,
    Meeting,
    MeetingNotes,
    MeetingSeries,
    MeetingStatus,
    Member,
    Rsvp,
    RsvpSource,
    SeriesFollow,
    StandingAnswer,
    Visibility,
    utcnow,
)
from ..text import first_control, slugify
from . import invitations, notices, rsvps
from .errors import ServiceError
from .follows import follower_members

NAME_MAX = 200
DESCRIPTION_MAX = 5000
PAST_SHOWN = 20


class SeriesError(ServiceError):
    pass


def find_series(ref: str | int) -> MeetingSeries | None:
    """A series by slug or numeric id, as URLs name it."""
    value = Meeting.parse_ref(ref)
    if value is None:
        return None
    if isinstance(value, int):
        return db.session.get(MeetingSeries, value)
    return db.session.scalar(select(MeetingSeries).where(MeetingSeries.slug == value))


def default_series() -> MeetingSeries:
    """The series a meeting joins when none is chosen: the first one, made when there is none."""
    series = db.session.scalar(select(MeetingSeries).order_by(MeetingSeries.id).limit(1))
    if series is None:
        series = MeetingSeries(name="Knowledge Exchange Network", slug="kxn")
        db.session.add(series)
        db.session.flush()
    return series


def choices() -> list[tuple[int, str]]:
    rows = db.session.execute(select(MeetingSeries.id, MeetingSeries.name).order_by(MeetingSeries.id))
    return [(series_id, name) for series_id, name in rows]


@dataclass
class SeriesRow:
    series: MeetingSeries
    upcoming: int
    followers: int


def overview() -> list[SeriesRow]:
    """Every series with its number of upcoming published meetings and of followers, in two queries."""
    now = utcnow()
    upcoming = (
        select(func.count(Meeting.id))
        .where(Meeting.series_id == MeetingSeries.id, Meeting.status == MeetingStatus.SCHEDULED, Meeting.ends_at > now)
        .scalar_subquery()
    )
    following = select(func.count(SeriesFollow.id)).where(SeriesFollow.series_id == MeetingSeries.id).scalar_subquery()
    rows = db.session.execute(select(MeetingSeries, upcoming, following).order_by(MeetingSeries.id))
    return [SeriesRow(series, count or 0, followers or 0) for series, count, followers in rows]


def _clean(name: str, description: str) -> tuple[str, str]:
    name = " ".join((name or "").split())
    description = (description or "").replace("\r\n", "\n").strip()
    problems = []
    if not name:
        problems.append(SeriesError("Give the series a name.", "name"))
    elif len(name) > NAME_MAX:
        problems.append(SeriesError(f"Keep the name to {NAME_MAX} characters.", "name"))
    elif first_control(name, invisible=True):
        problems.append(SeriesError("The name must be plain text on one line.", "name"))
    if len(description) > DESCRIPTION_MAX:
        problems.append(SeriesError(f"Keep the description to {DESCRIPTION_MAX} characters.", "description"))
    elif first_control(description.replace("\n", "").replace("\t", "")):
        problems.append(SeriesError("The description holds a control character: remove it.", "description"))
    if problems:
        raise SeriesError(problems[0].message, problems[0].field, also=problems[1:])
    return name, description


def _unique_slug(name: str) -> str:
    base = slugify(name, max_length=100, fallback="series")
    slug, n = base, 2
    while db.session.scalar(select(MeetingSeries.id).where(MeetingSeries.slug == slug)) is not None or (slug.isdigit()):
        slug, n = f"{base}-{n}", n + 1
    return slug


def _name_taken(name: str, exclude_id: int | None = None) -> bool:
    query = select(MeetingSeries.id).where(func.lower(MeetingSeries.name) == name.lower())
    if exclude_id is not None:
        query = query.where(MeetingSeries.id != exclude_id)
    return db.session.scalar(query) is not None


def create_series(name: str, description: str = "") -> MeetingSeries:
    begin_write()
    name, description = _clean(name, description)
    if _name_taken(name):
        raise SeriesError("A series of that name exists already.", "name")
    series = MeetingSeries(name=name, description=description, slug=_unique_slug(name))
    db.session.add(series)
    db.session.flush()
    return series


def update_series(series: MeetingSeries, name: str, description: str) -> None:
    """Rename or describe a series. Its address (slug) stays, so links and subscribed calendars keep working."""
    begin_write()
    name, description = _clean(name, description)
    if _name_taken(name, exclude_id=series.id):
        raise SeriesError("Another series has that name.", "name")
    series.name, series.description = name, description
    db.session.flush()


@dataclass
class PastMeeting:
    meeting: Meeting
    notes_published: bool


@dataclass
class SeriesPage:
    series: MeetingSeries
    upcoming: list[Meeting]
    past: list[PastMeeting]
    more_past: bool
    follower_count: int
    following: SeriesFollow | None = None
    answers: dict[int, Rsvp] = field(default_factory=dict)


def page(series: MeetingSeries, *, member: Member | None, organiser: bool) -> SeriesPage:
    """What the series page shows: upcoming published meetings (members-only ones to members), the latest past ones
    with whether their notes are out, the follower count, and the visitor's own follow and answers."""
    now = utcnow()
    shown = Meeting.status != MeetingStatus.DRAFT
    if member is None:
        shown = shown & (Meeting.visibility == Visibility.PUBLIC)
    in_series = select(Meeting).where(Meeting.series_id == series.id, shown)
    upcoming = list(db.session.scalars(in_series.where(Meeting.ends_at > now).order_by(Meeting.starts_at)))
    published = exists().where(MeetingNotes.meeting_id == Meeting.id, MeetingNotes.published_at.is_not(None))
    past_rows = db.session.execute(
        in_series.add_columns(published)
        .where(Meeting.ends_at <= now, Meeting.status == MeetingStatus.SCHEDULED)
        .order_by(Meeting.starts_at.desc())
        .limit(PAST_SHOWN + 1)
    ).all()
    past = [PastMeeting(meeting, bool(notes)) for meeting, notes in past_rows[:PAST_SHOWN]]
    result = SeriesPage(series, upcoming, past, len(past_rows) > PAST_SHOWN, follower_count(series) if organiser else 0)
    if member is not None:
        result.following = follow_of(series, member)
        ids = [m.id for m in upcoming]
        if ids:
            result.answers = {
                rsvp.meeting_id: rsvp
                for rsvp in db.session.scalars(
                    select(Rsvp).where(Rsvp.member_id == member.id, Rsvp.meeting_id.in_(ids))
                )
            }
    return result


def follower_count(series: MeetingSeries) -> int:
    return db.session.scalar(select(func.count(SeriesFollow.id)).where(SeriesFollow.series_id == series.id)) or 0


def follow_of(series: MeetingSeries, member: Member) -> SeriesFollow | None:
    return db.session.scalar(
        select(SeriesFollow).where(SeriesFollow.series_id == series.id, SeriesFollow.member_id == member.id)
    )


@dataclass
class Followed:
    follow: SeriesFollow
    created: bool
    # Upcoming meetings a standing Going answered for her now: Going, or the waiting list when full.
    answered: list[rsvps.AnswerResult]


def _open_meetings_without_answer(series: MeetingSeries, member: Member) -> list[Meeting]:
    answered = exists().where(Rsvp.meeting_id == Meeting.id, Rsvp.member_id == member.id)
    return list(
        db.session.scalars(
            select(Meeting)
            .where(
                Meeting.series_id == series.id,
                Meeting.status == MeetingStatus.SCHEDULED,
                Meeting.ends_at > utcnow(),
                ~answered,
            )
            .order_by(Meeting.starts_at)
        )
    )


def follow(series: MeetingSeries, member: Member, standing: StandingAnswer, *, in_feed: bool = False) -> Followed:
    """Follow a series, or change the standing answer of a follow. A standing Going also answers Going the upcoming
    published meetings she has not answered, with the usual confirmation (or waiting-list notice)."""
    if not member.active:
        raise SeriesError("This account is no longer active.")
    begin_write()
    current = follow_of(series, member)
    created = current is None
    if current is None:
        current = SeriesFollow(series_id=series.id, member_id=member.id, standing=standing, in_feed=in_feed)
        try:
            with db.session.begin_nested():
                db.session.add(current)
        except IntegrityError:
            # Followed at the same moment from another tab or email: that follow is changed instead.
            current = follow_of(series, member)
            if current is None:
                raise
            created = False
    current.standing, current.in_feed = standing, in_feed
    db.session.flush()
    answered = []
    if standing.is_going:
        for meeting in _open_meetings_without_answer(series, member):
            if rsvps.closed_reason(meeting) is not None:
                continue
            result = rsvps.answer(meeting.id, member, Answer.GOING, source=RsvpSource.SERIES)
            notices.queue_answer_notices(result)
            answered.append(result)
    return Followed(current, created, answered)


def unfollow(series: MeetingSeries, member: Member) -> bool:
    """Stop following; answers already given stay as they are. False when she was not following."""
    begin_write()
    current = follow_of(series, member)
    if current is None:
        return False
    db.session.delete(current)
    db.session.flush()
    return True


class PublishedToFollowers(NamedTuple):
    going: int
    waiting: int
    invited: int


def publish_to_followers(meeting: Meeting) -> PublishedToFollowers:
    """A meeting of a series has just been published (the caller holds its lock): standing Goings answered in
    follow order, then the invitation to every active follower, with her answer in it."""
    if meeting.series_id is None or meeting.ends_at <= utcnow():
        return PublishedToFollowers(going=0, waiting=0, invited=0)
    members = follower_members(meeting.series_id, standing=StandingAnswer.GOING)
    answered = set(
        db.session.scalars(
            select(Rsvp.member_id).where(Rsvp.meeting_id == meeting.id, Rsvp.member_id.in_([m.id for m in members]))
        )
    )
    going = waiting = 0
    if rsvps.closed_reason(meeting) is None:
        for member in members:
            if member.id in answered:
                continue
            result = rsvps.answer(meeting.id, member, Answer.GOING, source=RsvpSource.SERIES)
            if result.rsvp.is_waiting:
                waiting += 1
            else:
                going += 1
    invited = invitations.invite(meeting, follower_members(meeting.series_id))
    return PublishedToFollowers(going=going, waiting=waiting, invited=invited)
