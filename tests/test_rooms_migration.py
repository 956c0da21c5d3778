"""Migration 0011 (workshop rooms) goes down and up again on each database, leaving the schema at its head."""

from __future__ import annotations

from kxn_meetings.services import rooms

from .migration_helpers import down_to, up_again
from .rooms_helpers import going, meeting_with_rooms, named_scribe

ROOM_TABLES = {"room_plans", "room_members", "room_scribes", "scribe_answers"}


def test_the_rooms_tables_go_down_and_up_again(app, make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting, count=2)
    (member,) = going(meeting, make_member, 1)
    rooms.assign_automatically(meeting)
    scribe = named_scribe(meeting, meeting.workshop_rooms[0], member)
    rooms.save_answers(scribe, {meeting.workshop_rooms[0].questions[0].id: "Words"})
    rooms.set_instructions(meeting, "Breakout")

    assert ROOM_TABLES.isdisjoint(down_to(app, "0010").get_table_names())

    assert set(up_again().get_table_names()) >= ROOM_TABLES
