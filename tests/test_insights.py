"""Insights: a seeded history whose every figure is worked out beside it, on the page and in each download."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from kxn_meetings.extensions import db
from kxn_meetings.models.feedback import MeetingFeedback
from kxn_meetings.models.meetings import Meeting, MeetingSeries, MeetingStatus, Visibility
from kxn_meetings.models.members import Member, Region, Sector
from kxn_meetings.models.notes import ActionItem, ActionStatus
from kxn_meetings.models.rsvps import Answer, Invitation, Rsvp, RsvpSource
from kxn_meetings.services.insights import TABLES, Period, figures

from .html_forms import text
from .test_query_counts import counting_statements

MEMBERS = 400
SECTORS = list(Sector)
REGIONS = list(Region)
TODAY = dt.date(2026, 6, 1)
PERIOD = "start=2025-01-01&end=2025-12-31"


def sector_of(i: int) -> Sector | None:
    return None if i % 11 == 10 else SECTORS[i % 10]


def region_of(i: int) -> Region | None:
    """Outside the UK: members 59, 119, 179 and 239 only, four who come, a count the downloads show as "<5"."""
    if i >= 350:
        return None
    return Region.OUTSIDE_UK if i % 60 == 59 else REGIONS[i % 13]


def organisation_of(i: int) -> str:
    return f"Org {i % 40}"


@dataclass
class Planned:
    """One meeting of the history and who did what at it, by member number."""

    slug: str
    local_start: dt.datetime
    status: MeetingStatus = MeetingStatus.SCHEDULED
    going: list[int] = field(default_factory=list)
    came: set[int] = field(default_factory=set)
    declined: list[int] = field(default_factory=list)
    invited: list[int] = field(default_factory=list)
    walk_ins: list[int] = field(default_factory=list)
    scores: dict[int, tuple[int, str]] = field(default_factory=dict)

    @property
    def starts_at(self) -> dt.datetime:
        return self.local_start.astimezone(dt.UTC)


def plan() -> list[Planned]:
    """Twelve monthly meetings in 2025 (the first in Auckland on New Year's Day, which is still 2024 in UTC; the
    last in New York on New Year's Eve, already 2026 in UTC), one before (members 0-9 came), one cancelled, one
    the year after."""
    london, auckland, new_york = ZoneInfo("Europe/London"), ZoneInfo("Pacific/Auckland"), ZoneInfo("America/New_York")
    meetings = []
    for k in range(12):
        start = dt.datetime(2025, k + 1, 10, 15, tzinfo=london)
        if k == 0:
            start = dt.datetime(2025, 1, 1, 9, tzinfo=auckland)
        if k == 11:
            start = dt.datetime(2025, 12, 31, 22, tzinfo=new_york)
        going = list(range(k * 20, k * 20 + 40))
        came = {i for i in going if i % 4 != 0}
        meeting = Planned(
            f"m{k}",
            start,
            going=going,
            came=came,
            declined=list(range(k * 20 + 40, k * 20 + 45)),
            walk_ins=[300 + k],
        )
        meeting.invited = [*going, *meeting.declined, *range(360 + k, 365 + k)]
        meeting.scores = {i: (1 + (i // 3) % 5, f"Theme {k}" if i % 6 == 0 else "") for i in sorted(came) if i % 3 == 0}
        meetings.append(meeting)
    before = Planned("before", dt.datetime(2024, 6, 10, 15, tzinfo=london), going=list(range(10)), came=set(range(10)))
    cancelled = Planned("cancelled", dt.datetime(2025, 6, 20, 15, tzinfo=london), status=MeetingStatus.CANCELLED)
    after = Planned("after", dt.datetime(2026, 1, 15, 15, tzinfo=london), going=[399], came={399})
    return [before, *meetings, cancelled, after]


def seed(history: list[Planned]) -> dict[str, int]:
    series = MeetingSeries(name="Knowledge Exchange Network", slug="kxn")
    db.session.add(series)
    db.session.flush()
    db.session.execute(
        insert(Member),
        [
            {
                "name": f"Member {i}",
                "email": f"m{i}@example.org",
                "organisation": organisation_of(i),
                "sector": sector_of(i),
                "region": region_of(i),
            }
            for i in range(MEMBERS)
        ],
    )
    ids = {m.email: m.id for m in db.session.query(Member)}
    member_id = {i: ids[f"m{i}@example.org"] for i in range(MEMBERS)}
    meeting_ids = {}
    for p in history:
        meeting = Meeting(
            series_id=series.id,
            slug=p.slug,
            title=f"Meeting {p.slug}",
            starts_at=p.starts_at,
            ends_at=p.starts_at + dt.timedelta(hours=2),
            timezone=str(p.local_start.tzinfo),
            status=p.status,
            visibility=Visibility.PUBLIC,
        )
        db.session.add(meeting)
        db.session.flush()
        meeting_ids[p.slug] = meeting.id
        rsvps = [
            {"meeting_id": meeting.id, "member_id": member_id[i], "answer": Answer.GOING, "attended": i in p.came}
            for i in p.going
        ]
        rsvps += [{"meeting_id": meeting.id, "member_id": member_id[i], "answer": Answer.DECLINED} for i in p.declined]
        rsvps += [
            {
                "meeting_id": meeting.id,
                "member_id": member_id[i],
                "answer": Answer.DECLINED,
                "source": RsvpSource.ORGANISER,
                "attended": True,
            }
            for i in p.walk_ins
        ]
        if rsvps:
            db.session.execute(insert(Rsvp), rsvps)
        if p.invited:
            db.session.execute(
                insert(Invitation),
                [
                    {
                        "meeting_id": meeting.id,
                        "member_id": member_id[i],
                        "token": f"t{p.slug}x{i}" * 2,
                        "sent_at": p.starts_at,
                    }
                    for i in p.invited
                ],
            )
        if p.scores:
            db.session.execute(
                insert(MeetingFeedback),
                [
                    {"meeting_id": meeting.id, "member_id": member_id[i], "score": s, "future_topics": topic}
                    for i, (s, topic) in p.scores.items()
                ],
            )
        if p.slug.startswith("m"):
            db.session.add_all(
                [
                    ActionItem(meeting_id=meeting.id, text="Share the data", status=ActionStatus.DONE),
                    ActionItem(meeting_id=meeting.id, text="Write to the VRU", due_date=dt.date(2025, 1, 1)),
                    ActionItem(meeting_id=meeting.id, text="Plan the visit", due_date=dt.date(2099, 1, 1)),
                ]
            )
    db.session.commit()
    return meeting_ids


# --- The figures, worked out from the plan alone ------------------------------------------------------------


def expected(history: list[Planned], held: list[Planned]) -> dict:
    attended_ever: list[tuple[dt.datetime, int]] = []
    for p in history:
        if p.status.is_scheduled:
            attended_ever += [(p.starts_at, i) for i in (*p.came, *p.walk_ins)]
    first = {}
    times = Counter(i for _, i in attended_ever)
    for start, i in sorted(attended_ever):
        first.setdefault(i, start)
    rows = []
    for p in held:
        came = set(p.came) | set(p.walk_ins)
        first_time = {i for i in came if first[i] == p.starts_at}
        scores = [s for s, _ in p.scores.values()]
        rows.append(
            {
                "invited": len(p.invited),
                "answered": len(p.going) + len(p.declined),
                "going": len(p.going),
                "came_going": len(p.came),
                "attended": len(came),
                "first_time": len(first_time),
                "returning": len(came - first_time),
                "came_again": sum(1 for i in first_time if times[i] > 1),
                "feedback_answers": len(scores),
                "feedback_score": f"{sum(scores) / len(scores):.1f}",
            }
        )
    since = held[0].starts_at
    attendees = Counter(i for p in held for i in (*p.came, *p.walk_ins))
    before = {i for start, i in attended_ever if start < since}

    def reached(key):
        return {key(i) for i in attendees}

    def new(key):
        return {key(i) for i in attendees} - {key(i) for i in before}

    sectors = Counter(sector_of(i) for i in attendees)
    regions = Counter(region_of(i) for i in attendees)
    all_scores = [s for p in held for s, _ in p.scores.values()]
    return {
        "meetings": rows,
        "attendees": len(attendees),
        "returning": len(attendees) - sum(r["first_time"] for r in rows),
        "organisations": len(reached(organisation_of)),
        "new_organisations": len(new(organisation_of)),
        "sectors": sectors,
        "sectors_reached": len(reached(sector_of) - {None}),
        "new_sectors": len(new(sector_of) - {None}),
        "new_sector_set": new(sector_of),
        "regions": regions,
        "regions_reached": len(reached(region_of) - {None}),
        "repeat": {n: sum(1 for t in attendees.values() if min(t, 3) == n) for n in (1, 2, 3)},
        "feedback_answers": len(all_scores),
        "feedback_score": f"{sum(all_scores) / len(all_scores):.1f}",
        "themes": sum(1 for p in held for _, topic in p.scores.values() if topic),
    }


def small(n: int) -> str:
    return "<5" if 0 < n < 5 else str(n)


def pct(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%"


@pytest.fixture
def history(app):
    history = plan()
    seed(history)
    return history


def page_figures(page: str) -> dict[str, str]:
    return {html.unescape(dt_): html.unescape(dd) for dt_, dd in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", page)}


def table(page: str, table_id: str) -> list[list[str]]:
    body = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def download(client, name: str, query: str = PERIOD) -> list[list[str]]:
    response = client.get(f"/insights/{name}.csv?{query}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def test_every_figure_of_a_seeded_year_on_the_page_and_in_each_download(organiser_client, history):
    held = history[1:13]
    want = expected(history, held)
    rows = want["meetings"]
    total = {key: sum(r[key] for r in rows) for key in rows[0] if key != "feedback_score"}
    # A few figures said outright, so that the worked-out ones are seen to be the right kind of number.
    assert (len(held), total["invited"], total["going"], total["came_going"], total["attended"]) == (
        12,
        600,
        480,
        360,
        372,
    )

    response = organiser_client.get(f"/insights?{PERIOD}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "12 meetings held from Wednesday 1 January 2025 to Wednesday 31 December 2025, all series." in text(page)
    headline = {
        "Meetings held": "12",
        "Invitations sent": str(total["invited"]),
        "Response rate": pct(total["answered"], total["invited"]),
        "Going": str(total["going"]),
        "Attended": str(total["attended"]),
        "Came, of those going": pct(total["came_going"], total["going"]),
        "First-time attendees": str(total["first_time"]),
        "Returning attendees": str(want["returning"]),
        "Members who attended": str(want["attendees"]),
        "Organisations reached": str(want["organisations"]),
        "Organisations new this period": str(want["new_organisations"]),
        "Sectors reached": str(want["sectors_reached"]),
        "Sectors new this period": str(want["new_sectors"]),
        "Regions reached": str(want["regions_reached"]),
        "First-timers who came again": pct(total["came_again"], total["first_time"]),
        "Feedback answers": str(want["feedback_answers"]),
        "Average usefulness (1 to 5)": want["feedback_score"],
        "Actions from notes": "36",
        "Actions done": "12",
        "Actions overdue": "12",
    }
    assert page_figures(page) == headline
    # Members i % 4 == 0 do not come, so organisations 0, 4, ..., 36 come only through the walk-ins (300, 304 and
    # 308): 30 + 3 reached; of them 1-3, 5-7 and 9 had come in 2024, so 26 are new.
    assert (want["organisations"], want["new_organisations"]) == (33, 26)

    shown = table(page, "table-meetings")
    keys = ("invited", "answered", "going", "came_going", "attended", "first_time", "returning", "came_again")
    for row, plan_row, meeting in zip(shown, rows, held, strict=True):
        assert row[0] == f"Meeting {meeting.slug}"
        assert row[2:10] == [str(plan_row[k]) for k in keys]
        assert row[10:] == [str(plan_row["feedback_answers"]), plan_row["feedback_score"]]
    sectors = {r[0]: r[1] for r in table(page, "table-sectors")}
    assert sectors == {(s.label if s else "Not said"): str(n) for s, n in want["sectors"].items()}
    regions = {r[0]: r[1] for r in table(page, "table-regions")}
    assert regions == {(r.label if r else "Not said"): str(n) for r, n in want["regions"].items()}
    repeat = [r[1] for r in table(page, "table-repeat-attendance")]
    assert repeat == [str(want["repeat"][n]) for n in (1, 2, 3)]
    assert page.count('<li><span class="pre-line">Theme ') == want["themes"]

    # Charts: SVG with a title and a summary, drawn from the same figures as the tables.
    for chart in ("chart-attendance", "chart-sectors", "chart-regions", "chart-feedback"):
        svg = re.search(rf'<svg[^>]*id="{chart}".*?</svg>', page, re.S).group(0)
        assert re.search(r"<title id=\"[^\"]+\">[^<]+</title>\s*<desc", svg)
    attendance = re.search(r'<svg[^>]*id="chart-attendance".*?</svg>', page, re.S).group(0)
    assert re.findall(r'class="chart-value">(\d+) of (\d+) going<', attendance) == [
        (str(r["attended"]), str(r["going"])) for r in rows
    ]

    # Downloads: the same figures, counts of 1 to 4 people as "<5".
    summary = dict(download(organiser_client, "summary")[1:])
    people = {"Invitations sent", "Going", "Attended", "First-time attendees", "Returning attendees"}
    people |= {"Members who attended", "Feedback answers"}
    assert summary == {k: small(int(v)) if k in people else v for k, v in headline.items()}
    meetings_csv = download(organiser_client, "meetings")
    assert meetings_csv[0][:3] == ["Meeting", "Date", "Invited"]
    for row, plan_row, meeting in zip(meetings_csv[1:], rows, held, strict=True):
        assert row[1] == meeting.local_start.date().isoformat()
        assert row[2:11] == [small(plan_row[k]) for k in (*keys, "feedback_answers")]
        assert row[11] == (plan_row["feedback_score"] if plan_row["feedback_answers"] >= 5 else "")
    assert {r[0]: r[1] for r in download(organiser_client, "regions")[1:]} == {
        k: small(int(v)) for k, v in regions.items()
    }
    assert [r[1] for r in download(organiser_client, "regions")[1:] if r[0] == "Outside the UK"] == ["<5"]
    assert regions["Outside the UK"] == "4"  # exact on the page
    assert [r[1] for r in download(organiser_client, "repeat-attendance")[1:]] == [small(int(n)) for n in repeat]
    themes = download(organiser_client, "themes")
    assert len(themes) - 1 == want["themes"]
    per_meeting = download(organiser_client, "sectors-per-meeting")
    assert len(per_meeting) == 13
    new_sectors = {s.label if s else "Not said" for s in want["new_sector_set"]}
    assert download(organiser_client, "sectors")[1:] == [
        [label, small(int(n)), "yes" if label in new_sectors else "no"] for label, n in sectors.items()
    ]


def test_period_boundaries_are_days_in_each_meetings_zone(app, history):
    def slugs(start: dt.date, end: dt.date) -> list[str]:
        return [m.slug for m in figures(Period(start, end), today=TODAY).meetings]

    year = [f"m{k}" for k in range(12)]
    assert slugs(dt.date(2025, 1, 1), dt.date(2025, 12, 31)) == year
    # New Year's Day in Auckland is 31 December 2024 in UTC; New Year's Eve in New York is 2026 in UTC.
    assert slugs(dt.date(2024, 12, 31), dt.date(2024, 12, 31)) == []
    assert slugs(dt.date(2026, 1, 1), dt.date(2026, 1, 31)) == ["after"]
    assert slugs(dt.date(2025, 12, 31), dt.date(2025, 12, 31)) == ["m11"]
    assert slugs(dt.date(2025, 6, 1), dt.date(2025, 6, 30)) == ["m5"]  # the cancelled meeting is not held


def test_one_series_and_the_default_last_12_months(organiser_client, make_meeting):
    other = MeetingSeries(name="Regional round table", slug="regional")
    db.session.add(other)
    db.session.commit()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    make_meeting(slug="round-table", start=now - dt.timedelta(days=20), series_id=other.id)
    make_meeting(slug="last-year", start=now - dt.timedelta(days=400))
    make_meeting(slug="next-week", start=now + dt.timedelta(days=7))
    make_meeting(slug="recent", start=now - dt.timedelta(days=300))
    page = organiser_client.get("/insights").get_data(as_text=True)
    assert page_figures(page)["Meetings held"] == "2"  # the last 12 months, to today: not last year, not next week
    page = organiser_client.get(f"/insights?series={other.id}").get_data(as_text=True)
    assert page_figures(page)["Meetings held"] == "1" and "Regional round table" in page
    assert "That period cannot be shown" not in page
    page = organiser_client.get("/insights?start=2025-02-01&end=2025-01-01").get_data(as_text=True)
    assert "The end of the period comes before its start." in page
    assert "That period cannot be shown, so these figures are for the last 12 months." in page


@pytest.mark.parametrize(
    "query",
    [
        "start=9999-12-31",
        "start=0001-01-01",
        "end=9999-12-31",
        "end=0001-01-01",
        "start=0001-01-01&end=9999-12-31",
        "start=1899-12-31&end=3000-01-01",
    ],
)
def test_a_period_at_the_calendars_edge_is_refused_with_a_message(organiser_client, make_meeting, query):
    make_meeting(slug="recent", start=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    response = organiser_client.get(f"/insights?{query}&series=")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Enter a date between 1900 and 2999." in page
    assert "That period cannot be shown, so these figures are for the last 12 months." in page
    assert page_figures(page)["Meetings held"] == "1"  # the last 12 months instead
    for name in TABLES:
        download = organiser_client.get(f"/insights/{name}.csv?{query}")
        assert download.status_code == 200, name
        assert download.mimetype == "text/csv"


def test_a_period_at_the_ends_of_the_allowed_years_is_counted(organiser_client):
    page = organiser_client.get("/insights?start=1900-01-01&end=2999-12-31").get_data(as_text=True)
    assert "Enter a date between" not in page and page_figures(page)["Meetings held"] == "0"
    page = organiser_client.get("/insights?end=1900-01-01").get_data(as_text=True)
    assert "Enter a date between" not in page


def test_a_download_neutralises_formulas_in_themes(organiser_client, make_meeting, make_member):
    meeting = make_meeting(start=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    member = make_member()
    db.session.add(Rsvp(meeting_id=meeting.id, member_id=member.id, answer=Answer.GOING, attended=True))
    db.session.add(
        MeetingFeedback(meeting_id=meeting.id, member_id=member.id, score=3, future_topics="=cmd|' /C calc'!A0")
    )
    db.session.commit()
    themes = download(organiser_client, "themes", query="")
    assert themes[1][1] == "'=cmd|' /C calc'!A0"
    assert organiser_client.get("/insights/nothing.csv").status_code == 404


# --- However much history there is, the same statements ---------------------------------------------------------


def bulk_history(meetings: int, members: int, rsvps_per_meeting: int, first: int = 0) -> None:
    """`members` more members and `meetings` more past meetings (numbered from `first`), each with RSVPs from the
    members so far, two in three of them attended, and ten feedback answers."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    db.session.execute(
        insert(Member),
        [
            {"name": f"B{i}", "email": f"b{i}@example.org", "organisation": f"Org {i % 97}", "sector": sector_of(i)}
            for i in range(first * 1000, first * 1000 + members)
        ],
    )
    member_ids = [m.id for m in db.session.query(Member.id).order_by(Member.id)]
    for k in range(first, first + meetings):
        start = now - dt.timedelta(days=2 + 3 * k)
        meeting = Meeting(
            slug=f"b{k}",
            title=f"B{k}",
            starts_at=start,
            ends_at=start + dt.timedelta(hours=2),
            status=MeetingStatus.SCHEDULED,
            visibility=Visibility.PUBLIC,
        )
        db.session.add(meeting)
        db.session.flush()
        chosen = [member_ids[(k * 37 + j) % len(member_ids)] for j in range(rsvps_per_meeting)]
        db.session.execute(
            insert(Rsvp),
            [
                {"meeting_id": meeting.id, "member_id": m, "answer": Answer.GOING, "attended": j % 3 != 0}
                for j, m in enumerate(chosen)
            ],
        )
        db.session.execute(
            insert(MeetingFeedback),
            [{"meeting_id": meeting.id, "member_id": m, "score": 1 + j % 5} for j, m in enumerate(chosen[:10])],
        )
    db.session.commit()


