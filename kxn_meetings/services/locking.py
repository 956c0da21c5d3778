"""Locking: every change to one meeting's answers, notes, invitations or schedule waits its turn here.

PostgreSQL locks the meeting's row (SELECT ... FOR UPDATE); SQLite has one write lock for the whole database, held
from BEGIN in any unit of work that writes (kxn_meetings.database.begin_write).
"""

from __future__ import annotations

import functools

from sqlalchemy import bindparam, select

from ..database import begin_write, is_postgresql
from ..extensions import db
from ..models import Meeting


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
def _row_lock_statement():
    """Built once per process: every answer on PostgreSQL runs it."""
    return select(Meeting.id).where(Meeting.id == bindparam("id")).with_for_update()


def lock_meeting_row(meeting_id: int) -> None:
    """lock_meeting() without reading the meeting, for a caller that reads it afresh, with what else it needs, in its
    next statement (services.rsvps.answer): on PostgreSQL the lock's own statement then carries one column, not the
    meeting's every column, while others wait for the lock."""
    begin_write()
    if is_postgresql():
        db.session.connection().execute(_row_lock_statement(), {"id": meeting_id}).one()
