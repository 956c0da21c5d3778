"""Locking: every change to one meeting's answers, notes, invitations or schedule waits its turn here.

PostgreSQL locks the meeting's row (SELECT ... FOR UPDATE); SQLite has one write lock for the whole database, held
from BEGIN in any unit of work that writes (kxn_meetings.database.begin_write).
"""

from __future__ import annotations

from sqlalchemy import select

from ..database import begin_write, is_postgresql
from ..extensions import db
from ..models import Meeting


def lock_meeting(meeting_id: int) -> Meeting:
    """Serialise every change to one meeting's answers: a row lock on PostgreSQL, the write lock on SQLite (held from
    BEGIN in any request or command that writes). Take it before changing anything else in the transaction."""
    begin_write()
    query = select(Meeting).where(Meeting.id == meeting_id).execution_options(populate_existing=True)
    if is_postgresql():
        query = query.with_for_update()
    return db.session.scalars(query).one()
