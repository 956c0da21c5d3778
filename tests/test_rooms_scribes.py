"""Scribe links and the scribe page: one room of one meeting, without signing in, until the notes are published."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from kxn_meetings.extensions import db
from kxn_meetings.models import Meeting, MessageKind, NotesStatus, OutboxMessage, RoomScribe, ScribeAnswer, utcnow
from kxn_meetings.services import notes as notes_service
from kxn_meetings.services import rooms

from .rooms_helpers import going, meeting_with_rooms, named_scribe, scribe_path


def setup_rooms(make_meeting, make_member, **values):
    meeting = meeting_with_rooms(make_meeting, count=2, questions=2, **values)
    alice, bob, carol = going(meeting, make_member, 3)
    room_a, room_b = meeting.workshop_rooms
    return meeting, room_a, room_b, named_scribe(meeting, room_a, alice), named_scribe(meeting, room_b, bob), carol


def answers() -> list[tuple[int, int, str]]:
    db.session.expire_all()
    return db.session.execute(
        select(ScribeAnswer.scribe_id, ScribeAnswer.question_id, ScribeAnswer.body).order_by(ScribeAnswer.id)
    ).all()


def test_a_scribe_link_opens_the_rooms_questions_without_signing_in_and_saves(client, make_meeting, make_member):
    _meeting, room_a, _, scribe, _, _ = setup_rooms(make_meeting, make_member)
    path = scribe_path(scribe)
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "private, no-store"
    text = page.get_data(as_text=True)
    assert "Room A" in text and "Question 1" in text and "Question 2" in text
    first, _second = room_a.questions
    response = client.post(path, data={f"q{first.id}": "We talked about **bail**."})
    assert response.status_code == 302
    assert answers() == [(scribe.id, first.id, "We talked about **bail**.")]
    again = client.get(path).get_data(as_text=True)
    assert "We talked about **bail**." in again
    assert "Sign in" in again  # the link signed nobody in


def test_the_page_saves_as_the_scribe_types_and_answers_in_json(client, make_meeting, make_member):
    _, room_a, _, scribe, _, _ = setup_rooms(make_meeting, make_member)
    question = room_a.questions[0]
    response = client.post(
        scribe_path(scribe), data={f"q{question.id}": "Draft"}, headers={"X-Requested-With": "fetch"}
    )
    assert response.status_code == 200 and response.json["saved"] is True
    assert response.json["saved_at"].endswith("(London time)")
    assert answers() == [(scribe.id, question.id, "Draft")]


def test_get_never_writes(client, make_meeting, make_member):
    _, room_a, _, scribe, _, _ = setup_rooms(make_meeting, make_member)
    question = room_a.questions[0]
    client.get(f"{scribe_path(scribe)}?q{question.id}=Sneaky")
    client.head(scribe_path(scribe))
    assert answers() == []


def test_a_link_for_room_a_cannot_read_or_write_room_b_or_another_meeting(client, make_meeting, make_member):
    meeting, room_a, room_b, scribe, scribe_b, _ = setup_rooms(make_meeting, make_member)
    rooms.save_answers(scribe_b, {room_b.questions[0].id: "Secret of room B"})
    db.session.commit()
    token = scribe_path(scribe).rsplit("/", 1)[1]
    # Room A's token on room B's address: no page, nothing of room B shown.
    for path in (
        f"/meetings/{meeting.slug}/rooms/{room_b.id}/scribe/{token}",
        f"/meetings/{meeting.slug}/rooms/{room_b.id}/scribe/{token[:-1]}x",
    ):
        assert client.get(path).status_code == 404
        assert client.post(path, data={f"q{room_b.questions[0].id}": "Overwritten"}).status_code == 404
    # Room B's question through room A's own link: refused.
    response = client.post(scribe_path(scribe), data={f"q{room_b.questions[0].id}": "Overwritten"})
    assert response.status_code == 302  # the field is not one of this page's: ignored
    # Another meeting with its own rooms, ids included.
    other, other_a, _, _, _, _ = setup_rooms(make_meeting, make_member)
    assert client.get(f"/meetings/{other.slug}/rooms/{room_a.id}/scribe/{token}").status_code == 404
    assert client.get(f"/meetings/{other.slug}/rooms/{other_a.id}/scribe/{token}").status_code == 404
    assert "Secret of room B" not in client.get(scribe_path(scribe)).get_data(as_text=True)
    assert [body for _, _, body in answers()] == ["Secret of room B"]


def test_a_room_a_scribe_cannot_write_room_bs_questions_through_the_service(app, make_meeting, make_member):
    _, _, room_b, scribe, _, _ = setup_rooms(make_meeting, make_member)
    try:
        rooms.save_answers(scribe, {room_b.questions[0].id: "Elsewhere"})
    except rooms.RoomsError:
        db.session.rollback()
    else:
        raise AssertionError("wrote another room's question")
    assert answers() == []


def test_two_scribes_of_one_room_keep_their_own_text_and_see_each_others(client, make_meeting, make_member):
    meeting, room_a, _, scribe, _, carol = setup_rooms(make_meeting, make_member)
    second = named_scribe(meeting, room_a, carol)
    question = room_a.questions[0]
    client.post(scribe_path(scribe), data={f"q{question.id}": "Notes by Alice"})
    client.post(scribe_path(second), data={f"q{question.id}": "Notes by Carol"})
    assert sorted(body for _, _, body in answers()) == ["Notes by Alice", "Notes by Carol"]
    page = client.get(scribe_path(scribe)).get_data(as_text=True)
    assert "Notes by Alice" in page and "Notes by Carol" in page


def test_the_link_stops_working_once_the_notes_are_published(client, make_meeting, make_member, organiser):
    meeting, room_a, _, scribe, _, _ = setup_rooms(make_meeting, make_member)
    path = scribe_path(scribe)
    question = room_a.questions[0]
    client.post(path, data={f"q{question.id}": "Before"})
    notes_service.save(meeting, notes_service.NotesInput(title="Notes", body="Done."), organiser)
    notes = notes_service.notes_for(meeting)
    notes.status, notes.published_at = NotesStatus.PUBLISHED, utcnow()
    db.session.commit()
    page = client.get(path)
    assert page.status_code == 410
    assert "no longer works" in page.get_data(as_text=True)
    assert client.post(path, data={f"q{question.id}": "After"}).status_code == 410
    assert [body for _, _, body in answers()] == ["Before"]


def test_removing_a_scribe_or_a_bad_token_is_404_and_the_database_holds_no_link(client, make_meeting, make_member):
    meeting, _, _, scribe, _, _ = setup_rooms(make_meeting, make_member)
    path = scribe_path(scribe)
    token = path.rsplit("/", 1)[1]
    assert token not in {scribe.token_hash, scribe.nonce}
    for bad in ("x", "a" * 43, token.upper() if token.upper() != token else token.lower()):
        assert client.get(path.replace(token, bad)).status_code == 404
    rooms.remove_scribe(meeting, scribe.id)
    db.session.commit()
    assert client.get(path).status_code == 404
    assert db.session.scalar(select(func.count(RoomScribe.id))) == 1


def test_only_members_going_can_be_scribes(app, make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting)
    stranger = make_member()
    try:
        rooms.name_scribe(meeting, meeting.workshop_rooms[0].id, stranger.id)
    except rooms.RoomsError as error:
        assert error.field == "member"
        db.session.rollback()
    else:
        raise AssertionError("named a member not going")


ANY_TEXT = st.text(max_size=300) | st.sampled_from(["", " ", "\x00", "\u202e", "=1+1", "a" * 25_000, "9" * 30])


@given(data=st.data())
def test_any_text_in_any_rooms_form_never_gives_a_server_error(
    organiser_client, client, make_meeting, make_member, data
):
    meeting = db.session.scalar(select(Meeting).where(Meeting.slug == "any-rooms"))
    if meeting is None:
        meeting = meeting_with_rooms(make_meeting, count=2, questions=2, slug="any-rooms")
        going(meeting, make_member, 2)
    seats = rooms.seats(meeting)
    scribe = db.session.scalar(select(RoomScribe)) or named_scribe(meeting, meeting.workshop_rooms[0], seats[0].member)
    room_a = meeting.workshop_rooms[0]
    forms = {
        "assign": {"start_again": data.draw(ANY_TEXT)},
        "places": {f"member_{seat.member.id}": data.draw(ANY_TEXT) for seat in seats},
        "instructions": {"instructions": data.draw(ANY_TEXT)},
        "scribes": {"room": data.draw(ANY_TEXT), "member": data.draw(ANY_TEXT)},
    }
    for action, values in forms.items():
        response = organiser_client.post(f"/meetings/{meeting.slug}/rooms/{action}", data=values)
        assert response.status_code in (302, 422), (action, values)
    texts = {f"q{q.id}": data.draw(ANY_TEXT) for q in room_a.questions}
    for headers in ({}, {"X-Requested-With": "fetch"}):
        response = client.post(scribe_path(scribe), data=texts, headers=headers)
        assert response.status_code in (200, 302, 422), texts
    response = client.post(f"/meetings/{meeting.slug}/rooms/preference", data={"room": data.draw(ANY_TEXT)})
    assert response.status_code < 500


@pytest.mark.app_config(LOGIN_RATE_LIMIT_PER_CLIENT=3)
def test_guessing_scribe_links_is_rate_limited_and_the_real_link_still_opens_for_others(
    client, app, make_meeting, make_member
):
    scribe = setup_rooms(make_meeting, make_member)[3]
    path = scribe_path(scribe)
    guess = path.rsplit("/", 1)[0] + "/" + "A" * 43
    assert [client.get(guess).status_code for _ in range(4)] == [404, 404, 404, 429]
    assert client.get(guess).headers.get("Retry-After")
    other = app.test_client()
    assert other.get(path, environ_base={"REMOTE_ADDR": "192.0.2.9"}).status_code == 200


def test_the_scribe_page_says_when_each_answer_was_last_saved_in_the_meetings_zone(client, make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting, count=1, questions=1, timezone="America/New_York")
    (member,) = going(meeting, make_member, 1)
    scribe = named_scribe(meeting, meeting.workshop_rooms[0], member)
    question = meeting.workshop_rooms[0].questions[0]
    response = client.post(scribe_path(scribe), data={f"q{question.id}": "Hi"}, headers={"X-Requested-With": "fetch"})
    assert response.json["saved_at"].endswith("(New York time)")
    assert "(New York time)." in client.get(scribe_path(scribe)).get_data(as_text=True)


def test_a_scribe_is_emailed_her_link_and_the_outbox_page_never_shows_it(
    organiser_client, client, make_meeting, make_member
):
    meeting = meeting_with_rooms(make_meeting, count=1, questions=1)
    (member,) = going(meeting, make_member, 1)
    room = meeting.workshop_rooms[0]
    response = organiser_client.post(
        f"/meetings/{meeting.slug}/rooms/scribes", data={"room": str(room.id), "member": str(member.id)}
    )
    assert response.status_code == 302
    (sent,) = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == MessageKind.SCRIBE_LINK))
    scribe = db.session.scalar(select(RoomScribe))
    link = rooms.scribe_url(scribe)
    assert sent.member_id == member.id and link in sent.text_body and link in sent.html_body
    assert "Question 1" in sent.text_body
    assert client.get(scribe_path(scribe)).status_code == 200
    assert link not in organiser_client.get(f"/outbox/{sent.id}").get_data(as_text=True)

    again = organiser_client.post(f"/meetings/{meeting.slug}/rooms/scribes/{scribe.id}/send", data={})
    assert again.status_code == 302
    links = select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == MessageKind.SCRIBE_LINK)
    assert db.session.scalar(links) == 2
