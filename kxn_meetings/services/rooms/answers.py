"""What the rooms wrote, read by the organisers: every room's progress during the meeting, the answers under each
question for the notes outline, and the later changes the organiser has not taken in yet."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import contains_eager, selectinload

from ... import timefmt
from ...extensions import db
from ...models import Meeting, Member, RoomMember, RoomScribe, ScribeAnswer, WorkshopQuestion, WorkshopRoom
from .plan import RoomsError


def _answers(meeting: Meeting) -> list[ScribeAnswer]:
    """Every scribe's answer in the meeting's rooms, with its scribe and her name: one query."""
    return list(
        db.session.scalars(
            select(ScribeAnswer)
            .join(ScribeAnswer.scribe)
            .join(RoomScribe.room)
            .join(RoomScribe.member)
            .where(WorkshopRoom.meeting_id == meeting.id)
            .options(contains_eager(ScribeAnswer.scribe).contains_eager(RoomScribe.member))
            .order_by(RoomScribe.id, ScribeAnswer.question_id)
        ).unique()
    )


def _rooms(meeting: Meeting) -> list[WorkshopRoom]:
    rooms = select(WorkshopRoom).where(WorkshopRoom.meeting_id == meeting.id)
    in_order = rooms.order_by(WorkshopRoom.position, WorkshopRoom.id).options(selectinload(WorkshopRoom.questions))
    return list(db.session.scalars(in_order))


@dataclass
class QuestionProgress:
    question: WorkshopQuestion
    words: int = 0
    last_saved: dt.datetime | None = None
    # (scribe's name, what she wrote), for organisers to read during the meeting.
    written: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RoomProgress:
    room: WorkshopRoom
    scribes: list[str] = field(default_factory=list)
    questions: list[QuestionProgress] = field(default_factory=list)

    @property
    def last_saved(self) -> dt.datetime | None:
        return max((q.last_saved for q in self.questions if q.last_saved), default=None)


def progress(meeting: Meeting) -> list[RoomProgress]:
    """Each room: its scribes, and per question the words written and when last saved. A constant number of queries
    however many rooms, scribes and answers."""
    rooms = _rooms(meeting)
    scribes = db.session.execute(
        select(RoomScribe.room_id, Member.name)
        .join(RoomScribe.member)
        .join(RoomScribe.room)
        .where(WorkshopRoom.meeting_id == meeting.id)
        .order_by(RoomScribe.id)
    ).all()
    by_question: dict[int, QuestionProgress] = {}
    result = []
    for room in rooms:
        entry = RoomProgress(room, [name for room_id, name in scribes if room_id == room.id])
        for question in room.questions:
            by_question[question.id] = QuestionProgress(question)
            entry.questions.append(by_question[question.id])
        result.append(entry)
    for answer in _answers(meeting):
        found = by_question.get(answer.question_id)
        if found is None:
            continue
        found.words += answer.words
        if answer.body:
            found.written.append((answer.scribe.member.name, answer.body))
        if found.last_saved is None or answer.saved_at > found.last_saved:
            found.last_saved = answer.saved_at
    return result


@dataclass
class RoomAnswer:
    """What one room wrote under a question, every scribe's words together."""

    room_name: str
    text: str


@dataclass
class QuestionAnswers:
    text: str
    rooms: list[RoomAnswer] = field(default_factory=list)


def answers_by_question(meeting: Meeting) -> list[QuestionAnswers]:
    """The meeting's workshop questions in order (a question asked in several rooms once), each with every room that
    discussed it and what its scribes wrote ("" when nothing yet): what the notes outline starts from."""
    written: dict[int, list[str]] = {}
    for answer in _answers(meeting):
        if answer.body.strip():
            written.setdefault(answer.question_id, []).append(answer.body.strip())
    questions: dict[str, QuestionAnswers] = {}
    for room in meeting.workshop_rooms:
        for question in room.questions:
            key = " ".join(question.text.split()).casefold()
            entry = questions.setdefault(key, QuestionAnswers(question.text))
            entry.rooms.append(RoomAnswer(room.name, "\n\n".join(written.get(question.id, []))))
    return list(questions.values())


@dataclass
class Change:
    """A scribe's answer that changed since the organiser last took it into the notes."""

    answer: ScribeAnswer
    room_name: str
    question: str


def changes(meeting: Meeting) -> list[Change]:
    """Answers whose text differs from what the organiser took in, oldest scribe first."""
    rooms = {room.id: room for room in meeting.workshop_rooms}
    questions = {q.id: q.text for room in rooms.values() for q in room.questions}
    return [
        Change(answer, rooms[answer.scribe.room_id].name, questions.get(answer.question_id, ""))
        for answer in _answers(meeting)
        if answer.body != answer.taken_in and answer.scribe.room_id in rooms
    ]


def take_in(meeting: Meeting, answer_id: int | None = None) -> int:
    """Mark one answer (or, with None, every answer) of the meeting as taken into the notes. Returns how many."""
    taken = 0
    for answer in _answers(meeting):
        if answer_id is None or answer.id == answer_id:
            taken += answer.taken_in != answer.body
            answer.taken_in = answer.body
            if answer_id is not None:
                break
    else:
        if answer_id is not None:
            raise RoomsError("That answer is not one of this meeting's.")
    db.session.flush()
    return taken


EXPORT_HEADER = ("Room", "Name", "Email", "Organisation", "Sector", "Region", "Role", "Question", "Text", "Saved")


def export_rows(meeting: Meeting) -> list[tuple[str, ...]]:
    """The meeting's rooms as one table for organisers: each member placed, then each scribe's answer with its
    question. Members who deleted their account are gone from both."""
    names = {room.id: room.name for room in meeting.workshop_rooms}
    questions = {q.id: q.text for room in meeting.workshop_rooms for q in room.questions}
    placed = db.session.execute(
        select(RoomMember.room_id, Member)
        .join(RoomMember.member)
        .where(RoomMember.meeting_id == meeting.id, RoomMember.room_id.is_not(None))
        .order_by(Member.name, Member.id)
    ).all()
    rows: list[tuple[str, ...]] = [EXPORT_HEADER]
    order = {room_id: n for n, room_id in enumerate(names)}
    for room_id, member in sorted(placed, key=lambda row: order.get(row.room_id, len(order))):
        rows.append((names.get(room_id or 0, ""), *_who(member), "Member", "", "", ""))
    for answer in _answers(meeting):
        member = answer.scribe.member
        saved = timefmt.instant(answer.saved_at, meeting.timezone)
        room = names.get(answer.scribe.room_id, "")
        rows.append((room, *_who(member), "Scribe", questions.get(answer.question_id, ""), answer.body, saved))
    return rows


def _who(member: Member) -> tuple[str, str, str, str, str]:
    return (
        member.name,
        member.email,
        member.organisation,
        member.sector.label if member.sector else "",
        member.region.label if member.region else "",
    )
