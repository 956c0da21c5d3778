"""The rooms' scribes: naming them, their personal scribe links, and what they write under each question.

A scribe link works for one scribe of one room of one meeting, without signing in, until the meeting's notes are
published. Its secret is an HMAC of a random nonce under the app's secret key: the database keeps the nonce and a
SHA-256 of the secret, so the organiser's page can show the link again while a copy of the database opens nothing.

Two scribes of one room never lose each other's text: each scribe's words under a question are their own row, shown
together on the scribe page and in the notes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import contains_eager, joinedload

from ... import timefmt
from ...extensions import db
from ...models import Meeting, MeetingNotes, MessageKind, NotesStatus, RoomScribe, ScribeAnswer, WorkshopRoom, utcnow
from ...signing import signature
from ...text import TEXT_AREA_BREAKS, first_control
from ...urls import external_url
from ..locking import lock_meeting
from ..outbox import queue_email
from .plan import RoomsError, going_members

TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
MAX_ANSWER = 20_000


def _secret(nonce: str) -> str:
    return signature(f"scribe-link:{nonce}")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def scribe_token(scribe: RoomScribe) -> str:
    return _secret(scribe.nonce)


def scribe_url(scribe: RoomScribe) -> str:
    return external_url(
        "rooms.scribe", ref=scribe.room.meeting.slug, room_id=scribe.room_id, token=scribe_token(scribe)
    )


def notes_published(meeting_id: int) -> bool:
    status = db.session.scalar(select(MeetingNotes.status).where(MeetingNotes.meeting_id == meeting_id))
    return status == NotesStatus.PUBLISHED


def why_not_writable(meeting: Meeting) -> str | None:
    """None while scribes may write, else why their links no longer work."""
    if meeting.is_cancelled:
        return "This meeting has been cancelled."
    if notes_published(meeting.id):
        return "The notes of this meeting are published: scribe links no longer work."
    return None


def _room(meeting: Meeting, room_id: int) -> WorkshopRoom:
    room = next((r for r in meeting.workshop_rooms if r.id == room_id), None)
    if room is None:
        raise RoomsError("Choose one of this meeting's rooms.")
    return room


def name_scribe(meeting: Meeting, room_id: int, member_id: int) -> RoomScribe:
    """Make a member going the scribe of one room (a room may have several)."""
    meeting = lock_meeting(meeting.id)
    reason = why_not_writable(meeting)
    if reason:
        raise RoomsError(reason)
    room = _room(meeting, room_id)
    if member_id not in {m.id for m in going_members(meeting)}:
        raise RoomsError("A scribe must be a member going to this meeting.", field="member")
    exists = db.session.scalar(
        select(RoomScribe).where(RoomScribe.room_id == room.id, RoomScribe.member_id == member_id)
    )
    if exists is not None:
        raise RoomsError("That member is already this room's scribe.", field="member")
    nonce = secrets.token_urlsafe(24)
    scribe = RoomScribe(
        room_id=room.id, member_id=member_id, nonce=nonce, token_hash=_hash(_secret(nonce)), created_at=utcnow()
    )
    db.session.add(scribe)
    db.session.flush()
    send_link(scribe)
    return scribe


def send_link(scribe: RoomScribe) -> None:
    """Email the scribe her link, in the transaction that named her (or when the organiser sends it again)."""
    room, meeting = scribe.room, scribe.room.meeting
    queue_email(
        kind=MessageKind.SCRIBE_LINK,
        to=scribe.member,
        subject=f"Your scribe link: {room.name}, {meeting.title}",
        context={
            "meeting": meeting,
            "room": room,
            "when": timefmt.when(meeting.starts_at, meeting.ends_at, meeting.timezone),
            "scribe_url": scribe_url(scribe),
        },
        meeting_id=meeting.id,
    )


def send_link_again(meeting: Meeting, scribe_id: int) -> None:
    meeting = lock_meeting(meeting.id)
    reason = why_not_writable(meeting)
    if reason:
        raise RoomsError(reason)
    send_link(_scribe_of(meeting, scribe_id))


def _scribe_of(meeting: Meeting, scribe_id: int) -> RoomScribe:
    scribe = db.session.get(RoomScribe, scribe_id)
    if scribe is None or scribe.room.meeting_id != meeting.id:
        raise RoomsError("That scribe is not one of this meeting's.")
    return scribe


def remove_scribe(meeting: Meeting, scribe_id: int) -> None:
    """Stop a scribe's link; what they wrote goes with it."""
    meeting = lock_meeting(meeting.id)
    db.session.delete(_scribe_of(meeting, scribe_id))
    db.session.flush()


