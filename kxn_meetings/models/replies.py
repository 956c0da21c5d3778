"""Calendar replies (iTIP REPLY/COUNTER) received by email, kept whether or not they matched."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .base import LabelledEnum, UTCDateTime, member_test, stored_enum, utcnow
from .meetings import Meeting
from .members import Member


class ReplyOutcome(LabelledEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged", "No change"
    UNMATCHED = "unmatched"
    COUNTER = "counter", "New time proposed"

    is_unmatched = member_test("UNMATCHED")
    # A proposal of a new time: shown to organisers, never applied.
    is_counter = member_test("COUNTER")


class CalendarReply(Model):
    __tablename__ = "calendar_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(500), unique=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sender: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(500), default="")
    method: Mapped[str] = mapped_column(String(20), default="")
    partstat: Mapped[str] = mapped_column(String(20), default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    proposed_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    proposed_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[ReplyOutcome] = mapped_column(stored_enum(ReplyOutcome, "reply_outcome"))
    reason: Mapped[str] = mapped_column(Text, default="")
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id", ondelete="SET NULL"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), index=True)

    meeting: Mapped[Meeting | None] = relationship()
    member: Mapped[Member | None] = relationship()
