"""Who else is coming: the organisations taking part in a meeting, and the names of those who agreed to show them,
for the members going to it. For a knowledge-exchange network, knowing which teams will be in the room is much of
the point of coming."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select

from ..extensions import db
from ..models import Answer, Meeting, Member, Rsvp


@dataclass(frozen=True)
class Guest:
    name: str
    organisation: str


@dataclass(frozen=True)
class GuestList:
    """`organisations`: (name, how many going from it), most first; `named`: those who agreed to show their name."""

    going: int
    organisations: list[tuple[str, int]]
    named: list[Guest]

    @property
    def unnamed(self) -> int:
        return self.going - len(self.named)

    @property
    def without_organisation(self) -> int:
        return self.going - sum(count for _name, count in self.organisations)


def may_see_guest_list(meeting: Meeting, rsvp: Rsvp | None) -> bool:
    """Members going (not waiting) to a meeting that is on; organisers see the attendees page instead."""
    return not meeting.is_cancelled and rsvp is not None and rsvp.is_going


def guest_list(meeting: Meeting) -> GuestList:
    """One query, whatever the number going. Never an email address: only names given consent, and organisations."""
    rows = db.session.execute(
        select(Member.name, Member.organisation, Member.show_name_to_attendees)
        .join(Rsvp, Rsvp.member_id == Member.id)
        .where(
            Rsvp.meeting_id == meeting.id,
            Rsvp.answer == Answer.GOING,
            Rsvp.waitlist_position.is_(None),
            Member.active.is_(True),
        )
        .order_by(Member.name, Member.id)
    ).all()
    organisations = Counter(org.strip() for _name, org, _shown in rows if org.strip())
    return GuestList(
        going=len(rows),
        organisations=sorted(organisations.items(), key=lambda pair: (-pair[1], pair[0].casefold())),
        named=[Guest(name, organisation) for name, organisation, shown in rows if shown],
    )