def scribes_of(meeting: Meeting) -> list[RoomScribe]:
    return list(
        db.session.scalars(
            select(RoomScribe)
            .join(RoomScribe.room)
            .where(WorkshopRoom.meeting_id == meeting.id)
            .options(joinedload(RoomScribe.member), contains_eager(RoomScribe.room))
            .order_by(WorkshopRoom.position, RoomScribe.id)
        )
    )


def scribe_by_token(meeting: Meeting, room_id: int, token: str) -> RoomScribe | None:
    """The scribe whose link this is, for this room of this meeting only; None for any other link."""
    if not TOKEN_SHAPE.fullmatch(token or ""):
        return None
    scribe = db.session.scalar(
        select(RoomScribe)
        .join(RoomScribe.room)
        .where(
            RoomScribe.token_hash == _hash(token), RoomScribe.room_id == room_id, WorkshopRoom.meeting_id == meeting.id
        )
        .options(joinedload(RoomScribe.member))
    )
    if scribe is None or not scribe.member.active or not hmac.compare_digest(scribe_token(scribe), token):
        return None
    return scribe


def answers_in_room(room: WorkshopRoom) -> dict[int, list[ScribeAnswer]]:
    """Question id -> what each scribe of the room wrote under it, oldest scribe first."""
    rows = db.session.scalars(
        select(ScribeAnswer)
        .join(ScribeAnswer.scribe)
        .where(RoomScribe.room_id == room.id, ScribeAnswer.body != "")
        .options(joinedload(ScribeAnswer.scribe).joinedload(RoomScribe.member))
        .order_by(RoomScribe.id)
    )
    found: dict[int, list[ScribeAnswer]] = {}
    for row in rows:
        found.setdefault(row.question_id, []).append(row)
    return found


def save_answers(scribe: RoomScribe, texts: Mapping[int, str]) -> int:
    """Keep what the scribe wrote under each question of her room (question id -> Markdown); questions of other
    rooms are refused. Returns how many answers changed."""
    meeting = lock_meeting(scribe.room.meeting_id)
    reason = why_not_writable(meeting)
    if reason:
        raise RoomsError(reason)
    questions = {q.id for q in scribe.room.questions}
    mine = {
        a.question_id: a for a in db.session.scalars(select(ScribeAnswer).where(ScribeAnswer.scribe_id == scribe.id))
    }
    changed = 0
    now = utcnow()
    for question_id, text in texts.items():
        if question_id not in questions:
            raise RoomsError("That question is not one of this room's.")
        text = text.replace("\r\n", "\n").rstrip()
        if len(text) > MAX_ANSWER:
            raise RoomsError(f"Keep each answer under {MAX_ANSWER} characters.", field=f"q{question_id}")
        if first_control(text, allow=TEXT_AREA_BREAKS):
            raise RoomsError("Remove the control characters from the text.", field=f"q{question_id}")
        answer = mine.get(question_id)
        if answer is None:
            if not text:
                continue
            answer = ScribeAnswer(scribe_id=scribe.id, question_id=question_id, body="", taken_in="", saved_at=now)
            db.session.add(answer)
        if answer.body != text:
            answer.body = text
            answer.saved_at = now
            changed += 1
    db.session.flush()
    return changed
