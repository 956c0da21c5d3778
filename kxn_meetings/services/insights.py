"""Insights: what the network's meetings reached and changed over a period, for organisers and their funders.

Every figure is counted in the database (GROUP BY), in the same fixed number of queries however many meetings,
members and RSVPs there are: `figures()` runs the list of meetings, then one query per kind of figure over all of
them together. Python only adds up the rows those queries return (one per meeting, sector or region).

Definitions (the README's "Insights" section says the same for readers):
- a meeting *held* in the period: published, not cancelled, started, on a day of the period in its own zone;
- *going*: answered Going with a place (not waiting); *came, of those going*: those of them marked attended;
- *attended*: marked attended, walk-ins included;
- *first-time*: a member whose first meeting attended (in any series, ever) is this one; *returning*: any other;
  *came again*: a first-timer who attended any later meeting;
- an organisation, sector or region is *reached* when a member of it attended; *new* when none of its members had
  attended before the period's first meeting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, select

from ..extensions import db
from ..models import (
    ActionItem,
    ActionStatus,
    Answer,
    Invitation,
    Meeting,
    MeetingFeedback,
    MeetingSeries,
    MeetingStatus,
    Member,
    Region,
    Rsvp,
    RsvpSource,
    Sector,
    utcnow,
)

# Themes members asked for next, newest meetings first: enough to read, never the whole history.
THEMES_SHOWN = 100
# Exports show counts of people below this as "<5" (the usual public-sector disclosure rule).
DISCLOSURE_THRESHOLD = 5
SMALL = f"<{DISCLOSURE_THRESHOLD}"
AVERAGE = "Average usefulness (1 to 5)"


@dataclass(frozen=True)
class Period:
    """Days, from `start` to `end` included, each read in the zone of the meeting it holds; optionally one series."""

    start: dt.date
    end: dt.date
    series_id: int | None = None

    @classmethod
    def last_12_months(cls, today: dt.date, series_id: int | None = None) -> Period:
        day = min(today.day, 28) if today.month == 2 else today.day
        return cls(dt.date(today.year - 1, today.month, day) + dt.timedelta(days=1), today, series_id)

    def holds(self, meeting_start: dt.datetime, zone: str) -> bool:
        return self.start <= meeting_start.astimezone(ZoneInfo(zone)).date() <= self.end


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class MeetingFigures:
    id: int
    title: str
    slug: str
    starts_at: dt.datetime
    day: dt.date
    invited: int = 0
    answered: int = 0
    going: int = 0
    came_going: int = 0
    attended: int = 0
    feedback_score: float | None = None
    feedback_answers: int = 0
    first_time: int = 0
    returning: int = 0
    came_again: int = 0
    by_sector: dict[Sector | None, int] = field(default_factory=dict)

    @property
    def response_rate(self) -> float | None:
        return rate(self.answered, self.invited)

    @property
    def attendance_rate(self) -> float | None:
        return rate(self.came_going, self.going)


@dataclass
class Reach:
    """Members who attended, by one of their details (sector or region), with whether it is new this period."""

    choice: Sector | Region | None
    members: int
    new: bool = False

    @property
    def label(self) -> str:
        return self.choice.label if self.choice is not None else "Not said"


@dataclass
class Insights:
    period: Period
    meetings: list[MeetingFigures]
    attendees: int = 0
    organisations: int = 0
    new_organisations: int = 0
    sectors: list[Reach] = field(default_factory=list)
    regions: list[Reach] = field(default_factory=list)
    # Members by how many of the period's meetings they came to: 1, 2, and 3 or more.
    repeat: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0, 3: 0})
    actions_opened: int = 0
    actions_done: int = 0
    actions_overdue: int = 0
    themes: list[tuple[str, str]] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(m, name) for m in self.meetings)

    @property
    def response_rate(self) -> float | None:
        return rate(self.total("answered"), self.total("invited"))

    @property
    def attendance_rate(self) -> float | None:
        return rate(self.total("came_going"), self.total("going"))

    @property
    def returning_members(self) -> int:
        """Members who attended in the period and had attended before it."""
        return self.attendees - self.total("first_time")

    @property
    def retention(self) -> float | None:
        return rate(self.total("came_again"), self.total("first_time"))

    @property
    def feedback_answers(self) -> int:
        return self.total("feedback_answers")

    @property
    def feedback_score(self) -> float | None:
        answers = self.feedback_answers
        scored = sum(m.feedback_score * m.feedback_answers for m in self.meetings if m.feedback_score is not None)
        return scored / answers if answers else None

    @property
    def sectors_reached(self) -> int:
        return sum(1 for r in self.sectors if r.choice is not None)

    @property
    def new_sectors(self) -> int:
        return sum(1 for r in self.sectors if r.choice is not None and r.new)

    @property
    def regions_reached(self) -> int:
        return sum(1 for r in self.regions if r.choice is not None)

    @property
    def sector_columns(self) -> list[Sector | None]:
        """The sectors met in the period, in the vocabulary's order and "not said" last: the stacked chart's keys."""
        met = {r.choice for r in self.sectors}
        return [s for s in Sector if s in met] + ([None] if None in met else [])


def series_choices() -> list[tuple[int, str]]:
    query = select(MeetingSeries.id, MeetingSeries.name).order_by(MeetingSeries.name, MeetingSeries.id)
    return [(row.id, row.name) for row in db.session.execute(query)]


def _held(period: Period, now: dt.datetime) -> list[MeetingFigures]:
    """The meetings held in the period. The database narrows them by instant, a day either side for every zone;
    each meeting's own zone then says whether its day is in the period."""
    query = (
        select(Meeting.id, Meeting.title, Meeting.slug, Meeting.starts_at, Meeting.timezone)
        .where(
            Meeting.status == MeetingStatus.SCHEDULED,
            Meeting.starts_at <= now,
            Meeting.starts_at >= dt.datetime.combine(period.start, dt.time(), dt.UTC) - dt.timedelta(days=1),
            Meeting.starts_at < dt.datetime.combine(period.end, dt.time(), dt.UTC) + dt.timedelta(days=2),
        )
        .order_by(Meeting.starts_at, Meeting.id)
    )
    if period.series_id is not None:
        query = query.where(Meeting.series_id == period.series_id)
    return [
        MeetingFigures(
            row.id, row.title, row.slug, row.starts_at, row.starts_at.astimezone(ZoneInfo(row.timezone)).date()
        )
        for row in db.session.execute(query)
        if period.holds(row.starts_at, row.timezone)
    ]


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


