"""What the rooms wrote, in the notes: the outline, and later changes the organiser takes in."""

from __future__ import annotations

import re

from kxn_meetings.extensions import db
from kxn_meetings.services import notes as notes_service
from kxn_meetings.services import rooms

from .rooms_helpers import going, meeting_with_rooms, named_scribe


def textarea(page: str, name: str) -> str:
    import html

    match = re.search(rf'<textarea[^>]*name="{name}"[^>]*>\n?(.*?)</textarea>', page, re.S)
    assert match, name
    return html.unescape(match.group(1))


def rooms_with_answers(make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting, count=3, questions=1)
    alice, bob = going(meeting, make_member, 2)
    room_a, room_b, _ = meeting.workshop_rooms
    scribe_a, scribe_b = named_scribe(meeting, room_a, alice), named_scribe(meeting, room_b, bob)
    rooms.save_answers(scribe_a, {room_a.questions[0].id: "Funding cycles do not match."})
    rooms.save_answers(scribe_b, {room_b.questions[0].id: "Navigators in custody help."})
    db.session.commit()
    return meeting, scribe_a


def test_the_outline_holds_what_every_room_wrote_under_each_question(organiser_client, make_meeting, make_member):
    meeting, _ = rooms_with_answers(make_meeting, make_member)
    page = organiser_client.get(f"/meetings/{meeting.slug}/notes/edit?start=meeting").get_data(as_text=True)
    body = textarea(page, "body")
    section = body.split("### Question 1", 1)[1].split("##", 1)[0]
    assert "**Room A**: Funding cycles do not match." in section
    assert "**Room B**: Navigators in custody help." in section
    assert f"_Room C: {notes_service.Prompt.ROOM}_" in section
    assert body.count("### Question 1") == 1


def test_a_scribes_later_edit_shows_as_a_change_the_organiser_takes_in(
    organiser_client, organiser, make_meeting, make_member
):
    meeting, scribe_a = rooms_with_answers(make_meeting, make_member)
    title, summary, body = notes_service.outline(meeting)
    notes_service.save(meeting, notes_service.NotesInput(title=title, summary=summary, body=body), organiser)
    db.session.commit()
    page = organiser_client.get(f"/meetings/{meeting.slug}/notes/edit").get_data(as_text=True)
    assert "New from the rooms" not in page

    question = scribe_a.room.questions[0]
    rooms.save_answers(scribe_a, {question.id: "Funding cycles do not match. Health plans for three years."})
    db.session.commit()
    page = organiser_client.get(f"/meetings/{meeting.slug}/notes/edit").get_data(as_text=True)
    assert "New from the rooms (1)" in page
    assert "Health plans for three years." in page
    (change,) = rooms.changes(meeting)
    response = organiser_client.post(f"/meetings/{meeting.slug}/rooms/answers/{change.answer.id}/taken-in", data={})
    assert response.status_code == 302
    assert rooms.changes(meeting) == []
    assert "New from the rooms" not in organiser_client.get(f"/meetings/{meeting.slug}/notes/edit").get_data(
        as_text=True
    )
