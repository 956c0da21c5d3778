"""Meetings with workshop rooms, members going to them, and scribes, as the rooms' tests build them."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select

from kxn_meetings.extensions import db
from kxn_meetings.models import (
    Answer,
    Meeting,
    Member,
    OutboxMessage,
    RoomMember,
    RoomPlan,
    RoomScribe,
    ScribeAnswer,
    Sector,
    WorkshopQuestion,
    WorkshopRoom,
)
from kxn_meetings.services import rooms

from .meeting_helpers import record_answer

SECTORS = list(Sector)[:8]


def meeting_with_rooms(make_meeting, count: int = 4, questions: int = 1, **values) -> Meeting:
    meeting = make_meeting(**values)
    for n in range(count):
        room = WorkshopRoom(meeting_id=meeting.id, name=f"Room {chr(65 + n)}", position=n)
        room.questions = [WorkshopQuestion(text=f"Question {q + 1}", position=q) for q in range(questions)]
        db.session.add(room)
    db.session.commit()
    return meeting


def going(meeting: Meeting, make_member, n: int, **values) -> list[Member]:
    members = [make_member(sector=SECTORS[i % 8], **values) for i in range(n)]
    for member in members:
        record_answer(meeting.id, member, Answer.GOING)
    db.session.commit()
    return members


def scribe_path(scribe: RoomScribe) -> str:
    """The path of a scribe's link, as the organiser's rooms page shows it."""
    return urlsplit(rooms.scribe_url(scribe)).path


def named_scribe(meeting: Meeting, room: WorkshopRoom, member: Member) -> RoomScribe:
    scribe = rooms.name_scribe(meeting, room.id, member.id)
    db.session.commit()
    return scribe


def rooms_world(make_meeting, make_member) -> dict[str, str]:
    """For the authorisation matrix: a meeting whose rooms have members, a scribe and an answer; one placed, not
    locked; one locked."""
    meeting = meeting_with_rooms(make_meeting, count=2, slug="rooms-meeting")
    alice, bob = going(meeting, make_member, 2)
    room_a, room_b = meeting.workshop_rooms
    scribe = named_scribe(meeting, room_a, alice)
    rooms.save_answers(scribe, {room_a.questions[0].id: "Written"})
    placed = meeting_with_rooms(make_meeting, count=2, slug="placed-meeting")
    locked = meeting_with_rooms(make_meeting, count=2, slug="locked-meeting")
    for other in (placed, locked):
        going(other, make_member, 1)
        rooms.assign_automatically(other)
    rooms.lock(locked)
    db.session.commit()
    return {
        "rooms": meeting.slug,
        "rooms_placed": placed.slug,
        "rooms_locked": locked.slug,
        "alice": str(alice.id),
        "bob": str(bob.id),
        "room_b": str(room_b.id),
        "scribe": str(scribe.id),
        "answer": str(db.session.scalar(select(ScribeAnswer.id))),
    }


def rooms_state() -> tuple:
    """Everything a rooms action could change."""
    return tuple(
        db.session.execute(select(*columns).order_by(columns[0])).all()
        for columns in (
            (RoomMember.id, RoomMember.room_id, RoomMember.preferred_room_id),
            (RoomPlan.id, RoomPlan.breakout_instructions, RoomPlan.locked_at),
            (RoomScribe.id,),
            (ScribeAnswer.id, ScribeAnswer.taken_in),
            (OutboxMessage.id,),
        )
    )