def statements_for_page(client) -> int:
    client.get("/insights")  # the connection's first BEGIN is not the page's
    with counting_statements() as statements:
        assert client.get("/insights").status_code == 200
    return len(statements)


@pytest.mark.slow
def test_the_page_runs_the_same_statements_for_3_meetings_as_for_120(organiser_client):
    bulk_history(meetings=3, members=30, rsvps_per_meeting=20)
    few = statements_for_page(organiser_client)
    # 120 meetings, 2,000 members, 20,000 RSVPs in all.
    bulk_history(meetings=50, members=1000, rsvps_per_meeting=171, first=3)
    bulk_history(meetings=67, members=970, rsvps_per_meeting=170, first=53)
    assert db.session.query(Meeting).count() == 120 and db.session.query(Member).count() == 2001
    assert db.session.query(Rsvp).count() == 20_000
    assert statements_for_page(organiser_client) == few


@pytest.mark.app_config(INSIGHTS_SECONDS=60)
def test_a_process_reuses_a_periods_figures_for_a_while(organiser_client, make_meeting):
    make_meeting(slug="first", start=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    assert page_figures(organiser_client.get("/insights").get_data(as_text=True))["Meetings held"] == "1"
    make_meeting(slug="second", start=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    assert page_figures(organiser_client.get("/insights").get_data(as_text=True))["Meetings held"] == "1"
    other = organiser_client.get(f"/insights?start={dt.date.today() - dt.timedelta(days=10)}")
    assert page_figures(other.get_data(as_text=True))["Meetings held"] == "2"  # another period is counted afresh
