"""Sharing the members going to a meeting among its workshop rooms: a pure function, the same rooms for the same
input and seed, with no database.

The rules, strongest first:
1. Sizes differ by at most one.
2. A member already placed keeps her room while it is within its size (members who join late do not move others).
3. No room holds more than its share of one sector, ceil(n/rooms) + 1 of the n members of that sector, where
   another room has space for her.
4. A member's stated preference, where the room has space and the sector rule allows.
5. Sectors, then organisations, then regions spread as evenly as the rest allows.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Person:
    """What the assignment knows of a member going: who, where she works, the room she prefers, the room she is in."""

    id: int
    sector: Hashable = None
    organisation: str = ""
    region: Hashable = None
    preference: int | None = None
    current: int | None = None


def assign(people: Sequence[Person], rooms: Sequence[int], seed: int = 0) -> dict[int, int]:
    """Member id -> room id for every person, by the rules above. Room ids keep their order; `seed` breaks ties."""
    if not rooms:
        return {}
    rooms = list(dict.fromkeys(rooms))
    ordered = sorted(people, key=lambda p: p.id)
    random.Random(seed).shuffle(ordered)
    sizes = _target_sizes(ordered, rooms)

    placed: dict[int, int] = {}
    # Those already placed stay while their room has space, in the shuffled order.
    for person in ordered:
        if person.current in sizes and sum(1 for r in placed.values() if r == person.current) < sizes[person.current]:
            placed[person.id] = person.current
    rest = [p for p in ordered if p.id not in placed]

    sector_sizes = Counter(p.sector for p in people)
    organisation_sizes = Counter(_organisation(p) for p in people)
    # Preferences first, while rooms have space; then the largest sectors and organisations, which are the hardest
    # to spread.
    rest.sort(
        key=lambda p: (
            p.preference not in sizes,
            -sector_sizes[p.sector] if p.sector is not None else 0,
            -organisation_sizes[_organisation(p)],
        )
    )
    counts = _Counts(rooms)
    by_id = {p.id: p for p in people}
    for person_id, room in placed.items():
        counts.add(by_id[person_id], room)
    for person in rest:
        cap = math.ceil(sector_sizes[person.sector] / len(rooms)) + 1 if person.sector is not None else math.inf
        open_rooms = [r for r in rooms if counts.size[r] < sizes[r]]
        within = [r for r in open_rooms if counts.sector[r][person.sector] < cap] or open_rooms
        if person.preference in within:
            room = person.preference
        else:
            room = min(within, key=lambda r: counts.cost(person, r, sizes[r]))
        placed[person.id] = room
        counts.add(person, room)
    _spread_sectors(rest, placed, counts, sector_sizes, len(rooms))
    return placed


def _spread_sectors(
    movable: Sequence[Person], placed: dict[int, int], counts: _Counts, sector_sizes: Counter, room_count: int
) -> None:
    """Swap pairs of members the greedy pass left over a room's share of their sector, when the swap puts neither
    over, moves nobody out of the room she asked for and keeps the sizes."""

    def cap(person: Person) -> float:
        return math.ceil(sector_sizes[person.sector] / room_count) + 1 if person.sector is not None else math.inf

    def free(person: Person) -> bool:
        return placed[person.id] != person.preference

    candidates = [p for p in movable if free(p)]
    for person in candidates:
        here = placed[person.id]
        if counts.sector[here][person.sector] <= cap(person):
            continue
        for other in candidates:
            there = placed[other.id]
            if (
                there != here
                and other.sector != person.sector
                and counts.sector[there][person.sector] + 1 <= cap(person)
                and counts.sector[here][other.sector] + 1 <= cap(other)
            ):
                counts.remove(person, here)
                counts.remove(other, there)
                placed[person.id], placed[other.id] = there, here
                counts.add(person, there)
                counts.add(other, here)
                break


def _organisation(person: Person) -> str:
    return " ".join(person.organisation.casefold().split())


def _target_sizes(people: Sequence[Person], rooms: list[int]) -> dict[int, int]:
    """Each room's size: n // rooms, and one more for n % rooms of them: those already holding most members, then
    those most asked for."""
    base, extra = divmod(len(people), len(rooms))
    holding = Counter(p.current for p in people if p.current in rooms)
    wanted = Counter(p.preference for p in people if p.preference in rooms)
    larger = sorted(rooms, key=lambda r: (-holding[r], -wanted[r], rooms.index(r)))[:extra]
    return {r: base + (r in larger) for r in rooms}


class _Counts:
    """Who is in each room so far, by sector, organisation and region."""

    def __init__(self, rooms: list[int]) -> None:
        self.size: dict[int, int] = dict.fromkeys(rooms, 0)
        self.sector: dict[int, Counter] = {r: Counter() for r in rooms}
        self.organisation: dict[int, Counter] = {r: Counter() for r in rooms}
        self.region: dict[int, Counter] = {r: Counter() for r in rooms}
        self.order: Mapping[int, int] = {r: i for i, r in enumerate(rooms)}

    def add(self, person: Person, room: int) -> None:
        self.size[room] += 1
        self.sector[room][person.sector] += 1
        self.organisation[room][_organisation(person)] += 1
        self.region[room][person.region] += 1

    def remove(self, person: Person, room: int) -> None:
        self.size[room] -= 1
        self.sector[room][person.sector] -= 1
        self.organisation[room][_organisation(person)] -= 1
        self.region[room][person.region] -= 1

    def cost(self, person: Person, room: int, size: int) -> tuple:
        """Lower is better: fewer of her sector, organisation and region already there, then the emptier room."""
        return (
            self.sector[room][person.sector] if person.sector is not None else 0,
            self.organisation[room][_organisation(person)] if _organisation(person) else 0,
            self.region[room][person.region] if person.region is not None else 0,
            self.size[room] / size if size else 1,
            self.order[room],
        )
