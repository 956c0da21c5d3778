"""Who else is coming: the organisations taking part in a meeting, and the names of those who agreed to show them,
for the members going to it. For a knowledge-exchange network, knowing which teams will be in the room is much of
the point of coming."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, case, func, select

from ..extensions import db
from ..models import Answer, Meeting, Member, Rsvp


@dataclass(frozen=True)
class Guest:
    name: str
    organisation: str


# A meeting this network holds has a few dozen people going; past this many names the list says how many more.
NAMES_SHOWN = 100


@dataclass(frozen=True)
class GuestList:
    """`organisations`: (name, how many going from it), most first; `named`: the first NAMES_SHOWN (by name) of the
    `named_total` who agreed to show their name."""

    going: int
    organisations: list[tuple[str, int]]
    named: list[Guest]
    named_total: int

    @property
    def unnamed(self) -> int:
        return self.going - self.named_total

    @property
    def named_not_shown(self) -> int:
        return self.named_total - len(self.named)

    @property
    def without_organisation(self) -> int:
        return self.going - sum(count for _name, count in self.organisations)


def may_see_guest_list(meeting: Meeting, rsvp: Rsvp | None) -> bool:
    """Members going (not waiting) to a meeting that is on; organisers see the attendees page instead."""
    return not meeting.is_cancelled and rsvp is not None and rsvp.is_going


def going_query(meeting: Meeting, *columns) -> Select:
    """A query of `columns` over the active members going (not waiting) to the meeting."""
    return (
        select(*columns)
        .select_from(Member)
        .join(Rsvp, Rsvp.member_id == Member.id)
        .where(
            Rsvp.meeting_id == meeting.id,
            Rsvp.answer == Answer.GOING,
            Rsvp.waitlist_position.is_(None),
            Member.active.is_(True),
        )
    )


def guest_list(meeting: Meeting) -> GuestList:
    """Counted and grouped in the database, so it costs three short queries however many are going. Never an email
    address: only names given consent, and organisations."""
    shown = Member.show_name_to_attendees.is_(True)
    going, named_total = db.session.execute(
        going_query(meeting, func.count(), func.coalesce(func.sum(case((shown, 1), else_=0)), 0))
    ).one()
    organisation = func.trim(Member.organisation)
    organisations = db.session.execute(
        going_query(meeting, organisation, func.count())
        .where(organisation != "")
        .group_by(organisation)
        .order_by(func.count().desc(), func.lower(organisation), organisation)
    ).all()
    named = db.session.execute(
        going_query(meeting, Member.name, Member.organisation)
        .where(shown)
        .order_by(Member.name, Member.id)
        .limit(NAMES_SHOWN)
    ).all()
    return GuestList(
        going=int(going),
        organisations=[(name, int(count)) for name, count in organisations],
        named=[Guest(name, organisation) for name, organisation in named],
        named_total=int(named_total),
    )
