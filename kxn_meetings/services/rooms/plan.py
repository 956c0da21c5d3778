"""Who sits in which workshop room: placing the members going automatically or by hand, their preferences, locking
the plan, and the room a member sees on the meeting page and in her reminder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from ...extensions import db
from ...models import Meeting, Member, RoomMember, RoomPlan, WorkshopRoom, utcnow
from ..errors import ServiceError
from ..guests import going_query
from ..locking import lock_meeting
from .assignment import Person, assign

MAX_INSTRUCTIONS = 5000


class RoomsError(ServiceError):
    """A change to a meeting's rooms that the rules refuse."""


def plan_of(meeting: Meeting) -> RoomPlan | None:
    return db.session.scalar(select(RoomPlan).where(RoomPlan.meeting_id == meeting.id))


def _plan(meeting: Meeting) -> RoomPlan:
    plan = plan_of(meeting)
    if plan is None:
        plan = RoomPlan(meeting_id=meeting.id, breakout_instructions="")
        db.session.add(plan)
        db.session.flush()
    return plan


def is_locked(meeting: Meeting) -> bool:
    plan = plan_of(meeting)
    return plan is not None and plan.is_locked


def why_not_changeable(meeting: Meeting) -> str | None:
    """None when who sits where may change, else the reason."""
    if meeting.is_cancelled:
        return "This meeting has been cancelled."
    if not meeting.workshop_rooms:
        return "This meeting has no workshop rooms: add them on the meeting form first."
    if is_locked(meeting):
        return "The rooms are locked. Unlock them to change who sits where."
    return None


def _refuse_changes(meeting: Meeting) -> None:
    reason = why_not_changeable(meeting)
    if reason:
        raise RoomsError(reason)


@dataclass
class Seat:
    """A member going, and the room she is in (None: not placed yet)."""

    member: Member
    room_id: int | None
    preferred_room_id: int | None


def going_members(meeting: Meeting) -> list[Member]:
    """Active members going (not waiting), by name."""
    return list(db.session.scalars(going_query(meeting, Member).order_by(Member.name, Member.id)))


def _rows(meeting: Meeting) -> dict[int, RoomMember]:
    return {
        row.member_id: row for row in db.session.scalars(select(RoomMember).where(RoomMember.meeting_id == meeting.id))
    }


def room_names(meeting: Meeting) -> dict[int, str]:
    """Member id -> the name of the room she is placed in, locked or not: for the attendees export."""
    names = {room.id: room.name for room in meeting.workshop_rooms}
    return {row.member_id: names[row.room_id] for row in _rows(meeting).values() if row.room_id in names}


def seats(meeting: Meeting) -> list[Seat]:
    """Every member going with her room: what the organiser's rooms page shows and changes."""
    rows = _rows(meeting)
    return [
        Seat(m, getattr(rows.get(m.id), "room_id", None), getattr(rows.get(m.id), "preferred_room_id", None))
        for m in going_members(meeting)
    ]


def _row(meeting: Meeting, member_id: int, rows: dict[int, RoomMember]) -> RoomMember:
    row = rows.get(member_id)
    if row is None:
        row = rows[member_id] = RoomMember(meeting_id=meeting.id, member_id=member_id)
        db.session.add(row)
    return row


def assign_automatically(meeting: Meeting, *, start_again: bool = False) -> int:
    """Place every member going: balanced sizes, sectors, organisations and regions mixed, preferences where
    possible. Members already placed keep their room unless `start_again`. Returns how many were placed."""
    meeting = lock_meeting(meeting.id)
    _refuse_changes(meeting)
    room_ids = [room.id for room in meeting.workshop_rooms]
    rows = _rows(meeting)
    members = going_members(meeting)
    people = [
        Person(
            id=m.id,
            sector=m.sector,
            organisation=m.organisation,
            region=m.region,
            preference=getattr(rows.get(m.id), "preferred_room_id", None),
            current=None if start_again else getattr(rows.get(m.id), "room_id", None),
        )
        for m in members
    ]
    placed = assign(people, room_ids, seed=meeting.id)
    going = set(placed)
    for member_id, room_id in placed.items():
        _row(meeting, member_id, rows).room_id = room_id
    for member_id, row in rows.items():
        if member_id not in going:
            row.room_id = None
    db.session.flush()
    return len(placed)


