"""Scheduling meetings through the organiser's form, and what members and the public then see."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from kxn_meetings.extensions import db
from kxn_meetings.models import AgendaItem, Answer, Meeting, MeetingNotes, MeetingStatus, Rsvp, Visibility, WorkshopRoom
from kxn_meetings.services import invitations as invitation_service

from .dates import BST_START, GMT_START, JUNE_DAY, MARCH_DAY, YEAR
from .html_forms import field_error, form_values, text
from .meeting_helpers import future_day, meeting_count, meeting_form, only_meeting, record_answer, rsvp_count


def _last_sunday_of_march(year: int) -> dt.date:
    day = dt.date(year, 3, 31)
    return day - dt.timedelta(days=(day.weekday() + 1) % 7)


# Creating and publishing ---------------------------------------------------------------------------


def test_organiser_creates_a_draft_that_only_organisers_see_until_published(
    app, organiser_client, make_member, sign_in
):
    response = organiser_client.post("/meetings/new", data=meeting_form())
    assert response.status_code == 302
    meeting = only_meeting()
    assert response.headers["Location"] == f"/meetings/{meeting.slug}"
    assert meeting.status == MeetingStatus.DRAFT
    assert meeting.slug == f"{future_day().isoformat()}-policing-young-adults-what"
    assert [a.title for a in meeting.agenda_items] == ["Welcome and introductions", "Lessons from the Manchester pilot"]
    assert meeting.agenda_items[1].speaker_organisation == "University of Salford"
    assert [(r.name, [q.text for q in r.questions]) for r in meeting.workshop_rooms] == [
        ("Custody and diversion", ["What helps at the point of arrest?", "Who else should be in the room?"])
    ]

    page = organiser_client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert "Draft: only organisers can see this" in page
    assert "Meeting saved as a draft" in page
    assert "Add to your calendar" not in page and "Follow this series" not in page

    anonymous = app.test_client()
    assert anonymous.get(f"/meetings/{meeting.slug}").status_code == 404
    assert anonymous.get(f"/meetings/{meeting.id}").status_code == 404
    assert "Policing young adults" not in anonymous.get("/").get_data(as_text=True)
    other = app.test_client()
    sign_in(other, make_member())
    assert other.get(f"/meetings/{meeting.slug}").status_code == 404

    response = organiser_client.post(f"/meetings/{meeting.slug}/publish", follow_redirects=True)
    published = text(response.get_data(as_text=True))
    assert "Published" in published and "Nobody has been emailed yet: Invite sends the members" in published
    assert "Add to your calendar" in published
    assert only_meeting().status == MeetingStatus.SCHEDULED
    page = anonymous.get(f"/meetings/{meeting.slug}")
    assert page.status_code == 200
    assert "Policing young adults: what works" in page.get_data(as_text=True)
    assert "Policing young adults: what works" in anonymous.get("/").get_data(as_text=True)
    assert anonymous.get(f"/meetings/{meeting.id}").status_code == 200


@pytest.mark.parametrize(
    ("start", "shown", "instant"),
    [
        (GMT_START, f"{MARCH_DAY}, 3–5pm GMT", f"{YEAR}-03-09T15:00:00Z"),
        (BST_START, f"{JUNE_DAY}, 3–5pm BST", f"{YEAR}-06-09T14:00:00Z"),
    ],
)
def test_the_time_is_shown_in_the_meeting_zone_with_the_instant_for_machines(
    client, make_meeting, start, shown, instant
):
    meeting = make_meeting(start=start)
    page = client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert f'<time datetime="{instant}">{shown}</time>' in page
    assert f'<time datetime="{instant}">{shown}</time>' in client.get("/").get_data(as_text=True)


def test_a_meeting_made_through_the_form_in_june_is_stored_as_bst(organiser_client):
    day = dt.date(future_day().year + 1, 6, 9)
    organiser_client.post("/meetings/new", data=meeting_form(date=day.isoformat()))
    meeting = only_meeting()
    assert meeting.starts_at == dt.datetime(day.year, 6, 9, 14, 0, tzinfo=dt.UTC)
    assert meeting.ends_at == dt.datetime(day.year, 6, 9, 16, 0, tzinfo=dt.UTC)


# Validation ----------------------------------------------------------------------------------------

INVALID = [
    pytest.param(
        {"start_time": "17:00", "end_time": "15:00"},
        "end_time",
        "The meeting must end after it starts",
        id="end-before-start",
    ),
    pytest.param(
        {
            "date": future_day(60).isoformat(),
            "start_time": "22:00",
            "end_time": "01:00",
            "end_date": future_day(59).isoformat(),
        },
        "end_time",
        "must end after it starts",
        id="ends-the-day-before",
    ),
    pytest.param(
        {"date": future_day(60).isoformat(), "end_date": future_day(68).isoformat()},
        "end_time",
        "at most 7 days",
        id="eight-days-long",
    ),
    pytest.param(
        {"date": (dt.date.today() - dt.timedelta(days=1)).isoformat()},
        "date",
        "A new meeting cannot start in the past",
        id="in-the-past",
    ),
    pytest.param({"capacity": "0"}, "capacity", "Capacity is a whole number of at least 1", id="capacity-0"),
    pytest.param({"capacity": "-1"}, "capacity", "Capacity is a whole number of at least 1", id="capacity-negative"),
    pytest.param({"capacity": "abc"}, "capacity", "whole number", id="capacity-text"),
    pytest.param({"date": "2027-02-30"}, "date", "Enter a real date", id="no-such-date"),
    pytest.param({"start_time": "25:99"}, "start_time", "Enter a time such as", id="no-such-time"),
    pytest.param({"end_date": "soon"}, "end_date", "Enter a real date", id="end-date-text"),
    pytest.param(
        {"join_url": "http://meet.example.org/kxn"},
        "join_url",
        "The join link must start with https://",
        id="join-http",
    ),
    pytest.param({"join_url": "javascript:alert(1)"}, "join_url", "starting with https://", id="join-javascript"),
    pytest.param({"join_url": "", "location": ""}, "join_url", "Give a join link", id="nowhere"),
    pytest.param(
        {
            "date": future_day(60).isoformat(),
            "rsvp_deadline_date": future_day(61).isoformat(),
            "rsvp_deadline_time": "12:00",
        },
        "rsvp_deadline_date",
        "The answer-by date must be before the meeting starts",
        id="deadline-after",
    ),
    pytest.param({"rsvp_deadline_time": "12:00"}, "rsvp_deadline_date", "Give the date", id="deadline-no-date"),
    pytest.param({"title": "A\r\nB"}, "title", "one line", id="title-line-break"),
    pytest.param({"title": "   "}, "title", "Enter a title", id="title-blank"),
    pytest.param({"date": "0001-01-01"}, "date", "", id="year-one"),
    pytest.param(
        {"date": "9999-12-31", "timezone": "Pacific/Kiritimati"}, "date", "Choose a date in the next", id="year-9999"
    ),
    pytest.param(
        {"date": "9999-12-31", "timezone": "America/Los_Angeles", "start_time": "20:00", "end_time": "23:00"},
        "start_time",
        "too far away",
        id="beyond-the-calendar",
    ),
    pytest.param({"timezone": "Mars/Olympus_Mons"}, "timezone", "", id="unknown-zone"),
    pytest.param({"visibility": "everyone"}, "visibility", "", id="unknown-visibility"),
    pytest.param({"contact_id": "987654"}, "contact_id", "", id="unknown-contact"),
    pytest.param(
        {"agenda-0-title": "", "agenda-0-start_time": "15:00"},
        "agenda-0-title",
        "Give this agenda item",
        id="agenda-time-only",
    ),
    pytest.param({"description": "Notes\x00"}, "description", "characters that cannot be used", id="nul-description"),
    pytest.param(
        {"rooms-0-questions": "One\nTwo\x00"}, "rooms-0-questions", "characters that cannot be used", id="nul-question"
    ),
]


@pytest.mark.parametrize(("changes", "field_id", "message"), INVALID)
def test_invalid_meeting_answers_422_with_the_message_next_to_the_field_and_saves_nothing(
    organiser_client, changes, field_id, message
):
    response = organiser_client.post("/meetings/new", data=meeting_form(**changes))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    error = field_error(page, field_id)
    assert error is not None, f"no error next to {field_id}: {text(page)[:600]}"
    assert message in error
    assert "Not a valid" not in error  # WTForms' own words, which would repeat what the message says
    assert "There is a problem" in page
    assert meeting_count() == 0


def _spring_forward(days_before_meeting: int = 0, **times) -> dict[str, str]:
    day = _last_sunday_of_march(future_day().year + 1)
    return {"date": (day + dt.timedelta(days=days_before_meeting)).isoformat(), **times}


@pytest.mark.parametrize(
    ("changes", "field_id"),
    [
        pytest.param({"start_time": "01:30", "end_time": "03:00"}, "start_time", id="start"),
        pytest.param({"start_time": "00:30", "end_time": "01:30"}, "end_time", id="end"),
        pytest.param({"rsvp_deadline_time": "01:15", "days_before_meeting": 3}, "rsvp_deadline_time", id="deadline"),
    ],
)
def test_a_time_the_clocks_skip_is_refused_next_to_its_field(organiser_client, changes, field_id):
    """On the last Sunday of March, 01:00-02:00 does not happen in London."""
    changes = dict(changes)
    values = _spring_forward(changes.pop("days_before_meeting", 0), **changes)
    if "rsvp_deadline_time" in values:
        values["rsvp_deadline_date"] = _spring_forward()["date"]
    response = organiser_client.post("/meetings/new", data=meeting_form(**values))
    assert response.status_code == 422
    assert "does not exist in Europe/London" in field_error(response.get_data(as_text=True), field_id)
    assert meeting_count() == 0


def test_the_form_offers_more_agenda_rows_and_rooms_without_saving(organiser_client):
    response = organiser_client.post("/meetings/new", data=meeting_form(add_agenda_row="1"))
    assert response.status_code == 200
    values = form_values(response.get_data(as_text=True))
    assert values["agenda-1-title"] == "Lessons from the Manchester pilot"
    assert "agenda-3-title" in values
    response = organiser_client.post("/meetings/new", data=meeting_form(add_room="1"))
    assert "rooms-1-name" in form_values(response.get_data(as_text=True))
    assert meeting_count() == 0


def _rows(kind: str, count: int) -> dict[str, str]:
    """`count` filled agenda items or workshop rooms, as the form posts them."""
    if kind == "agenda":
        rows = {f"agenda-{i}-title": f"Talk {i}" for i in range(count)}
        return rows | {f"agenda-{i}-start_time": "" for i in range(count)}
    return {f"rooms-{i}-name": f"Room {i}" for i in range(count)} | {f"rooms-{i}-questions": "" for i in range(count)}


LIMITS = [("agenda", 40, "add_agenda_row", "agenda items"), ("rooms", 20, "add_room", "workshop rooms")]


@pytest.mark.parametrize(("kind", "limit", "button", "noun"), LIMITS)
def test_adding_a_row_at_the_limit_says_so_and_keeps_every_row(organiser_client, kind, limit, button, noun):
    """Without scripts "Add another" posts the form: at the limit it is shown again, every row as typed, saying why no
    row was added; nothing is saved."""
    data = {k: v for k, v in meeting_form().items() if not k.startswith(f"{kind}-")}
    response = organiser_client.post("/meetings/new", data=data | _rows(kind, limit) | {button: "1"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f"A meeting has at most {limit} {noun}." in text(page)
    values = form_values(page)
    field = "title" if kind == "agenda" else "name"
    assert values[f"{kind}-{limit - 1}-{field}"].endswith(str(limit - 1)) and f"{kind}-{limit}-{field}" not in values
    assert meeting_count() == 0


@pytest.mark.parametrize(("kind", "limit", "button", "noun"), LIMITS)
def test_more_rows_than_a_meeting_holds_are_refused_not_cut(organiser_client, kind, limit, button, noun):
    """A form with more rows than the limit (made by the page's script, or by hand) is refused with the count to
    remove and every row shown again; at the limit it is saved whole."""
    data = {k: v for k, v in meeting_form().items() if not k.startswith(f"{kind}-")}
    response = organiser_client.post("/meetings/new", data=data | _rows(kind, limit + 1))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f"A meeting has at most {limit} {noun}. This form has {limit + 1}: remove 1 to save it." in text(page)
    field = "title" if kind == "agenda" else "name"
    assert form_values(page)[f"{kind}-{limit}-{field}"].endswith(str(limit))
    assert meeting_count() == 0
    # A flood of rows (by hand: the page's script stops at the limit) is counted, and builds no more than twice the
    # limit of fields to show again.
    flood = organiser_client.post("/meetings/new", data=data | _rows(kind, limit * 50))
    assert flood.status_code == 422
    shown = flood.get_data(as_text=True)
    assert f"This form has {limit * 50}: remove {limit * 49} to save it." in text(shown)
    values = form_values(shown)
    assert f"{kind}-{2 * limit - 1}-{field}" in values and f"{kind}-{2 * limit}-{field}" not in values
    assert meeting_count() == 0
    response = organiser_client.post("/meetings/new", data=data | _rows(kind, limit))
    assert response.status_code == 302
    model = AgendaItem if kind == "agenda" else WorkshopRoom
    assert db.session.scalar(select(func.count(model.id))) == limit
    meeting = only_meeting()
    edit = organiser_client.post(f"/meetings/{meeting.slug}/edit", data=data | _rows(kind, limit) | {button: "1"})
    assert edit.status_code == 200 and f"A meeting has at most {limit} {noun}." in text(edit.get_data(as_text=True))


# Editing -------------------------------------------------------------------------------------------


def _published(client) -> Meeting:
    client.post("/meetings/new", data=meeting_form(capacity="20"))
    meeting = only_meeting()
    client.post(f"/meetings/{meeting.slug}/publish")
    return only_meeting()


def _edit(client, meeting: Meeting, **changes):
    page = client.get(f"/meetings/{meeting.slug}/edit").get_data(as_text=True)
    values = form_values(page)
    values.update(changes)
    return client.post(f"/meetings/{meeting.slug}/edit", data=values)


def test_the_edit_form_shows_what_was_saved(organiser_client):
    meeting = _published(organiser_client)
    values = form_values(organiser_client.get(f"/meetings/{meeting.slug}/edit").get_data(as_text=True))
    expected = meeting_form(capacity="20")
    for name in (
        "title",
        "theme",
        "description",
        "date",
        "start_time",
        "end_time",
        "timezone",
        "join_url",
        "capacity",
        "visibility",
        "agenda-1-title",
        "agenda-1-speaker_name",
        "rooms-0-name",
    ):
        assert values[name] == expected[name], name
    assert values["rooms-0-questions"].splitlines() == expected["rooms-0-questions"].splitlines()


@pytest.mark.parametrize(
    ("changes", "bumps"),
    [
        ({"description": "New words", "theme": "Another theme"}, False),
        ({"capacity": "30", "agenda-0-title": "Coffee"}, False),
        ({"rooms-0-questions": "One question only"}, False),
        ({"title": "Policing young adults: what works now"}, True),
        ({"start_time": "14:00"}, True),
        ({"end_time": "17:30"}, True),
        ({"date": future_day(67).isoformat()}, True),
        ({"join_url": "https://meet.example.org/another-room"}, True),
        ({"location": "Police Foundation, 1 Kings Place, London"}, True),
    ],
)
def test_edit_keeps_slug_and_uid_and_raises_sequence_only_for_changes_calendars_must_hear(
    organiser_client, changes, bumps
):
    meeting = _published(organiser_client)
    slug, uid = meeting.slug, meeting.uid
    assert meeting.sequence == 0
    response = _edit(organiser_client, meeting, **changes)
    assert response.status_code == 302, field_error(response.get_data(as_text=True), next(iter(changes)))
    meeting = only_meeting()
    assert (meeting.slug, meeting.uid) == (slug, uid)
    assert meeting.sequence == (1 if bumps else 0)
    for name, value in changes.items():
        if name in ("title", "description", "theme", "join_url", "location"):
            assert getattr(meeting, name) == value


def test_saving_the_edit_form_unchanged_changes_nothing(organiser_client):
    meeting = _published(organiser_client)
    _edit(organiser_client, meeting)
    _edit(organiser_client, meeting)
    meeting = only_meeting()
    assert meeting.sequence == 0
    assert meeting.capacity == 20
    assert len(meeting.agenda_items) == 2


def test_an_edit_with_no_capacity_is_saved(organiser_client):
    meeting = _published(organiser_client)
    _edit(organiser_client, meeting, capacity="")
    assert only_meeting().capacity is None
    _edit(organiser_client, meeting, description="Changed again while there is no limit")
    assert only_meeting().description == "Changed again while there is no limit"


def test_the_meeting_page_shows_the_description_as_last_edited(organiser_client, client):
    meeting = _published(organiser_client)
    _edit(organiser_client, meeting, description="## Before\n\nOld words")
    _edit(organiser_client, meeting, description="## After\n\n*New* words <script>alert(1)</script>")
    page = client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert '<h2 id="after">After</h2>' in page and "<em>New</em> words" in page
    assert "Old words" not in page and "<script>alert" not in page
    _edit(organiser_client, meeting, description="")
    assert 'id="after"' not in client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)


# Deleting drafts ----------------------------------------------------------------------------------


def test_an_organiser_deletes_a_draft_after_confirming(organiser_client):
    organiser_client.post("/meetings/new", data=meeting_form())
    draft = only_meeting()
    assert draft.status == MeetingStatus.DRAFT and draft.agenda_items and draft.workshop_rooms
    assert f"/meetings/{draft.slug}/delete" in organiser_client.get(f"/meetings/{draft.slug}").get_data(as_text=True)

    confirm = organiser_client.get(f"/meetings/{draft.slug}/delete")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.get_data(as_text=True)
    assert meeting_count() == 1

    response = organiser_client.post(f"/meetings/{draft.slug}/delete")
    assert response.status_code == 302 and urlsplit(response.location).path == "/"
    assert meeting_count() == 0
    assert db.session.scalar(select(func.count(AgendaItem.id))) == 0
    assert db.session.scalar(select(func.count(WorkshopRoom.id))) == 0
    home = organiser_client.get("/").get_data(as_text=True)
    assert "Deleted the draft \u201cPolicing young adults: what works\u201d." in home
    assert organiser_client.get(f"/meetings/{draft.slug}").status_code == 404


def test_a_published_meeting_is_not_deleted_but_can_be_cancelled(organiser_client):
    meeting = _published(organiser_client)
    assert "Delete draft" not in organiser_client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    response = organiser_client.post(f"/meetings/{meeting.slug}/delete", follow_redirects=True)
    assert "can be cancelled instead" in response.get_data(as_text=True)
    assert meeting_count() == 1 and only_meeting().status == MeetingStatus.SCHEDULED


def test_a_draft_with_notes_is_kept(organiser_client, make_meeting):
    draft = make_meeting(status=MeetingStatus.DRAFT)
    db.session.add(MeetingNotes(meeting_id=draft.id))
    db.session.commit()
    for method in (organiser_client.get, organiser_client.post):
        response = method(f"/meetings/{draft.slug}/delete", follow_redirects=True)
        assert "This draft has notes written for it, so it is kept." in response.get_data(as_text=True)
    assert meeting_count() == 1


def test_an_invalid_edit_changes_nothing(organiser_client):
    meeting = _published(organiser_client)
    response = _edit(organiser_client, meeting, title="Moved", end_time="14:00")
    assert response.status_code == 422
    assert "must end after" in field_error(response.get_data(as_text=True), "end_time")
    meeting = only_meeting()
    assert meeting.title == "Policing young adults: what works"
    assert meeting.sequence == 0


def test_a_meeting_that_ends_after_midnight_is_scheduled_and_edited_with_its_end_date(organiser_client):
    first, second = future_day(), future_day(61)
    response = organiser_client.post(
        "/meetings/new",
        data=meeting_form(
            start_time="22:30", end_time="00:30", end_date=second.isoformat(), timezone="America/New_York"
        ),
    )
    assert response.status_code == 302
    meeting = only_meeting()

    def local(instant: dt.datetime) -> dt.datetime:
        return instant.astimezone(ZoneInfo("America/New_York")).replace(tzinfo=None)

    assert local(meeting.starts_at) == dt.datetime.combine(first, dt.time(22, 30))
    assert local(meeting.ends_at) == dt.datetime.combine(second, dt.time(0, 30))

    values = form_values(organiser_client.get(f"/meetings/{meeting.slug}/edit").get_data(as_text=True))
    assert (values["date"], values["end_time"], values["end_date"]) == (first.isoformat(), "00:30", second.isoformat())
    assert _edit(organiser_client, meeting, title="Late session").status_code == 302
    assert only_meeting().title == "Late session"
    assert only_meeting().ends_at == meeting.ends_at

    assert _edit(organiser_client, meeting, end_date="", end_time="23:30").status_code == 302
    assert local(only_meeting().ends_at) == dt.datetime.combine(first, dt.time(23, 30))
    values = form_values(organiser_client.get(f"/meetings/{meeting.slug}/edit").get_data(as_text=True))
    assert values.get("end_date", "") == ""


def test_a_past_meeting_can_still_be_corrected(organiser_client, make_meeting):
    meeting = make_meeting(start=dt.datetime.now(dt.UTC) - dt.timedelta(days=3), title="Meeting two")
    response = _edit(organiser_client, meeting, title="Meeting two: policing young adults")
    assert response.status_code == 302
    assert only_meeting().title == "Meeting two: policing young adults"


# Cancelling ----------------------------------------------------------------------------------------


def test_cancel_with_a_reason_shows_on_the_page_and_blocks_answers(app, organiser_client, make_member, sign_in):
    meeting = _published(organiser_client)
    page = organiser_client.get(f"/meetings/{meeting.slug}/cancel")
    assert page.status_code == 200
    response = organiser_client.post(f"/meetings/{meeting.slug}/cancel", data={"reason": ""})
    assert response.status_code == 422
    assert "Say briefly why" in field_error(response.get_data(as_text=True), "reason")
    assert not only_meeting().is_cancelled

    organiser_client.post(f"/meetings/{meeting.slug}/cancel", data={"reason": "The speakers are unwell."})
    meeting = only_meeting()
    assert meeting.is_cancelled and meeting.sequence == 1
    page = app.test_client().get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert "This meeting has been cancelled" in page
    assert "The speakers are unwell." in page
    assert "Cancelled" in app.test_client().get("/").get_data(as_text=True)

    person = make_member()
    member_client = app.test_client()
    sign_in(member_client, person)
    page = member_client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert 'name="answer"' not in page
    response = member_client.post(f"/meetings/{meeting.slug}/rsvp", data={"answer": "going"}, follow_redirects=True)
    assert "This meeting has been cancelled, so it no longer takes answers." in text(response.get_data(as_text=True))
    assert rsvp_count() == 0

    token = invitation_service.personal_link(meeting, person).token
    db.session.commit()
    page = app.test_client().get(f"/meetings/{meeting.slug}/answer/{token}?answer=going").get_data(as_text=True)
    assert "no longer takes answers" in page
    assert "Confirm my answer" not in page
    app.test_client().post(f"/meetings/{meeting.slug}/answer/{token}", data={"answer": "going"})
    assert rsvp_count() == 0

    assert organiser_client.get(f"/meetings/{meeting.slug}/edit").status_code == 302
    again = organiser_client.post(f"/meetings/{meeting.slug}/cancel", data={"reason": "again"}, follow_redirects=True)
    assert "already cancelled" in again.get_data(as_text=True)
    assert only_meeting().sequence == 1


def test_a_draft_cannot_be_cancelled_into_public_view(app, organiser_client):
    organiser_client.post("/meetings/new", data=meeting_form())
    meeting = only_meeting()
    assert "Cancel meeting" not in organiser_client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    response = organiser_client.post(
        f"/meetings/{meeting.slug}/cancel", data={"reason": "Not needed"}, follow_redirects=True
    )
    assert "nothing to cancel" in response.get_data(as_text=True)
    assert only_meeting().status == MeetingStatus.DRAFT
    assert app.test_client().get(f"/meetings/{meeting.slug}").status_code == 404


def test_a_cancel_reason_with_control_characters_is_refused(organiser_client):
    meeting = _published(organiser_client)
    response = organiser_client.post(f"/meetings/{meeting.slug}/cancel", data={"reason": "Flooded\x00"})
    assert response.status_code == 422
    assert "characters that cannot be used" in field_error(response.get_data(as_text=True), "reason")
    assert not only_meeting().is_cancelled


# The next meeting in a series ----------------------------------------------------------------------


def test_schedule_the_next_one_prefills_zone_join_link_and_rooms(organiser_client):
    organiser_client.post(
        "/meetings/new",
        data=meeting_form(
            timezone="Europe/Dublin",
            join_url="https://meet.example.org/kxn-series",
            capacity="40",
            **{"rooms-0-name": "Custody", "rooms-1-name": "Health and housing", "rooms-1-questions": "Who leads?"},
        ),
    )
    meeting = only_meeting()
    organiser_client.post(f"/meetings/{meeting.slug}/publish")
    page = organiser_client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert f"/meetings/new?from={meeting.slug}" in page

    response = organiser_client.get(f"/meetings/new?from={meeting.slug}")
    assert response.status_code == 200
    values = form_values(response.get_data(as_text=True))
    assert values["timezone"] == "Europe/Dublin"
    assert values["join_url"] == "https://meet.example.org/kxn-series"
    assert values["capacity"] == "40"
    assert (values["rooms-0-name"], values["rooms-1-name"]) == ("Custody", "Health and housing")
    assert values["title"] == meeting.title
    assert (values["start_time"], values["end_time"]) == ("15:00", "17:00")
    assert dt.date.fromisoformat(values["date"]) > meeting.starts_at.date()

    kept = organiser_client.post(f"/meetings/new?from={meeting.slug}", data=values)
    assert kept.status_code == 422
    assert "Change the title: it is still that of the meeting this one is copied from." in kept.get_data(as_text=True)
    values["title"] = "Meeting four"
    response = organiser_client.post(f"/meetings/new?from={meeting.slug}", data=values)
    assert response.status_code == 302
    new = db.session.scalars(select(Meeting).where(Meeting.title == "Meeting four")).one()
    assert new.series_id == meeting.series_id
    assert new.uid != meeting.uid
    assert [r.name for r in new.workshop_rooms] == ["Custody", "Health and housing"]


def test_schedule_the_next_one_of_an_unknown_meeting_is_404(organiser_client):
    assert organiser_client.get("/meetings/new?from=no-such-meeting").status_code == 404


# Members-only meetings and the join link ----------------------------------------------------------


def test_members_only_meeting_asks_anonymous_visitors_to_sign_in(app, client, make_meeting, member, sign_in):
    meeting = make_meeting(
        title="Closed session on custody data", theme="Confidential figures", visibility=Visibility.MEMBERS
    )
    response = client.get(f"/meetings/{meeting.slug}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/sign-in?next=/meetings/{meeting.slug}"
    home = client.get("/").get_data(as_text=True)
    assert "Members-only meeting" in home
    assert "Closed session on custody data" not in home
    assert "Confidential figures" not in home

    sign_in(client, member)
    assert "Closed session on custody data" in client.get("/").get_data(as_text=True)
    assert client.get(f"/meetings/{meeting.slug}").status_code == 200


def test_members_only_meeting_in_the_past_list_hides_its_title(client, make_meeting):
    make_meeting(
        title="Closed session last year",
        visibility=Visibility.MEMBERS,
        start=dt.datetime.now(dt.UTC) - dt.timedelta(days=40),
    )
    home = client.get("/").get_data(as_text=True)
    assert "Closed session last year" not in home
    assert "Members-only meeting" in home


@pytest.mark.parametrize(
    ("who", "answer", "sees_link"),
    [
        ("anonymous", None, False),
        ("member", None, False),
        ("member", Answer.MAYBE, False),
        ("member", Answer.DECLINED, False),
        ("member", Answer.GOING, True),
        ("organiser", None, True),
    ],
)
def test_join_link_is_shown_only_to_members_going_and_to_organisers(
    client, make_meeting, member, organiser, sign_in, who, answer, sees_link
):
    meeting = make_meeting(join_url="https://meet.example.org/secret-room-42")
    if answer is not None:
        record_answer(meeting.id, member, answer)
        db.session.commit()
    if who != "anonymous":
        sign_in(client, member if who == "member" else organiser)
    page = client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert ("secret-room-42" in page) is sees_link
    assert "secret-room-42" not in client.get("/").get_data(as_text=True)


def test_a_member_on_the_waiting_list_does_not_see_the_join_link(client, make_meeting, make_member, member, sign_in):
    meeting = make_meeting(join_url="https://meet.example.org/secret-room-42", capacity=1)
    record_answer(meeting.id, make_member(), Answer.GOING)
    db.session.commit()
    record_answer(meeting.id, member, Answer.GOING)
    db.session.commit()
    sign_in(client, member)
    page = client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert "waiting list, position 1" in page
    assert "secret-room-42" not in page


# Any input at all ----------------------------------------------------------------------------------

FIELD_NAMES = [*list(meeting_form()), "agenda-2-title", "agenda-39-speaker_name", "rooms-1-name", "rooms-19-questions"]
ANY_TEXT = st.text(max_size=40) | st.sampled_from(
    [
        "\x00",
        "0",
        "-1",
        "9999-12-31",
        "0001-01-01",
        "24:00",
        "²",
        "١٢",
        "99999999999999999999",
        "https://",
        "\r\n",
        "%00",
    ]
)


@given(data=st.data())
def test_any_text_in_any_meeting_field_never_gives_a_server_error(organiser_client, data):
    values = meeting_form()
    for name in data.draw(st.lists(st.sampled_from(FIELD_NAMES), min_size=1, max_size=6, unique=True)):
        values[name] = data.draw(ANY_TEXT)
    for name in data.draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=3, unique=True)):
        values.pop(name, None)  # a hand-made request may leave any field out
    response = organiser_client.post("/meetings/new", data=values)
    assert response.status_code in (302, 422), values
    if response.status_code == 302:
        slug = response.headers["Location"].rsplit("/", 1)[-1]
        assert organiser_client.get(f"/meetings/{slug}").status_code == 200
        edit = organiser_client.post(f"/meetings/{slug}/edit", data=values)
        assert edit.status_code in (302, 422), values


@given(
    answer=st.sampled_from(["going", "maybe", "declined"]) | ANY_TEXT,
    access_needs=ANY_TEXT,
    comment=ANY_TEXT,
    ref=st.sampled_from(["slug", "id"]) | ANY_TEXT,
)
def test_any_text_in_an_rsvp_never_gives_a_server_error(
    app, organiser_client, organiser, make_meeting, answer, access_needs, comment, ref
):
    meeting = db.session.scalar(select(Meeting).where(Meeting.slug == "any-text")) or make_meeting(
        slug="any-text", capacity=2
    )
    ref = {"slug": meeting.slug, "id": str(meeting.id)}.get(ref, ref)
    form = {"answer": answer, "access_needs": access_needs, "comment": comment}
    response = organiser_client.post(f"/meetings/{quote(ref, safe='')}/rsvp", data=form)
    assert response.status_code < 500, form
    token = invitation_service.personal_link(meeting, organiser).token
    db.session.commit()
    for path in (f"/meetings/any-text/answer/{token}", f"/meetings/any-text/answer/{quote(ref, safe='')}"):
        assert app.test_client().post(path, data=form).status_code < 500, (path, form)
        assert app.test_client().get(path, query_string={"answer": answer}).status_code < 500, (path, answer)
    rows = db.session.scalars(select(Rsvp).where(Rsvp.meeting_id == meeting.id)).all()
    assert len(rows) <= 2


@pytest.mark.parametrize(
    "missing",
    [
        "agenda-0-title",
        "agenda-0-speaker_name",
        "rooms-0-name",
        "theme",
        "visibility",
        "contact_id",
        "timezone",
        "end_time",
        "description",
        "join_url",
    ],
)
def test_a_request_without_a_field_is_answered_without_a_server_error(organiser_client, missing):
    values = meeting_form(**{"agenda-0-title": "", "agenda-0-speaker_name": "Dr Asha Patel"})
    del values[missing]
    assert organiser_client.post("/meetings/new", data=values).status_code in (302, 422)


def _autumn_day() -> dt.date:
    """The last Sunday of October of a year ahead: in London, 01:00-01:59 happens twice (BST, then GMT)."""
    day = dt.date(future_day().year + 1, 10, 31)
    return day - dt.timedelta(days=(day.weekday() + 1) % 7)


def test_a_time_the_clocks_go_back_over_needs_a_choice_and_every_parser_reads_the_one_chosen(organiser_client, client):
    from .test_calendar import read_all

    day = _autumn_day()
    form = meeting_form(date=day.isoformat(), start_time="01:30", end_time="01:45", title="Night shift")
    response = organiser_client.post("/meetings/new", data=form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "01:30 happens twice in Europe/London on that day" in field_error(page, "start_fold")
    assert "01:45 happens twice" in field_error(page, "end_fold")
    for label in (
        "01:30 BST (UTC+1, first)",
        "01:30 GMT (UTC+0, second)",
        "01:45 BST (UTC+1, first)",
        "01:45 GMT (UTC+0, second)",
    ):
        assert label in page
    assert meeting_count() == 0

    # The first 01:30 (BST) to the second 01:45 (GMT): an hour and a quarter.
    response = organiser_client.post("/meetings/new", data={**form, "start_fold": "0", "end_fold": "1"})
    assert response.status_code == 302
    meeting = only_meeting()
    start = dt.datetime.combine(day, dt.time(0, 30), tzinfo=dt.UTC)
    assert (meeting.starts_at, meeting.ends_at) == (start, start + dt.timedelta(hours=1, minutes=15))
    assert organiser_client.post(f"/meetings/{meeting.slug}/publish").status_code == 302
    shown = client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert "1:30am BST" in shown and "1:45am GMT" in shown

    ics = client.get(f"/meetings/{meeting.slug}/calendar.ics").data
    unfolded = ics.replace(b"\r\n ", b"")
    assert f"DTSTART:{start:%Y%m%dT%H%M%S}Z".encode() in unfolded  # one instant, not a wall-clock time
    for parser, calendar in read_all(ics):
        [event] = calendar["events"]
        assert (event["start"], event["end"]) == (meeting.starts_at, meeting.ends_at), parser

    # Editing shows the choice made, and the second 01:30 is an hour after the first.
    edit = organiser_client.get(f"/meetings/{meeting.slug}/edit").get_data(as_text=True)
    assert form_values(edit)["start_fold"] == "0" and form_values(edit)["end_fold"] == "1"
    moved = {**form, "start_fold": "1", "end_fold": "1", "start_time": "01:30", "end_time": "01:45"}
    assert organiser_client.post(f"/meetings/{meeting.slug}/edit", data=moved).status_code == 302
    meeting = only_meeting()
    assert meeting.starts_at == start + dt.timedelta(hours=1)
    assert meeting.ends_at == start + dt.timedelta(hours=1, minutes=15)
    for parser, calendar in read_all(client.get(f"/meetings/{meeting.slug}/calendar.ics").data):
        [event] = calendar["events"]
        assert (event["start"], event["end"]) == (meeting.starts_at, meeting.ends_at), parser


def test_a_time_that_happens_once_needs_no_choice_on_the_day_the_clocks_go_back(organiser_client):
    form = meeting_form(date=_autumn_day().isoformat(), start_time="10:00", end_time="12:00")
    response = organiser_client.post("/meetings/new", data=form)
    assert response.status_code == 302
    meeting = only_meeting()
    assert meeting.starts_at == dt.datetime.combine(_autumn_day(), dt.time(10, 0), tzinfo=dt.UTC)
