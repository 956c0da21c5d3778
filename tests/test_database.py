"""The write-transaction helper services use before reading what they will change."""

import pytest
from sqlalchemy import select

from kxn_meetings.database import begin_write
from kxn_meetings.extensions import db
from kxn_meetings.models import Member

from .meeting_helpers import record_answer


def test_begin_write_keeps_work_already_flushed(app):
    db.session.add(Member(name="Flushed First", email="flushed@example.org"))
    db.session.flush()
    begin_write()
    db.session.commit()
    assert db.session.scalar(select(Member.name).where(Member.email == "flushed@example.org")) == "Flushed First"


def test_begin_write_keeps_pending_work(app):
    db.session.add(Member(name="Pending", email="pending@example.org"))
    begin_write()
    db.session.commit()
    assert db.session.scalar(select(Member.id).where(Member.email == "pending@example.org")) is not None


def test_begin_write_after_reads_only_starts_afresh(app, make_member):
    member = make_member(name="Reader")
    db.session.scalar(select(Member).where(Member.id == member.id))
    begin_write()
    member.name = "Writer"
    db.session.commit()
    assert db.session.scalar(select(Member.name).where(Member.id == member.id)) == "Writer"


def test_invitations_then_answers_in_one_transaction_all_stay(app, make_meeting, make_member):
    from kxn_meetings.models import Answer, OutboxMessage, Rsvp
    from kxn_meetings.services import invitations

    meeting = make_meeting()
    first, second = make_member(), make_member()
    invitations.invite(meeting, [first, second])
    record_answer(meeting.id, first, Answer.GOING)
    record_answer(meeting.id, second, Answer.DECLINED)
    db.session.commit()
    kinds = sorted(db.session.scalars(select(OutboxMessage.kind)))
    assert kinds == ["confirmation", "decline", "invitation", "invitation"]
    assert len(db.session.scalars(select(Rsvp)).all()) == 2


@pytest.mark.postgresql_only
def test_a_postgresql_cursor_describes_its_result_as_psycopg_does_with_less_work(app):
    """The cursors of the app's connections (kxn_meetings.postgresql.Cursor) give each column's name and type code as
    psycopg's own description does, and no description for a statement that returns no rows."""
    import psycopg

    from kxn_meetings.postgresql import Cursor

    query = "SELECT 1 AS one, 'x'::text AS \"Naïve name\", now() AS at, NULL::numeric(5, 2), 2.5::float8 AS ratio"
    with db.engine.connect() as connection:
        driver = connection.connection.dbapi_connection
        ours = driver.cursor()
        assert isinstance(ours, Cursor)
        ours.execute(query)
        theirs = psycopg.Cursor(driver)
        theirs.execute(query)
        assert [(c.name, c.type_code) for c in ours.description] == [(c.name, c.type_code) for c in theirs.description]
        assert all(len(column) == 7 for column in ours.description)
        assert ours.fetchall() == theirs.fetchall()
        ours.execute("SET LOCAL statement_timeout = 0")
        assert ours.description is None
        ours.execute("SELECT WHERE false")
        assert ours.description == []
        connection.rollback()
    assert db.session.execute(select(Member.id, Member.name).limit(1)).all() == []
