"""Migration 0011 (workshop rooms) goes down and up again on each database, leaving the schema at its head."""

from __future__ import annotations

from flask_migrate import downgrade
from sqlalchemy import inspect

from kxn_meetings import schema
from kxn_meetings.extensions import db
from kxn_meetings.services import rooms

from .rooms_helpers import going, meeting_with_rooms, named_scribe

ROOM_TABLES = {"room_plans", "room_members", "room_scribes", "scribe_answers"}


def test_the_rooms_tables_go_down_and_up_again(app, make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting, count=2)
    (member,) = going(meeting, make_member, 1)
    rooms.assign_automatically(meeting)
    scribe = named_scribe(meeting, meeting.workshop_rooms[0], member)
    rooms.save_answers(scribe, {meeting.workshop_rooms[0].questions[0].id: "Words"})
    rooms.set_instructions(meeting, "Breakout")
    db.session.commit()
    db.session.remove()

    schema.bind_migrations(app)
    downgrade(directory=schema.MIGRATIONS_DIR, revision="0010")
    db.engine.dispose()
    assert ROOM_TABLES.isdisjoint(inspect(db.engine).get_table_names())

    schema.upgrade()
    db.engine.dispose()
    assert set(inspect(db.engine).get_table_names()) >= ROOM_TABLES