ATTENDED = Rsvp.attended.is_(True)
ANSWERED = Rsvp.source != RsvpSource.ORGANISER  # a walk-in recorded by an organiser gave no answer


def _attended_with_firsts():
    """Every attendance of a member, with her first meeting attended (its start) and how many she attended, over
    all time: one pass with window functions, not a join back to a grouped subquery."""
    return (
        select(
            Rsvp.meeting_id.label("meeting_id"),
            Meeting.starts_at.label("starts_at"),
            func.min(Meeting.starts_at).over(partition_by=Rsvp.member_id).label("first_start"),
            func.count(Rsvp.id).over(partition_by=Rsvp.member_id).label("times"),
        )
        .join(Meeting, Meeting.id == Rsvp.meeting_id)
        .where(ATTENDED, Rsvp.member_id.is_not(None))
        .subquery()
    )


def _per_meeting(insights: Insights, ids: list[int]) -> None:
    by_id = {m.id: m for m in insights.meetings}
    invitations = db.session.execute(
        select(Invitation.meeting_id, func.count(Invitation.id), func.count(Rsvp.id))
        .outerjoin(
            Rsvp,
            and_(Rsvp.meeting_id == Invitation.meeting_id, Rsvp.member_id == Invitation.member_id, ANSWERED),
        )
        .where(Invitation.meeting_id.in_(ids), Invitation.sent_at.is_not(None))
        .group_by(Invitation.meeting_id)
    )
    for meeting_id, invited, answered in invitations:
        by_id[meeting_id].invited, by_id[meeting_id].answered = invited, answered
    going = and_(Rsvp.answer == Answer.GOING, Rsvp.waitlist_position.is_(None), ANSWERED)
    answers = db.session.execute(
        select(Rsvp.meeting_id, _count_if(going), _count_if(and_(going, ATTENDED)), _count_if(ATTENDED))
        .where(Rsvp.meeting_id.in_(ids))
        .group_by(Rsvp.meeting_id)
    )
    for meeting_id, going_count, came_going, attended in answers:
        row = by_id[meeting_id]
        row.going, row.came_going, row.attended = going_count, came_going, attended
    attended = _attended_with_firsts()
    first_here = attended.c.starts_at == attended.c.first_start
    newcomers = db.session.execute(
        select(
            attended.c.meeting_id,
            func.count(),
            _count_if(first_here),
            _count_if(and_(first_here, attended.c.times > 1)),
        )
        .where(attended.c.meeting_id.in_(ids))
        .group_by(attended.c.meeting_id)
    )
    for meeting_id, known, first_time, came_again in newcomers:
        row = by_id[meeting_id]
        row.first_time, row.returning, row.came_again = first_time, known - first_time, came_again
    sectors = db.session.execute(
        select(Rsvp.meeting_id, Member.sector, func.count(Rsvp.id))
        .join(Member, Member.id == Rsvp.member_id)
        .where(Rsvp.meeting_id.in_(ids), ATTENDED)
        .group_by(Rsvp.meeting_id, Member.sector)
    )
    for meeting_id, sector, count in sectors:
        by_id[meeting_id].by_sector[sector] = count
    scores = db.session.execute(
        select(MeetingFeedback.meeting_id, func.count(MeetingFeedback.id), func.avg(MeetingFeedback.score))
        .where(MeetingFeedback.meeting_id.in_(ids))
        .group_by(MeetingFeedback.meeting_id)
    )
    for meeting_id, count, average in scores:
        by_id[meeting_id].feedback_answers, by_id[meeting_id].feedback_score = count, float(average)


