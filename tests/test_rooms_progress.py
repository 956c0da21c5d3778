"""The organisers' rooms pages run the same number of statements for 2 rooms as for 10."""

from __future__ import annotations

from kxn_meetings.extensions import db
from kxn_meetings.services import rooms

from .rooms_helpers import going, meeting_with_rooms, named_scribe
from .test_query_counts import statements_for


def busy_meeting(make_meeting, make_member, room_count: int) -> str:
    """`room_count` rooms of three questions, two scribes each who wrote under every question, and 6 members a room."""
    meeting = meeting_with_rooms(make_meeting, count=room_count, questions=3)
    members = going(meeting, make_member, room_count * 6)
    rooms.assign_automatically(meeting)
    for n, room in enumerate(meeting.workshop_rooms):
        for scribe_member in members[2 * n : 2 * n + 2]:
            scribe = named_scribe(meeting, room, scribe_member)
            rooms.save_answers(scribe, {q.id: f"Words from {scribe_member.name} " * 5 for q in room.questions})
    db.session.commit()
    return meeting.slug


def statements_for_rooms(client, make_meeting, make_member, page: str) -> dict[int, int]:
    counts = {}
    for room_count in (2, 10):
        slug = busy_meeting(make_meeting, make_member, room_count)
        statements_for(client, f"/meetings/{slug}/{page}")  # the first request warms per-process caches
        counts[room_count] = statements_for(client, f"/meetings/{slug}/{page}")
    return counts


def test_the_progress_page_of_ten_rooms_runs_as_many_statements_as_of_two(organiser_client, make_meeting, make_member):
    counts = statements_for_rooms(organiser_client, make_meeting, make_member, "rooms/progress")
    assert counts[2] == counts[10], counts
    assert counts[10] <= 12, counts
    slug = busy_meeting(make_meeting, make_member, 10)
    page = organiser_client.get(f"/meetings/{slug}/rooms/progress").get_data(as_text=True)
    assert page.count('<td data-label="Words">') == 30
    # Two scribes under each question, each five times "Words from Member N".
    assert page.count('<td data-label="Words">40</td>') == 30


def test_the_rooms_page_and_its_export_of_ten_rooms_run_as_many_statements_as_of_two(
    organiser_client, make_meeting, make_member
):
    for page in ("rooms", "rooms.csv"):
        counts = statements_for_rooms(organiser_client, make_meeting, make_member, page)
        assert counts[2] == counts[10], (page, counts)
