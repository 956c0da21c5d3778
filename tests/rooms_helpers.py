"""Meetings with workshop rooms, members going to them, and scribes, as the rooms' tests build them."""

from __future__ import annotations

from urllib.parse import urlsplit

from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, Meeting, Member, RoomScribe, Sector, WorkshopQuestion, WorkshopRoom
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