def _reach(insights: Insights, ids: list[int], since: dt.datetime) -> None:
    """Who came over the whole period: distinct members, by organisation, sector and region, and how often."""
    per_member = (
        select(Rsvp.member_id, func.count(Rsvp.id).label("times"))
        .where(Rsvp.meeting_id.in_(ids), ATTENDED, Rsvp.member_id.is_not(None))
        .group_by(Rsvp.member_id)
        .subquery()
    )
    bucket = case((per_member.c.times >= 3, 3), else_=per_member.c.times)
    for times, members in db.session.execute(select(bucket, func.count()).group_by(bucket)):
        insights.repeat[times] = members
    insights.attendees = sum(insights.repeat.values())

    # One pass over every attendance for each of these: reached in the period, and first reached when.
    in_period = Rsvp.meeting_id.in_(ids)
    organisation = func.lower(func.trim(Member.organisation))
    organisations = (
        select(
            func.min(Meeting.starts_at).label("first_start"),
            func.max(case((in_period, 1), else_=0)).label("reached"),
        )
        .select_from(Rsvp)
        .join(Member, Member.id == Rsvp.member_id)
        .join(Meeting, Meeting.id == Rsvp.meeting_id)
        .where(ATTENDED, organisation != "")
        .group_by(organisation)
        .subquery()
    )
    insights.organisations, insights.new_organisations = db.session.execute(
        select(func.count(), _count_if(organisations.c.first_start >= since)).where(organisations.c.reached == 1)
    ).one()

    sectors = db.session.execute(
        select(
            Member.sector,
            func.count(func.distinct(case((in_period, Member.id)))),
            func.min(Meeting.starts_at),
        )
        .select_from(Rsvp)
        .join(Member, Member.id == Rsvp.member_id)
        .join(Meeting, Meeting.id == Rsvp.meeting_id)
        .where(ATTENDED)
        .group_by(Member.sector)
    )
    insights.sectors = _ordered([Reach(s, n, new=first >= since) for s, n, first in sectors if n], Sector)
    members_by_region = db.session.execute(
        select(Member.region, func.count(func.distinct(Member.id)))
        .join(Rsvp, Rsvp.member_id == Member.id)
        .where(Rsvp.meeting_id.in_(ids), ATTENDED)
        .group_by(Member.region)
    )
    insights.regions = _ordered([Reach(r, n) for r, n in members_by_region], Region)


def _ordered(rows: list[Reach], vocabulary: Iterable[Sector | Region]) -> list[Reach]:
    """In the vocabulary's order, "not said" last."""
    order = {choice: n for n, choice in enumerate(vocabulary)}
    return sorted(rows, key=lambda r: order.get(r.choice, len(order)) if r.choice is not None else len(order) + 1)


def _actions_and_themes(insights: Insights, ids: list[int], today: dt.date) -> None:
    insights.actions_opened, insights.actions_done, insights.actions_overdue = db.session.execute(
        select(
            func.count(ActionItem.id),
            _count_if(ActionItem.status == ActionStatus.DONE),
            _count_if(and_(ActionItem.status == ActionStatus.OPEN, ActionItem.due_date < today)),
        ).where(ActionItem.meeting_id.in_(ids))
    ).one()
    insights.themes = [
        (title, text)
        for title, text in db.session.execute(
            select(Meeting.title, MeetingFeedback.future_topics)
            .join(Meeting, Meeting.id == MeetingFeedback.meeting_id)
            .where(MeetingFeedback.meeting_id.in_(ids), MeetingFeedback.future_topics != "")
            .order_by(Meeting.starts_at.desc(), MeetingFeedback.id)
            .limit(THEMES_SHOWN)
        )
    ]


def figures(period: Period, *, now: dt.datetime | None = None, today: dt.date | None = None) -> Insights:
    """Every figure of the Insights page for the period."""
    now = now or utcnow()
    today = today or now.date()
    insights = Insights(period, _held(period, now))
    ids = [m.id for m in insights.meetings]
    if not ids:
        return insights
    since = insights.meetings[0].starts_at  # the first meeting held: _held() orders them by start
    _per_meeting(insights, ids)
    _reach(insights, ids, since)
    _actions_and_themes(insights, ids, today)
    return insights


