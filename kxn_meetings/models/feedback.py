"""What members who came say about a meeting afterwards: how useful it was, and what they would like next."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, SmallInteger, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .base import TimestampMixin
from .meetings import Meeting
from .members import Member

SCORES = range(1, 6)


class MeetingFeedback(TimestampMixin, Model):
    """One member's answer about one meeting, changed in place while it may still be edited. A member who deletes
    her account leaves the answer without her name, as her RSVPs are left."""

    __tablename__ = "meeting_feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), index=True)
    score: Mapped[int] = mapped_column(SmallInteger)
    do_differently: Mapped[str] = mapped_column(Text, default="")
    future_topics: Mapped[str] = mapped_column(Text, default="")

    meeting: Mapped[Meeting] = relationship()
    member: Mapped[Member | None] = relationship()

    __table_args__ = (
        UniqueConstraint("meeting_id", "member_id"),
        CheckConstraint("score BETWEEN 1 AND 5", name="score_from_1_to_5"),
    )
