"""Who sits in which workshop room, the rooms' scribes and what each scribe wrote under each question."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .base import TimestampMixin, UTCDateTime
from .meetings import Meeting, WorkshopQuestion, WorkshopRoom
from .members import Member


class RoomPlan(TimestampMixin, Model):
    """A meeting's room plan: the breakout instructions members see with their room, and whether the organiser has
    locked who sits where (members see their room only then)."""

    __tablename__ = "room_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), unique=True)
    breakout_instructions: Mapped[str] = mapped_column(Text, default="")
    locked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    meeting: Mapped[Meeting] = relationship()

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None


class RoomMember(Model):
    """A member's place in one meeting's rooms: the room she prefers, and the room she is in (None until placed).
    Deleting the member deletes the row."""

    __tablename__ = "room_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    room_id: Mapped[int | None] = mapped_column(ForeignKey("workshop_rooms.id", ondelete="SET NULL"), index=True)
    preferred_room_id: Mapped[int | None] = mapped_column(ForeignKey("workshop_rooms.id", ondelete="SET NULL"))

    member: Mapped[Member] = relationship()
    room: Mapped[WorkshopRoom | None] = relationship(foreign_keys=[room_id])

    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)


class RoomScribe(Model):
    """A member named to write down what one room says, through a personal scribe link. Only a hash of the link's
    secret is stored; the link itself is derived from `nonce` and the app's secret key, so the organiser's page can
    show it again and a copy of the database alone opens nothing."""

    __tablename__ = "room_scribes"

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("workshop_rooms.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    nonce: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    room: Mapped[WorkshopRoom] = relationship()
    member: Mapped[Member] = relationship()
    answers: Mapped[list[ScribeAnswer]] = relationship(
        back_populates="scribe", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (UniqueConstraint("room_id", "member_id"),)


class ScribeAnswer(Model):
    """What one scribe wrote under one question (Markdown). Each scribe writes their own, so two scribes of a room
    typing at once never overwrite each other. `taken_in` is the text the organiser last took into the notes."""

    __tablename__ = "scribe_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    scribe_id: Mapped[int] = mapped_column(ForeignKey("room_scribes.id", ondelete="CASCADE"), index=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("workshop_questions.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text, default="")
    taken_in: Mapped[str] = mapped_column(Text, default="")
    saved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    scribe: Mapped[RoomScribe] = relationship(back_populates="answers")
    question: Mapped[WorkshopQuestion] = relationship()

    __table_args__ = (UniqueConstraint("scribe_id", "question_id"),)

    @property
    def words(self) -> int:
        return len(self.body.split())
