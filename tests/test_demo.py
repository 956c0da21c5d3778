"""The demo network: realistic, loadable twice without duplicates, and visible on the site."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from kxn_meetings.demo import load_demo
from kxn_meetings.extensions import db
from kxn_meetings.models import (
    ActionItem,
    AgendaItem,
    Answer,
    Meeting,
    MeetingNotes,
    MeetingSeries,
    Member,
    NoteRevision,
    NotesStatus,
    Rsvp,
    Visibility,
    WorkshopQuestion,
    WorkshopRoom,
)

LONDON = ZoneInfo("Europe/London")
TABLES = [
    Member,
    MeetingSeries,
    Meeting,
    AgendaItem,
    WorkshopRoom,
    WorkshopQuestion,
    Rsvp,
    MeetingNotes,
    NoteRevision,
    ActionItem,
]
NEXT_TITLE = "Youth engagement, including the new children and young adult strategy"


def row_counts() -> dict[str, int]:
    return {model.__name__: db.session.scalar(select(func.count()).select_from(model)) for model in TABLES}


def load(today: dt.date | None = None) -> tuple[str, list[str]]:
    messages: list[str] = []
    summary = load_demo(messages.append, today=today)
    db.session.commit()
    return summary, messages


def meeting_titled(title: str) -> Meeting:
    return db.session.scalars(select(Meeting).where(Meeting.title == title)).one()


def test_loading_twice_adds_nothing_the_second_time(app):
    first, messages = load(dt.date(2026, 11, 26))
    counts = row_counts()
    assert first.startswith("Demo data ready: 31 members, 2 meetings, 1 set of notes (added 31 members")
    assert len(messages) >= 3

    second, _ = load(dt.date(2026, 11, 26))
    db.session.expire_all()
    assert row_counts() == counts
    assert second == "Demo data ready: 31 members, 2 meetings, 1 set of notes (nothing new)"
    assert counts["Member"] == 31
    assert counts["Meeting"] == 2
    assert counts["MeetingNotes"] == 1
    assert counts["NoteRevision"] == 1


def test_demo_keeps_what_is_already_there(app, make_member):
    existing = make_member(
        name="Stephen W.", email="Stephen.Walcott@police-foundation.org.uk", organisation="The Police Foundation"
    )
    summary, _ = load(dt.date(2026, 11, 26))
    assert "added 30 members" in summary
    db.session.expire_all()
    assert db.session.get(Member, existing.id).name == "Stephen W."
    assert meeting_titled(NEXT_TITLE).contact_id == existing.id


def test_next_meeting_is_the_coming_tuesday_9_march_at_3pm_london(app):
    load(dt.date(2026, 11, 26))
    meeting = meeting_titled(NEXT_TITLE)
    local = meeting.starts_at.astimezone(LONDON)
    assert (local.year, local.month, local.day, local.hour, local.minute) == (2027, 3, 9, 15, 0)
    assert local.weekday() == 1
    assert meeting.starts_at == dt.datetime(2027, 3, 9, 15, 0, tzinfo=dt.UTC)  # GMT in March before the clocks go
    assert meeting.ends_at == dt.datetime(2027, 3, 9, 17, 0, tzinfo=dt.UTC)
    assert meeting.slug == "2027-03-09-youth-engagement"
    assert meeting.theme == "Youth engagement"
    assert meeting.join_url == "https://meet.kxn.example.org/youth-engagement"
    assert meeting.capacity == 60
    assert meeting.is_public and meeting.status.value == "scheduled"
    assert meeting.contact.email == "stephen.walcott@police-foundation.org.uk"
    assert meeting.series.slug == "kxn"
    assert [item.start_time for item in meeting.agenda_items][:3] == [dt.time(15), dt.time(15, 10), dt.time(15, 35)]
    assert any("Workshop" in item.title for item in meeting.agenda_items)
    answers = {rsvp.answer for rsvp in db.session.scalars(select(Rsvp).where(Rsvp.meeting_id == meeting.id))}
    assert answers == {Answer.GOING, Answer.MAYBE, Answer.DECLINED}


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (dt.date(2027, 3, 8), dt.date(2027, 3, 9)),
        (dt.date(2027, 3, 9), dt.date(2032, 3, 9)),
        (dt.date(2027, 3, 10), dt.date(2032, 3, 9)),
        (dt.date(2032, 12, 31), dt.date(2038, 3, 9)),
    ],
)
def test_next_meeting_moves_to_the_next_year_9_march_is_a_tuesday(app, today, expected):
    load(today)
    meeting = meeting_titled(NEXT_TITLE)
    assert meeting.local_start.date() == expected
    assert meeting.local_start.hour == 15
    assert meeting.slug == f"{expected.isoformat()}-youth-engagement"


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (dt.date(2026, 11, 26), dt.date(2026, 1, 26)),
        (dt.date(2027, 1, 26), dt.date(2026, 1, 26)),
        (dt.date(2027, 1, 27), dt.date(2027, 1, 26)),
    ],
)
def test_meeting_two_is_the_last_26_january_before_today(app, today, expected):
    load(today)
    meeting = meeting_titled("Violence Reduction Units")
    assert meeting.local_start.date() == expected
    assert (meeting.local_start.hour, meeting.local_end.hour) == (15, 17)
    assert meeting.ends_at < dt.datetime.combine(today, dt.time(0), tzinfo=LONDON)


def test_meeting_two_has_its_speakers_rooms_rsvps_and_published_notes(app):
    load(dt.date(2026, 11, 26))
    meeting = meeting_titled("Violence Reduction Units")
    assert meeting.slug == "2026-01-26-violence-reduction-units"

    speakers = [
        (item.speaker_name, item.title, item.speaker_organisation) for item in meeting.agenda_items if item.speaker_name
    ]
    assert speakers == [
        ("Stan Gilmour", "The Sequential Intercept Model", "Thames Valley VRU"),
        ("Sue Clarke", "The social determinants of violence", "Lancashire VRU"),
        (
            "Phil Ashford",
            "The National Vulnerability Action Plan",
            "Vulnerability Knowledge and Practice Programme (VKPP)",
        ),
    ]
    assert all(item.speaker_role for item in meeting.agenda_items if item.speaker_name)

    questions = [question.text for room in meeting.workshop_rooms for question in room.questions]
    assert len(questions) == 5
    assert len(meeting.workshop_rooms) >= 2
    assert any("turns 18" in text for text in questions)

    rsvps = db.session.scalars(select(Rsvp).where(Rsvp.meeting_id == meeting.id)).all()
    assert {rsvp.answer for rsvp in rsvps} == {Answer.GOING, Answer.MAYBE, Answer.DECLINED}
    assert {rsvp.attended for rsvp in rsvps if rsvp.answer == Answer.GOING} == {True, False}

    notes = db.session.scalars(select(MeetingNotes).where(MeetingNotes.meeting_id == meeting.id)).one()
    assert notes.status == NotesStatus.PUBLISHED and notes.visibility == Visibility.PUBLIC
    assert meeting.ends_at < notes.published_at
    revision = notes.current_revision
    assert revision is not None and revision.number == 1 and notes.revisions == [revision]
    for heading in (
        '<h2 id="speakers">Speakers</h2>',
        '<h2 id="workshop-questions">Workshop questions</h2>',
        '<h2 id="lessons-learned-and-future-development">Lessons learned and future development</h2>',
        '<h2 id="emerging-practice">Emerging practice</h2>',
        '<h2 id="influencing-change-across-a-wider-system">Influencing change across a wider system</h2>',
        '<h2 id="actions">Actions</h2>',
        '<h2 id="next-meeting">Next meeting</h2>',
    ):
        assert heading in revision.body_html
    assert "Northumbria Police" in revision.body_html
    assert "Tuesday 9 March 2027, 3\u20135pm GMT" in revision.body_html
    assert '<a href="mailto:stephen.walcott@police-foundation.org.uk"' in revision.body_html

    actions = db.session.scalars(select(ActionItem).where(ActionItem.meeting_id == meeting.id)).all()
    assert 2 <= len(actions) <= 3
    assert any("screening tool" in action.text for action in actions)
    assert all(action.text in revision.body_markdown for action in actions)


def test_exactly_one_organiser_who_can_sign_in(app):
    load(dt.date(2026, 11, 26))
    organisers = db.session.scalars(select(Member).where(Member.is_organiser)).all()
    assert [(m.email, m.name, m.organisation) for m in organisers] == [
        ("organiser@kxn.example.org", "Olivia Organiser", "The Police Foundation")
    ]
    assert organisers[0].active


def test_invented_members_use_example_addresses(app):
    load(dt.date(2026, 11, 26))
    emails = db.session.scalars(select(Member.email)).all()
    real = [e for e in emails if not e.endswith(("@example.org", "@example.net", "@kxn.example.org"))]
    assert real == ["stephen.walcott@police-foundation.org.uk"]
    assert not any(e.endswith("police.uk") for e in emails)
    organisations = set(db.session.scalars(select(Member.organisation)))
    for name in (
        "Thames Valley VRU",
        "Lancashire VRU",
        "Northumbria Police",
        "South Wales VRU",
        "West Yorkshire VRU",
        "Bedfordshire Police",
        "Newcastle City Council",
        "Basildon Hospital",
        "Junction 42",
        "LEAD",
    ):
        assert name in organisations


def test_cli_command_loads_and_reports_progress(runner):
    result = runner.invoke(args=["kxn", "demo"])
    assert result.exit_code == 0, result.output
    assert "Members: 31" in result.output
    assert "Next meeting: " + NEXT_TITLE in result.output
    assert "Notes: " in result.output
    assert result.output.rstrip().splitlines()[-1].startswith("Demo data ready: 31 members, 2 meetings")

    again = runner.invoke(args=["kxn", "demo"])
    assert again.exit_code == 0, again.output
    assert again.output.rstrip().endswith("(nothing new)")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []

    def handle_data(self, data):
        self.chunks.append(data)


def test_home_page_shows_the_next_meeting(client, runner):
    assert runner.invoke(args=["kxn", "demo"]).exit_code == 0
    response = client.get("/")
    assert response.status_code == 200
    parser = _Text()
    parser.feed(response.get_data(as_text=True))
    text = " ".join(" ".join(parser.chunks).split())
    assert NEXT_TITLE in text
    assert "Violence Reduction Units" in text
