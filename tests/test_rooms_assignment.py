"""Sharing the members going among workshop rooms: the pure rule (no database), then the organiser's service."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, Region, Sector
from kxn_meetings.services import rooms
from kxn_meetings.services.rooms import Person, assign

from .meeting_helpers import record_answer
from .rooms_helpers import going, meeting_with_rooms

ROOMS = [11, 12, 13, 14]
SECTORS = list(Sector)[:8]
ORGANISATIONS = [f"Organisation {n}" for n in range(12)]


def network(n: int = 60, *, seed: int = 1, preferring: int = 0) -> list[Person]:
    """n members from 8 sectors (unevenly: the first sectors larger), 12 organisations and the English regions;
    `preferring` of them state a room."""
    pick = random.Random(seed)
    weights = [8, 6, 5, 4, 3, 2, 1, 1]
    people = []
    for i in range(n):
        people.append(
            Person(
                id=100 + i,
                sector=pick.choices(SECTORS, weights)[0],
                organisation=pick.choice(ORGANISATIONS),
                region=pick.choice(list(Region)[:9]),
                preference=pick.choice(ROOMS) if i < preferring else None,
            )
        )
    return people


def sizes(placed: dict[int, int]) -> list[int]:
    counts = Counter(placed.values())
    return [counts[r] for r in ROOMS]


@pytest.mark.parametrize("preferring", [0, 20])
@pytest.mark.parametrize("seed", range(8))
def test_sixty_members_from_eight_sectors_share_four_rooms_evenly_and_mixed(seed, preferring):
    people = network(seed=seed, preferring=preferring)
    placed = assign(people, ROOMS, seed=seed)
    assert set(placed) == {p.id for p in people}
    assert max(sizes(placed)) - min(sizes(placed)) <= 1
    sector_sizes = Counter(p.sector for p in people)
    for room in ROOMS:
        in_room = Counter(p.sector for p in people if placed[p.id] == room)
        for sector, count in in_room.items():
            assert count <= math.ceil(sector_sizes[sector] / 4) + 1, (room, sector, count, sector_sizes[sector])


def test_organisations_and_regions_are_spread_too():
    people = network()
    placed = assign(people, ROOMS, seed=7)
    for attribute in ("organisation", "region"):
        totals = Counter(getattr(p, attribute) for p in people)
        for room in ROOMS:
            in_room = Counter(getattr(p, attribute) for p in people if placed[p.id] == room)
            for value, count in in_room.items():
                assert count <= math.ceil(totals[value] / 4) + 1, (attribute, value)


def test_nine_in_ten_stated_preferences_are_honoured_when_spread_across_rooms():
    people = network(preferring=20)
    placed = assign(people, ROOMS, seed=3)
    stated = [p for p in people if p.preference is not None]
    honoured = sum(1 for p in stated if placed[p.id] == p.preference)
    assert honoured / len(stated) >= 0.9
    assert max(sizes(placed)) - min(sizes(placed)) <= 1


def test_everyone_wanting_one_room_still_gives_balanced_rooms_and_fills_that_room_with_them():
    people = [Person(id=i, sector=SECTORS[i % 3], preference=ROOMS[0]) for i in range(20)]
    placed = assign(people, ROOMS, seed=1)
    assert sizes(placed) == [5, 5, 5, 5]


def test_the_same_input_and_seed_give_the_same_rooms_and_another_seed_may_not():
    people = network()
    first = assign(people, ROOMS, seed=42)
    assert assign(list(reversed(people)), ROOMS, seed=42) == first
    assert any(assign(people, ROOMS, seed=s) != first for s in range(1, 5))


def test_members_who_join_late_leave_everyone_else_in_their_room():
    people = network(40)
    placed = assign(people, ROOMS, seed=5)
    kept = [Person(**{**vars(p), "current": placed[p.id]}) for p in people]
    late = network(44, seed=9)[40:]
    again = assign(kept + late, ROOMS, seed=5)
    assert all(again[p.id] == placed[p.id] for p in people)
    assert max(sizes(again)) - min(sizes(again)) <= 1


def test_no_rooms_places_nobody_and_unknown_sectors_are_fine():
    assert assign(network(5), [], seed=1) == {}
    placed = assign([Person(id=i) for i in range(7)], ROOMS)
    assert sorted(sizes(placed)) == [1, 2, 2, 2]


people_strategy = st.lists(
    st.builds(
        Person,
        id=st.integers(1, 10_000),
        sector=st.sampled_from([*SECTORS, None]),
        organisation=st.sampled_from(["", *ORGANISATIONS[:4]]),
        region=st.sampled_from([None, *list(Region)[:3]]),
        preference=st.sampled_from([None, *ROOMS, 99]),
        current=st.sampled_from([None, *ROOMS, 99]),
    ),
    max_size=70,
    unique_by=lambda p: p.id,
)


@given(people=people_strategy, room_count=st.integers(1, 4), seed=st.integers(0, 2**32))
def test_any_members_any_rooms_balanced_complete_and_deterministic(people, room_count, seed):
    room_ids = ROOMS[:room_count]
    placed = assign(people, room_ids, seed=seed)
    assert set(placed) == {p.id for p in people}
    assert set(placed.values()) <= set(room_ids)
    counts = Counter(placed.values())
    if people:
        assert max(counts[r] for r in room_ids) - min(counts[r] for r in room_ids) <= 1
    assert assign(list(reversed(people)), room_ids, seed=seed) == placed


# The service: members going, placed and kept --------------------------------------------------------------------


def test_the_organiser_places_the_members_going_and_late_answers_do_not_move_them(app, make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting)
    first = going(meeting, make_member, 12)
    not_going = make_member()
    record_answer(meeting.id, not_going, Answer.MAYBE)
    assert rooms.assign_automatically(meeting) == 12
    db.session.commit()
    before = {s.member.id: s.room_id for s in rooms.seats(meeting)}
    assert sorted(Counter(before.values()).values()) == [3, 3, 3, 3]
    assert not_going.id not in before

    going(meeting, make_member, 2)
    rooms.assign_automatically(meeting)
    db.session.commit()
    after = {s.member.id: s.room_id for s in rooms.seats(meeting)}
    assert all(after[m.id] == before[m.id] for m in first)
    assert None not in after.values()


def test_placing_by_hand_refuses_other_members_and_other_meetings_rooms(app, make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting)
    other = meeting_with_rooms(make_meeting)
    (member,) = going(meeting, make_member, 1)
    stranger = make_member()
    room_a, room_b = meeting.workshop_rooms[:2]
    rooms.assign_by_hand(meeting, {member.id: room_b.id})
    db.session.commit()
    assert rooms.seats(meeting)[0].room_id == room_b.id
    for choices in ({stranger.id: room_a.id}, {member.id: other.workshop_rooms[0].id}):
        try:
            rooms.assign_by_hand(meeting, choices)
        except rooms.RoomsError:
            db.session.rollback()
        else:
            raise AssertionError(f"{choices} was accepted")
    assert rooms.seats(meeting)[0].room_id == room_b.id


def test_members_see_their_room_only_once_the_rooms_are_locked(app, make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting)
    (member,) = going(meeting, make_member, 1)
    rooms.set_preference(meeting, member, meeting.workshop_rooms[2].id)
    rooms.set_instructions(meeting, "Zoom: Breakout rooms, then the room's name.")
    rooms.assign_automatically(meeting)
    db.session.commit()
    assert rooms.room_of(meeting, member) is None
    rooms.lock(meeting)
    db.session.commit()
    mine = rooms.room_of(meeting, member)
    assert mine is not None and mine.room.name == "Room C"
    assert mine.instructions.startswith("Zoom")
    for change in (lambda: rooms.assign_automatically(meeting), lambda: rooms.set_preference(meeting, member, None)):
        try:
            change()
        except rooms.RoomsError as error:
            assert "locked" in error.message
            db.session.rollback()
        else:
            raise AssertionError("changed a locked plan")
