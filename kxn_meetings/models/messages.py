"""Messages organisers send to a group of a meeting's members (pre-reading, a changed speaker), kept as the meeting's
log of what was said to whom."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .base import LabelledEnum, UTCDateTime, stored_enum, utcnow
from .meetings import Meeting
from .members import Member


class Audience(LabelledEnum):
    """Whom a message to a meeting's members goes to."""

    GOING = "going"
    MAYBE = "maybe"
    WAITING = "waiting", "On the waiting list"
    NOT_REPLIED = "not_replied", "Invited, not replied yet"
    ATTENDED = "attended"


class MeetingMessage(Model):
    __tablename__ = "meeting_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    audience: Mapped[Audience] = mapped_column(stored_enum(Audience, "message_audience"))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    recipient_count: Mapped[int] = mapped_column(default=0)
    # The preview's one-time key: pressing Send twice, or a retried request, finds the message already sent.
    send_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    meeting: Mapped[Meeting] = relationship()
    sent_by: Mapped[Member | None] = relationship()
