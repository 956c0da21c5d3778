"""Schedule the next one, really: the next meeting of a series copies the last one's structure (title marked to
change, theme, description, agenda times without speakers, rooms and questions, places, answer-by time, visibility,
contact and join link) on a date it explains; and the meeting form keeps every row typed, with or without scripts."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select

from kxn_meetings.demo import load_demo
from kxn_meetings.extensions import db
from kxn_meetings.models import AgendaItem, Meeting, MeetingSeries, Visibility, WorkshopQuestion, WorkshopRoom
from kxn_meetings.services import meetings as meeting_service

from .html_forms import form_values
from .meeting_helpers import meeting_form

LONDON = ZoneInfo("Europe/London")


def london(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=LONDON).astimezone(dt.UTC)


def series_of(make_meeting, make_member, *days: dt.date) -> list[Meeting]:
    series = MeetingSeries(name="KXN", slug="kxn-series")
    db.session.add(series)
    db.session.commit()
    contact = make_member(name="Stephen Walcott")
    made = [
        make_meeting(
            title=f"Meeting {n}",
            start=london(day, 15),
            series_id=series.id,
            theme="Youth engagement",
            description="About **youth engagement**.",
            capacity=60,
            visibility=Visibility.MEMBERS,
            contact_id=contact.id,
            rsvp_deadline=london(day, 15) - dt.timedelta(days=2),
        )
        for n, day in enumerate(days, start=1)
    ]
    last = made[-1]
    speaker = {"speaker_name": "Imran Hussain", "speaker_role": "Partnerships manager"}
    rows = [(0, "Welcome", {}), (10, "Listening to young people", speaker)]
    last.agenda_items = [
        AgendaItem(position=n, start_time=dt.time(15, minute), title=title, **who)
        for n, (minute, title, who) in enumerate(rows)
    ]
    last.workshop_rooms = [
        WorkshopRoom(position=0, name="Room A", questions=[WorkshopQuestion(position=0, text="What works?")])
    ]
    db.session.commit()
    return made


def test_the_next_one_copies_the_structure_without_speakers(app, make_meeting, make_member):
    *_, last = series_of(make_meeting, make_member, dt.date(2031, 1, 28), dt.date(2031, 3, 11))
    proposal = meeting_service.next_in_series(last)
    data = proposal.data
    assert proposal.copied_from.id == last.id
    assert (data.title, data.theme, data.description) == (last.title, "Youth engagement", "About **youth engagement**.")
    assert [(row.title, row.start_time) for row in data.agenda] == [
        ("Welcome", dt.time(15, 0)),
        ("Listening to young people", dt.time(15, 10)),
    ]
    assert all(not (row.speaker_name or row.speaker_role or row.speaker_organisation) for row in data.agenda)
    assert [(room.name, room.questions) for room in data.rooms] == [("Room A", ["What works?"])]
    assert (data.capacity, data.visibility, data.contact_id, data.join_url) == (
        60,
        Visibility.MEMBERS,
        last.contact_id,
        last.join_url,
    )
    assert data.series_id == last.series_id


def test_the_date_keeps_the_series_gap_and_the_wall_clock_across_the_clocks_changing(app, make_meeting, make_member):
    *_, last = series_of(make_meeting, make_member, dt.date(2031, 1, 28), dt.date(2031, 3, 11))
    proposal = meeting_service.next_in_series(last)
    start = proposal.data.starts_at.astimezone(LONDON)
    assert start.date() == dt.date(2031, 4, 22) and start.time() == dt.time(15, 0) and start.tzname() == "BST"
    assert proposal.data.ends_at - proposal.data.starts_at == dt.timedelta(hours=2)
    deadline = proposal.data.rsvp_deadline.astimezone(LONDON)
    assert (deadline.date(), deadline.time()) == (dt.date(2031, 4, 20), dt.time(15, 0))
    assert proposal.date_reason == (
        "Tuesday 22 April 2031: 6 weeks after the last meeting, the same gap as between the last two meetings "
        "(6 weeks)."
    )


def test_a_series_of_one_gets_the_usual_gap_said_so(app, make_meeting, make_member):
    [only] = series_of(make_meeting, make_member, dt.date(2031, 6, 3))
    proposal = meeting_service.next_in_series(only)
    assert proposal.data.starts_at.astimezone(LONDON).date() == dt.date(2031, 7, 15)
    assert proposal.date_reason == "Tuesday 15 July 2031: 6 weeks after the last meeting, the usual gap of 6 weeks."


def test_a_gap_already_passed_moves_to_the_first_same_weekday_from_today(app, make_meeting, make_member):
    past = dt.date.today() - dt.timedelta(days=120)
    [only] = series_of(make_meeting, make_member, past)
    proposal = meeting_service.next_in_series(only)
    day = proposal.data.starts_at.astimezone(LONDON).date()
    assert day > dt.date.today() and day.weekday() == past.weekday() and (day - dt.date.today()).days <= 7
    assert "from today: 6 weeks after the last meeting has already passed" in proposal.date_reason


def test_the_demo_9_march_meeting_is_copied_with_rooms_and_questions(app):
    load_demo(lambda _text: None)
    db.session.commit()
    march = db.session.scalars(select(Meeting).where(Meeting.title.startswith("Youth engagement"))).one()
    proposal = meeting_service.next_in_series(march)
    assert proposal.copied_from.id == march.id
    assert len(proposal.data.agenda) == len(march.agenda_items) >= 4
    assert proposal.data.rooms and all(room.questions for room in proposal.data.rooms)
    assert "6 weeks after the last meeting" in proposal.date_reason


def test_the_form_says_what_it_copies_and_refuses_the_same_title(app, make_meeting, make_member, organiser_client):
    *_, last = series_of(make_meeting, make_member, dt.date(2031, 1, 28), dt.date(2031, 3, 11))
    page = organiser_client.get(f"/meetings/new?from={last.slug}").get_data(as_text=True)
    assert f'Copied from <a href="/meetings/{last.slug}">“Meeting 2”</a> on Tuesday 11 March 2031' in page
    assert "Proposed date: Tuesday 22 April 2031: 6 weeks after the last meeting" in page
    values = form_values(page)
    assert values["agenda-1-title"] == "Listening to young people" and values["agenda-1-speaker_name"] == ""
    assert values["rooms-0-questions"] == "What works?"
    refused = organiser_client.post(f"/meetings/new?from={last.slug}", data=values)
    assert refused.status_code == 422
    values["title"] = "Meeting 3"
    assert organiser_client.post(f"/meetings/new?from={last.slug}", data=values).status_code == 302
    made = db.session.scalars(select(Meeting).where(Meeting.title == "Meeting 3")).one()
    assert made.series_id == last.series_id and [q.text for q in made.workshop_rooms[0].questions] == ["What works?"]


def test_adding_a_row_without_scripts_keeps_everything_typed(app, organiser_client):
    typed = meeting_form(**{"rooms-0-name": "Custody", "rooms-0-questions": "Who leads?"})
    for button in ("add_agenda_row", "add_room"):
        page = organiser_client.post("/meetings/new", data={**typed, button: "1"}).get_data(as_text=True)
        again = form_values(page)
        for name, value in typed.items():
            assert again.get(name) == value, name
    assert "Agenda item 3" in page and "Room 2" in page


def test_a_failed_save_keeps_every_row_typed(app, organiser_client):
    rows = {f"agenda-{n}-title": f"Item {n}" for n in range(6)}
    rows.update({f"agenda-{n}-start_time": f"15:{n}0" for n in range(6)})
    rows.update({f"rooms-{n}-name": f"Room {n}" for n in range(4)})
    typed = meeting_form(title="", **rows)
    response = organiser_client.post("/meetings/new", data=typed)
    assert response.status_code == 422
    again = form_values(response.get_data(as_text=True))
    for name, value in rows.items():
        assert again.get(name) == value, name
