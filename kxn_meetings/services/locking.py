"""Locking: every change to one meeting's answers, notes, invitations or schedule waits its turn here.

PostgreSQL locks the meeting's row (SELECT ... FOR UPDATE); SQLite has one write lock for the whole database, held
from BEGIN in any unit of work that writes (kxn_meetings.database.begin_write).
"""

from __future__ import annotations

import functools

from sqlalchemy import bindparam, select

from ..database import begin_write, is_postgresql
from ..extensions import db
from ..models import Meeting, Rsvp


@functools.cache
def _lock_statement(for_update: bool):
    """Built once per process: every answer runs it."""
    query = select(Meeting).where(Meeting.id == bindparam("id")).execution_options(populate_existing=True)
    return query.with_for_update() if for_update else query


def lock_meeting(meeting_id: int) -> Meeting:
    """Serialise every change to one meeting's answers: a row lock on PostgreSQL, the write lock on SQLite (held from
    BEGIN in any request or command that writes). Take it before changing anything else in the transaction."""
    begin_write()
    return db.session.scalars(_lock_statement(is_postgresql()), {"id": meeting_id}).one()


@functools.cache
def _answer_statement(with_meeting: bool):
    """Built once per process: one member's answer to a meeting, with the meeting itself when `with_meeting`."""
    answer = (Rsvp.meeting_id == bindparam("id")) & (Rsvp.member_id == bindparam("member_id"))
    if not with_meeting:
        return select(Rsvp).where(answer).execution_options(populate_existing=True)
    return (
        select(Meeting, Rsvp)
        .outerjoin(Rsvp, (Rsvp.meeting_id == Meeting.id) & answer)
        .where(Meeting.id == bindparam("id"))
        .execution_options(populate_existing=True)
    )


def lock_meeting_with_answer(meeting_id: int, member_id: int) -> tuple[Meeting, Rsvp | None]:
    """lock_meeting(), and the member's answer to the meeting read afresh under the lock. On SQLite the lock is
    held from BEGIN, so one statement reads both. On PostgreSQL the answer is read by a statement of its own after
    the row lock is granted: a statement that waited for the lock still reads other tables as they were when it
    began, and would miss an answer the transaction it waited for had just added."""
    params = {"id": meeting_id, "member_id": member_id}
    if is_postgresql():
        meeting = lock_meeting(meeting_id)
        return meeting, db.session.scalar(_answer_statement(False), params)
    begin_write()
    row = db.session.execute(_answer_statement(True), params).one()
    return row.Meeting, row.Rsvp
