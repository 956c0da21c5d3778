"""Answers to meetings, and the personal links that let members answer without signing in."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, bindparam, event, update
from sqlalchemy import inspect as inspect_rsvp
from sqlalchemy.orm import Mapped, Session, UOWTransaction, mapped_column, relationship
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import Model
from .base import LabelledEnum, TimestampMixin, UTCDateTime, member_test, member_tests, stored_enum, utcnow
from .meetings import Meeting
from .members import Member


class Answer(LabelledEnum):
    GOING = "going"
    MAYBE = "maybe"
    DECLINED = "declined", "Can't go"

    is_going, is_maybe, is_declined = member_tests("GOING", "MAYBE", "DECLINED")


class RsvpSource(LabelledEnum):
    WEB = "web", "Website"
    EMAIL_LINK = "email_link"
    CALENDAR_REPLY = "calendar_reply"
    ORGANISER = "organiser"
    SERIES = "series", "Standing answer for the series"

    is_series = member_test("SERIES")


class Rsvp(TimestampMixin, Model):
    """One member's answer to one meeting. A member who deletes their account leaves an anonymous row.

    A member who came without answering is recorded by an organiser (source ORGANISER, a *walk-in*) with the answer
    Can't go, which keeps them out of the places and of calendar updates; `is_walk_in` tells them apart and the
    counts leave them out of the answers."""

    __tablename__ = "rsvps"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), index=True)
    answer: Mapped[Answer] = mapped_column(stored_enum(Answer, "rsvp_answer"))
    waitlist_position: Mapped[int | None]
    access_needs: Mapped[str] = mapped_column(Text, default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[RsvpSource] = mapped_column(stored_enum(RsvpSource, "rsvp_source"), default=RsvpSource.WEB)
    attended: Mapped[bool | None]
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # DTSTAMP of the last calendar reply applied, by the member's calendar clock: a later reply counts only if
    # written no earlier (services.replies._stale).
    reply_dtstamp: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    meeting: Mapped[Meeting] = relationship()
    member: Mapped[Member | None] = relationship()

    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)

    @property
    def is_waiting(self) -> bool:
        return self.answer == Answer.GOING and self.waitlist_position is not None

    @property
    def is_going(self) -> bool:
        return self.answer == Answer.GOING and self.waitlist_position is None

    @property
    def is_walk_in(self) -> bool:
        return self.source == RsvpSource.ORGANISER

    @property
    def answer_label(self) -> str:
        """The answer as pages and exports name it: 'No answer' for a walk-in."""
        return "No answer" if self.is_walk_in else self.answer.label


class Invitation(TimestampMixin, Model):
    """A member invited to a meeting, holding their personal RSVP link token."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sent_sequence: Mapped[int | None]

    meeting: Mapped[Meeting] = relationship()
    member: Mapped[Member] = relationship()

    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)


# Set on a session whose open transaction has changed answers: what it reads of them is not yet anyone else's.
ANSWERS_CHANGED = "kxn_answers_changed"
# What an answer count reads; a change to any other column (a comment, access needs) leaves the counts as they were.
_COUNTED = ("meeting_id", "answer", "waitlist_position", "source", "attended")


def _changed_meetings(session: Session) -> set[int]:
    changed: set[int] = set()
    for rsvp in (*session.new, *session.deleted):
        if isinstance(rsvp, Rsvp) and rsvp.meeting_id is not None:
            changed.add(rsvp.meeting_id)
    for rsvp in session.dirty:
        if isinstance(rsvp, Rsvp) and session.is_modified(rsvp):
            state = inspect_rsvp(rsvp)
            if any(state.attrs[name].history.has_changes() for name in _COUNTED):
                changed.add(rsvp.meeting_id)
                changed.update(v for v in state.attrs["meeting_id"].history.deleted if v is not None)
    return changed


@event.listens_for(Session, "after_flush")
def _move_answers_version(session: Session, _flush: UOWTransaction) -> None:
    """Every flush that adds, removes or changes a counted answer has moved its meeting's answers_version (the
    database's triggers do, migration 0014, leaving updated_at alone, since calendars read it as the time the meeting
    itself last changed): the session notes it."""
    if meetings := _changed_meetings(session):
        _answers_moved(session, meetings)


@functools.cache
def _answer_update(names: tuple[str, ...]):
    """Built once per process for each set of columns an answer changes."""
    columns = Rsvp.__table__.c
    return (
        update(Rsvp)
        .where(columns.id == bindparam("rsvp_id"))
        .values({name: bindparam(f"new_{name}", type_=columns[name].type) for name in names})
    )


def update_answer(session: Session, rsvp: Rsvp, changes: dict[str, Any]) -> None:
    """Write `changes` to a stored answer that has none pending, with one UPDATE of just those columns (the database
    moves the meeting's answers_version with it), noted as a flush would. What an answer changes is known here; the
    flush's bookkeeping to find it out cost more than the statement. The loaded answer is set to match, as if it had
    been flushed."""
    changes = {**changes, "updated_at": utcnow()}
    params: dict[str, Any] = {"rsvp_id": rsvp.id, **{f"new_{name}": value for name, value in changes.items()}}
    session.connection().execute(_answer_update(tuple(changes)), params)
    for name, value in changes.items():
        set_committed_value(rsvp, name, value)
    if any(name in _COUNTED for name in changes):
        _answers_moved(session, {rsvp.meeting_id})


def _answers_moved(session: Session, meetings: set[int]) -> None:
    """Note that the session's transaction changed these meetings' answers: what it reads of them is its own, and
    the answers_version they had when loaded is no longer theirs."""
    session.info[ANSWERS_CHANGED] = True
    for meeting_id in meetings:
        meeting = session.identity_map.get(session.identity_key(Meeting, meeting_id))
        if meeting is not None:
            session.expire(meeting, ["answers_version"])


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _transaction_ended(session: Session) -> None:
    session.info.pop(ANSWERS_CHANGED, None)
