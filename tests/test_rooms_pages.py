"""The organisers' rooms page and the members' view of their room."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import select

from kxn_meetings.extensions import db
from kxn_meetings.models import (
    Answer,
    Meeting,
    MessageKind,
    OutboxMessage,
    RoomMember,
    RoomScribe,
    ScribeAnswer,
    WorkshopRoom,
)
from kxn_meetings.services import members as member_service
from kxn_meetings.services import notices, rooms

from .meeting_helpers import meeting_form, record_answer
from .rooms_helpers import going, meeting_with_rooms, named_scribe
from .test_attendees import csv_rows


def test_an_organiser_places_members_automatically_then_by_hand_then_locks(
    organiser_client, sign_in, client, make_meeting, make_member
):
    meeting = meeting_with_rooms(make_meeting, count=3)
    members = going(meeting, make_member, 9)
    page = organiser_client.get(f"/meetings/{meeting.slug}/rooms")
    assert page.status_code == 200
    assert "Who sits where (9 going)" in page.get_data(as_text=True)

    response = organiser_client.post(f"/meetings/{meeting.slug}/rooms/assign", data={})
    assert response.status_code == 302
    placed = {seat.member.id: seat.room_id for seat in rooms.seats(meeting)}
    assert sorted(Counter(placed.values()).values()) == [3, 3, 3]

    room_c = meeting.workshop_rooms[2]
    choices = {f"member_{member_id}": str(room_id) for member_id, room_id in placed.items()}
    choices[f"member_{members[0].id}"] = str(room_c.id)
    choices[f"member_{members[1].id}"] = "0"
    assert organiser_client.post(f"/meetings/{meeting.slug}/rooms/places", data=choices).status_code == 302
    db.session.expire_all()
    seats = {seat.member.id: seat.room_id for seat in rooms.seats(meeting)}
    assert seats[members[0].id] == room_c.id and seats[members[1].id] is None

    bad = dict(choices, **{f"member_{members[2].id}": "999999"})
    assert organiser_client.post(f"/meetings/{meeting.slug}/rooms/places", data=bad).status_code == 422

    response = organiser_client.post(
        f"/meetings/{meeting.slug}/rooms/instructions", data={"instructions": "Zoom: choose **Breakout rooms**."}
    )
    assert response.status_code == 302
    assert organiser_client.post(f"/meetings/{meeting.slug}/rooms/lock", data={}).status_code == 302
    assert organiser_client.post(f"/meetings/{meeting.slug}/rooms/assign", data={}).status_code == 422

    sign_in(client, members[0])
    text = client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert "Your room: <strong>Room C</strong>" in text
    assert "<strong>Breakout rooms</strong>" in text


def test_members_not_going_see_no_room(client, sign_in, make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting, count=2)
    going(meeting, make_member, 2)
    maybe = make_member()
    record_answer(meeting.id, maybe, Answer.MAYBE)
    rooms.assign_automatically(meeting)
    rooms.lock(meeting)
    db.session.commit()
    sign_in(client, maybe)
    assert "Your room" not in client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)


def test_scribes_are_named_on_the_rooms_page_with_their_link(organiser_client, make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting, count=2)
    (scribe,) = going(meeting, make_member, 1, name="Priya Scribe")
    room = meeting.workshop_rooms[1]
    response = organiser_client.post(
        f"/meetings/{meeting.slug}/rooms/scribes", data={"room": str(room.id), "member": str(scribe.id)}
    )
    assert response.status_code == 302
    text = organiser_client.get(f"/meetings/{meeting.slug}/rooms").get_data(as_text=True)
    assert "Priya Scribe" in text and f"/rooms/{room.id}/scribe/" in text
    again = organiser_client.post(
        f"/meetings/{meeting.slug}/rooms/scribes", data={"room": str(room.id), "member": str(scribe.id)}
    )
    assert again.status_code == 422
    assert "already this room&#39;s scribe" in again.get_data(as_text=True)


def test_the_progress_page_shows_words_and_last_saved_in_the_meetings_zone(organiser_client, make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting, count=2, timezone="America/New_York")
    (member,) = going(meeting, make_member, 1)
    room = meeting.workshop_rooms[0]
    scribe = named_scribe(meeting, room, member)
    rooms.save_answers(scribe, {room.questions[0].id: "one two three four"})
    db.session.commit()
    text = organiser_client.get(f"/meetings/{meeting.slug}/rooms/progress").get_data(as_text=True)
    assert '<td data-label="Words">4</td>' in text
    assert "Read what Room A wrote" in text and "<p>one two three four</p>" in text
    assert "EST" in text or "EDT" in text


def test_a_member_going_says_which_room_she_would_like_until_the_rooms_are_locked(
    client, sign_in, make_meeting, make_member
):
    meeting = meeting_with_rooms(make_meeting, count=2)
    (member,) = going(meeting, make_member, 1)
    sign_in(client, member)
    page = client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert "Which room would you like to be in?" in page
    room_b = meeting.workshop_rooms[1]
    assert client.post(f"/meetings/{meeting.slug}/rooms/preference", data={"room": str(room_b.id)}).status_code == 302
    assert rooms.room_choice(meeting, member).preferred_room_id == room_b.id
    rooms.assign_automatically(meeting)
    rooms.lock(meeting)
    db.session.commit()
    page = client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert "Which room would you like" not in page and "Your room: <strong>Room B</strong>" in page
    client.post(f"/meetings/{meeting.slug}/rooms/preference", data={"room": "0"})
    assert rooms.room_choice(meeting, member) is None
    assert "The rooms are locked" in client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)


def test_the_reminder_tells_each_member_her_room_its_questions_and_the_breakout_instructions(
    app, make_meeting, make_member
):
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=5)
    meeting = meeting_with_rooms(make_meeting, count=2, questions=2, start=start)
    first, second = going(meeting, make_member, 2)
    rooms.assign_by_hand(meeting, {first.id: meeting.workshop_rooms[0].id, second.id: meeting.workshop_rooms[1].id})
    rooms.set_instructions(meeting, "In Teams: Rooms, then join yours.")
    rooms.lock(meeting)
    db.session.commit()
    assert notices.queue_reminders() == 2
    db.session.commit()
    sent = {
        row.member_id: row
        for row in db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == MessageKind.REMINDER))
    }
    text = sent[first.id].text_body
    assert "Your workshop room: Room A\n  - Question 1\n  - Question 2\nIn Teams: Rooms, then join yours." in text
    assert "Room B" not in text
    assert "Your workshop room:</strong> Room B" in sent[second.id].html_body


def test_the_rooms_export_lists_members_and_scribes_answers_with_cells_neutralised(
    organiser_client, make_meeting, make_member
):
    meeting = meeting_with_rooms(make_meeting, count=2)
    alice, bob = going(meeting, make_member, 2)
    rooms.assign_by_hand(meeting, {alice.id: meeting.workshop_rooms[0].id, bob.id: meeting.workshop_rooms[1].id})
    scribe = named_scribe(meeting, meeting.workshop_rooms[1], bob)
    rooms.save_answers(scribe, {meeting.workshop_rooms[1].questions[0].id: "=HYPERLINK(1)"})
    db.session.commit()
    response = organiser_client.get(f"/meetings/{meeting.slug}/rooms.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0].startswith("Room,Name,Email")
    assert lines[1].startswith(f"Room A,{alice.name},{alice.email}") and ",Member," in lines[1]
    assert lines[2].startswith(f"Room B,{bob.name}")
    assert lines[3].startswith(f"Room B,{bob.name}") and ",Scribe,Question 1,'=HYPERLINK(1)," in lines[3]


def test_a_deleted_member_leaves_no_room_place_scribe_link_or_scribe_text(app, make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting, count=2)
    leaving, staying = going(meeting, make_member, 2)
    rooms.assign_automatically(meeting)
    room = meeting.workshop_rooms[0]
    for member in (leaving, staying):
        rooms.save_answers(named_scribe(meeting, room, member), {room.questions[0].id: f"Said by {member.name}"})
    db.session.commit()
    member_service.delete_account(leaving)
    db.session.commit()
    assert db.session.scalars(select(RoomMember.member_id)).all() == [staying.id]
    assert db.session.scalars(select(RoomScribe.member_id)).all() == [staying.id]
    assert db.session.scalars(select(ScribeAnswer.body)).all() == [f"Said by {staying.name}"]
    export = "\n".join(",".join(row) for row in rooms.export_rows(meeting))
    assert leaving.name not in export and staying.name in export


def test_editing_the_meeting_keeps_who_sits_where_and_what_the_scribes_wrote(
    organiser_client, make_meeting, make_member
):
    meeting = meeting_with_rooms(make_meeting, count=2, questions=2)
    alice, bob = going(meeting, make_member, 2)
    room_a, room_b = meeting.workshop_rooms
    room_b.questions[0].text, room_b.questions[1].text = "Question one", "Who else should be there?"
    rooms.assign_by_hand(meeting, {alice.id: room_a.id, bob.id: room_b.id})
    scribe = named_scribe(meeting, room_b, bob)
    rooms.save_answers(scribe, {room_b.questions[1].id: "Kept through the edit"})
    db.session.commit()
    ids = (room_b.id, room_b.questions[1].id)
    form = meeting_form(title=meeting.title)
    form.update(
        {
            # Room A is dropped, room B renamed and its first question reworded; a new room comes last.
            "rooms-0-name": "Room B: custody",
            "rooms-0-questions": "Question one, reworded\nWho else should be there?",
            "rooms-1-name": "Room C",
            "rooms-1-questions": "A new question",
        }
    )
    form.pop("rooms-2-name", None)
    response = organiser_client.post(f"/meetings/{meeting.slug}/edit", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    db.session.expire_all()
    kept = db.session.get(WorkshopRoom, ids[0])
    assert kept is not None and kept.name == "Room B: custody" and kept.position == 0
    assert [q.text for q in kept.questions] == ["Question one, reworded", "Who else should be there?"]
    assert kept.questions[1].id == ids[1]
    assert [a.body for a in db.session.scalars(select(ScribeAnswer))] == ["Kept through the edit"]
    assert {s.member.id: s.room_id for s in rooms.seats(meeting)}[bob.id] == ids[0]
    assert [room.name for room in db.session.get(Meeting, meeting.id).workshop_rooms] == ["Room B: custody", "Room C"]


def test_the_attendees_export_names_each_members_room(organiser_client, make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting, count=2)
    alice, bob = going(meeting, make_member, 2)
    rooms.assign_by_hand(meeting, {alice.id: meeting.workshop_rooms[1].id})
    db.session.commit()
    assert {row["Name"]: row["Room"] for row in csv_rows(organiser_client, meeting)} == {
        alice.name: "Room B",
        bob.name: "",
    }


def test_placing_members_says_how_many_in_words_that_fit_the_numbers(organiser_client, make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting, count=1)
    assign = f"/meetings/{meeting.slug}/rooms/assign"
    page = organiser_client.post(assign, data={}, follow_redirects=True).get_data(as_text=True)
    assert "Nobody is going yet, so there is nobody to place." in page
    assert "0 members" not in page

    going(meeting, make_member, 1)
    page = organiser_client.post(assign, data={}, follow_redirects=True).get_data(as_text=True)
    assert "1 member placed in 1 room." in page