def assign_by_hand(meeting: Meeting, choices: Mapping[int, int | None]) -> None:
    """Put each member going in the room chosen for her (None: nobody's room). Other members and rooms of other
    meetings are refused."""
    meeting = lock_meeting(meeting.id)
    _refuse_changes(meeting)
    room_ids = {room.id for room in meeting.workshop_rooms}
    going = {m.id for m in going_members(meeting)}
    rows = _rows(meeting)
    for member_id, room_id in choices.items():
        if member_id not in going:
            raise RoomsError("Only members going to this meeting can be placed in its rooms.")
        if room_id is not None and room_id not in room_ids:
            raise RoomsError("Choose one of this meeting's rooms.")
        _row(meeting, member_id, rows).room_id = room_id
    db.session.flush()


def set_preference(meeting: Meeting, member: Member, room_id: int | None) -> None:
    """The room a member going would like to be in, until the rooms are locked."""
    meeting = lock_meeting(meeting.id)
    _refuse_changes(meeting)
    if member.id not in {m.id for m in going_members(meeting)}:
        raise RoomsError("Answer “Going” first: rooms are for members going.", field="room")
    if room_id is not None and room_id not in {room.id for room in meeting.workshop_rooms}:
        raise RoomsError("Choose one of this meeting's rooms.", field="room")
    _row(meeting, member.id, _rows(meeting)).preferred_room_id = room_id
    db.session.flush()


def lock(meeting: Meeting) -> None:
    """Fix who sits where: members see their room from now on, and nobody is moved."""
    meeting = lock_meeting(meeting.id)
    _refuse_changes(meeting)
    placed = {seat.member.id for seat in seats(meeting) if seat.room_id is not None}
    if not placed:
        raise RoomsError("Place members in the rooms before locking them.")
    _plan(meeting).locked_at = utcnow()
    db.session.flush()


def unlock(meeting: Meeting) -> None:
    meeting = lock_meeting(meeting.id)
    plan = plan_of(meeting)
    if plan is None or not plan.is_locked:
        raise RoomsError("The rooms are not locked.")
    plan.locked_at = None
    db.session.flush()


def set_instructions(meeting: Meeting, text: str) -> None:
    """The online meeting's breakout instructions, shown to each member with her room."""
    text = text.strip()
    if len(text) > MAX_INSTRUCTIONS:
        raise RoomsError(f"Keep the instructions under {MAX_INSTRUCTIONS} characters.", field="instructions")
    meeting = lock_meeting(meeting.id)
    _plan(meeting).breakout_instructions = text
    db.session.flush()


@dataclass
class MyRoom:
    """The room a member sits in, once the plan is locked, with the breakout instructions."""

    room: WorkshopRoom
    instructions: str


def room_of(meeting: Meeting, member: Member | None) -> MyRoom | None:
    """The member's room, once the organiser has locked the plan; None before, or for anyone not placed."""
    return rooms_by_member(meeting).get(member.id) if member is not None else None


def rooms_by_member(meeting: Meeting) -> dict[int, MyRoom]:
    """Member id -> her room, for every member placed once the plan is locked (empty before): for the reminders."""
    if not meeting.workshop_rooms:
        return {}
    rows = db.session.execute(
        select(RoomMember.member_id, RoomMember.room_id, RoomPlan.breakout_instructions)
        .join(RoomPlan, RoomPlan.meeting_id == RoomMember.meeting_id)
        .where(RoomMember.meeting_id == meeting.id, RoomMember.room_id.is_not(None), RoomPlan.locked_at.is_not(None))
    ).all()
    by_id = {room.id: room for room in meeting.workshop_rooms}
    return {
        row.member_id: MyRoom(by_id[row.room_id], row.breakout_instructions) for row in rows if row.room_id in by_id
    }


@dataclass
class RoomChoice:
    """A member going may say which room she would like, until the rooms are locked."""

    preferred_room_id: int | None


def room_choice(meeting: Meeting, member: Member | None) -> RoomChoice | None:
    """What the meeting page offers a member going who is not in a locked room yet; None when nothing is offered."""
    if member is None or why_not_changeable(meeting) is not None:
        return None
    preferred = db.session.scalar(
        select(RoomMember.preferred_room_id).where(
            RoomMember.meeting_id == meeting.id, RoomMember.member_id == member.id
        )
    )
    return RoomChoice(preferred)