# --- Exports ------------------------------------------------------------------------------------------------------


def disclosed(count: int) -> int | str:
    """A count of people as an export shows it: 1 to 4 as "<5", so that no one can be picked out."""
    return SMALL if 0 < count < DISCLOSURE_THRESHOLD else count


def percent(value: float | None) -> str:
    return "" if value is None else f"{round(value * 100)}%"


def score(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def summary_rows(insights: Insights) -> list[tuple[str, int | str]]:
    """The headline figures, as on the page: (what, value); counts of people are plain ints."""
    return [
        ("Meetings held", len(insights.meetings)),
        ("Invitations sent", insights.total("invited")),
        ("Response rate", percent(insights.response_rate)),
        ("Going", insights.total("going")),
        ("Attended", insights.total("attended")),
        ("Came, of those going", percent(insights.attendance_rate)),
        ("First-time attendees", insights.total("first_time")),
        ("Returning attendees", insights.returning_members),
        ("Members who attended", insights.attendees),
        ("Organisations reached", insights.organisations),
        ("Organisations new this period", insights.new_organisations),
        ("Sectors reached", insights.sectors_reached),
        ("Sectors new this period", insights.new_sectors),
        ("Regions reached", insights.regions_reached),
        ("First-timers who came again", percent(insights.retention)),
        ("Feedback answers", insights.feedback_answers),
        (AVERAGE, score(insights.feedback_score)),
        ("Actions from notes", insights.actions_opened),
        ("Actions done", insights.actions_done),
        ("Actions overdue", insights.actions_overdue),
    ]


# Which summary figures count people (and so fall under the disclosure rule in exports).
PEOPLE = frozenset(
    {
        "Invitations sent",
        "Going",
        "Attended",
        "First-time attendees",
        "Returning attendees",
        "Members who attended",
        "Feedback answers",
    }
)


def _disclosed_figure(name: str, value: int | str, insights: Insights) -> tuple[str, int | str]:
    if name in PEOPLE and isinstance(value, int):
        return name, disclosed(value)
    if name == AVERAGE and insights.feedback_answers < DISCLOSURE_THRESHOLD:
        return name, ""
    return name, value


def _meeting_cells(m: MeetingFigures) -> list[int]:
    return [
        m.invited,
        m.answered,
        m.going,
        m.came_going,
        m.attended,
        m.first_time,
        m.returning,
        m.came_again,
        m.feedback_answers,
    ]


MEETING_HEADER = (
    "Meeting",
    "Date",
    "Invited",
    "Answered",
    "Going",
    "Came, of those going",
    "Attended",
    "First-time",
    "Returning",
    "First-timers who came again",
    "Feedback answers",
    "Average usefulness",
)


TABLES = ("summary", "meetings", "sectors", "sectors-per-meeting", "regions", "repeat-attendance", "themes")


def export_tables(insights: Insights) -> dict[str, list[Sequence[object]]]:
    """Each table of the page as CSV rows (header first), with counts of people under 5 shown as "<5"."""
    meetings: list[Sequence[object]] = [MEETING_HEADER]
    for m in insights.meetings:
        cells = [disclosed(n) for n in _meeting_cells(m)]
        shown_score = score(m.feedback_score) if m.feedback_answers >= DISCLOSURE_THRESHOLD else ""
        meetings.append([m.title, m.day.isoformat(), *cells, shown_score])
    sector_rows: list[Sequence[object]] = [("Sector", "Members who attended", "New this period")]
    sector_rows += [(r.label, disclosed(r.members), r.new) for r in insights.sectors]
    sector_meetings: list[Sequence[object]] = [
        ("Meeting", "Date", *(s.label if s else "Not said" for s in insights.sector_columns))
    ]
    sector_meetings += [
        (m.title, m.day.isoformat(), *(disclosed(m.by_sector.get(s, 0)) for s in insights.sector_columns))
        for m in insights.meetings
    ]
    return {
        "summary": [("Figure", "Value"), *(_disclosed_figure(name, v, insights) for name, v in summary_rows(insights))],
        "meetings": meetings,
        "sectors": sector_rows,
        "sectors-per-meeting": sector_meetings,
        "regions": [("Region", "Members who attended"), *((r.label, disclosed(r.members)) for r in insights.regions)],
        "repeat-attendance": [
            ("Meetings attended", "Members"),
            ("1", disclosed(insights.repeat[1])),
            ("2", disclosed(insights.repeat[2])),
            ("3 or more", disclosed(insights.repeat[3])),
        ],
        "themes": [("Meeting", "What a future meeting should cover"), *insights.themes],
    }
