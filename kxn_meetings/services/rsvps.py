"""Answering meetings: capacity, the waiting list, personal links, who sees the join link, attendee counts and
attendance."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol, overload

from sqlalchemy import BindParameter, ColumnElement, bindparam, case, exists, func, null, select
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from .. import timefmt
from ..database import reads_before_lock
from ..extensions import db
from ..kept import Kept, kept
from ..models import (
    ANSWERS_CHANGED,
    Answer,
    Invitation,
    Meeting,
    Member,
    MessageKind,
    OutboxMessage,
    Rsvp,
    RsvpSource,
    update_answer,
    utcnow,
)
from ..text import TEXT_AREA_BREAKS, without_controls
from .errors import ServiceError
from .locking import lock_meeting_row

COMMENT_MAX_LENGTH = 2000


def clean_comment(text: str) -> str:
    """A comment that did not come through the answer form (a calendar reply's note) held to the form's rules:
    no control characters, no surrounding space, at most COMMENT_MAX_LENGTH characters."""
    return without_controls(text, allow=TEXT_AREA_BREAKS).strip()[:COMMENT_MAX_LENGTH].rstrip()


class RsvpClosed(ServiceError):
    """The meeting no longer takes answers; the message says why in plain words."""


@dataclass
class Counts:
    going: int = 0
    maybe: int = 0
    declined: int = 0
    waiting: int = 0
    no_reply: int = 0
    attended: int = 0

    def places_left(self, capacity: int | None) -> int | None:
        return None if capacity is None else max(0, capacity - self.going)


@dataclass
class AnswerResult:
    """What an answer changed: the caller queues the notices it calls for (services.notices)."""

    meeting: Meeting
    rsvp: Rsvp
    changed: bool
    waiting_position: int | None
    promoted: list[Rsvp]
    previous: Answer | None
    was_going: bool
    link: Invitation | None = None

    @property
    def answer_changed(self) -> bool:
        return self.previous != self.rsvp.answer


def closed_reason(meeting: Meeting) -> str | None:
    if meeting.is_cancelled:
        return "This meeting has been cancelled, so it no longer takes answers."
    if meeting.is_draft:
        return "This meeting has not been published yet."
    now = utcnow()
    if meeting.ends_at <= now:
        return "This meeting has already taken place."
    if meeting.rsvp_deadline is not None and meeting.rsvp_deadline <= now:
        return (
            f"Answers closed on {timefmt.instant(meeting.rsvp_deadline, meeting.timezone)}. "
            "Please contact the organisers if your plans have changed."
        )
    return None


class WithJoinLink(Protocol):
    """What deciding on the join link reads of a meeting: a Meeting, or what stands for one unloaded
    (services.calendars.MeetingHead)."""

    @property
    def join_url(self) -> str | None: ...

    @property
    def is_cancelled(self) -> bool: ...


def may_see_join_link(
    meeting: WithJoinLink, rsvp: Rsvp | None, *, organiser: bool = False, reminder: bool = False
) -> bool:
    """Whether the join link is shown: to organisers and to members going (not those waiting), on the meeting page,
    in their calendar and in what they are sent; a reminder, which goes just before the start to those going or
    maybe, carries it too. Nobody sees a link the meeting does not have, nor that of a cancelled meeting."""
    if not meeting.join_url or meeting.is_cancelled:
        return False
    return organiser or reminder or (rsvp is not None and rsvp.is_going)


def _waiting(meeting_id) -> ColumnElement[bool]:
    """A meeting's answers waiting for a place; `meeting_id` a value or a bound parameter."""
    return (Rsvp.meeting_id == meeting_id) & (Rsvp.answer == Answer.GOING) & Rsvp.waitlist_position.is_not(None)


# The statements of an answer, built once per process: an answer runs them under the meeting's lock, and building
# one cost about as much as running it.
@functools.cache
def _going_statement():
    return select(func.count(Rsvp.id)).where(
        Rsvp.meeting_id == bindparam("meeting_id"), Rsvp.answer == Answer.GOING, Rsvp.waitlist_position.is_(None)
    )


def _going_count(meeting_id: int) -> int:
    return db.session.scalar(_going_statement(), {"meeting_id": meeting_id}) or 0


@functools.cache
def _position_statement():
    return select(func.count(Rsvp.id)).where(
        _waiting(bindparam("meeting_id")), Rsvp.waitlist_position <= bindparam("position")
    )


def waiting_position(rsvp: Rsvp) -> int | None:
    if not rsvp.is_waiting:
        return None
    return db.session.scalar(_position_statement(), {"meeting_id": rsvp.meeting_id, "position": rsvp.waitlist_position})


def answer(
    meeting_id: int,
    member: Member,
    choice: Answer,
    *,
    access_needs: str | None = None,
    comment: str | None = None,
    source: RsvpSource = RsvpSource.WEB,
) -> AnswerResult:
    """Record a member's answer. Idempotent: the same answer twice changes nothing and sends nothing."""
    read = _lock_with_answer(meeting_id, choice, member_id=member.id)
    return _answer(read, member, choice, access_needs=access_needs, comment=comment, source=source)


def answer_through_link(
    meeting_id: int,
    token: str,
    choice: Answer,
    *,
    access_needs: str | None = None,
    comment: str | None = None,
) -> AnswerResult | None:
    """answer() for the member whose personal link `token` is, read with the meeting under its lock in the same
    statement (invitation_by_token() and answer() would read them in two); None, with nothing changed, when it is not
    the link of an active member to this meeting. The result's `link` is the link."""
    if not TOKEN_SHAPE.fullmatch(token or ""):
        return None
    read = _lock_with_answer(meeting_id, choice, token=token)
    if read is None or read.member is None:
        return None
    result = _answer(
        read, read.member, choice, access_needs=access_needs, comment=comment, source=RsvpSource.EMAIL_LINK
    )
    result.link = read.link
    return result


def _answer(
    read: _UnderLock,
    member: Member,
    choice: Answer,
    *,
    access_needs: str | None,
    comment: str | None,
    source: RsvpSource,
) -> AnswerResult:
    meeting, rsvp = read.meeting, read.rsvp
    reason = closed_reason(meeting)
    if reason:
        raise RsvpClosed(reason)
    answered = rsvp is not None and not rsvp.is_walk_in  # a walk-in's row holds no answer of the member's
    was_going = rsvp is not None and rsvp.is_going
    was_answer = rsvp.answer if rsvp is not None and answered else None
    same_answer = rsvp is not None and answered and rsvp.answer == choice
    # Counted before this answer is added: once flushed it would count itself.
    full = (
        choice == Answer.GOING
        and not same_answer
        and meeting.capacity is not None
        and (_going_count(meeting.id) if read.going is None else read.going) >= meeting.capacity
    )
    changes: dict[str, object] = {}
    if access_needs is not None and access_needs != (rsvp.access_needs if rsvp else None):
        changes["access_needs"] = access_needs
    if comment is not None and comment != (rsvp.comment if rsvp else None):
        changes["comment"] = comment
    if not same_answer:
        changes["answer"] = choice
        changes["waitlist_position"] = _next_ticket(meeting.id) if full else None
    changed = bool(changes)
    if changed:
        changes["source"] = source
        changes["answered_at"] = utcnow()
    if rsvp is None:
        rsvp = Rsvp(meeting_id=meeting.id, member_id=member.id, **changes)
        db.session.add(rsvp)
        db.session.flush()
    elif changed:
        update_answer(db.session(), rsvp, changes)
    promoted = promote_waiting(meeting, anyone_waiting=read.anyone_waiting) if was_going and not rsvp.is_going else []
    return AnswerResult(
        meeting=meeting,
        rsvp=rsvp,
        changed=changed,
        waiting_position=waiting_position(rsvp),
        promoted=promoted,
        previous=was_answer,
        was_going=was_going,
    )


def _next_ticket(meeting_id: int) -> int:
    highest = db.session.scalar(select(func.max(Rsvp.waitlist_position)).where(Rsvp.meeting_id == meeting_id))
    return (highest or 0) + 1


@functools.cache
def _anyone_waiting_statement():
    return select(exists().where(_waiting(bindparam("meeting_id"))))


def promote_waiting(meeting: Meeting, *, anyone_waiting: bool | None = None) -> list[Rsvp]:
    """Fill free places from the front of the waiting list; returns who was given one, for the caller to tell
    (services.notices.queue_promotions). Caller holds the lock. Nobody waiting, the usual case, costs one short
    statement under the lock (none when the caller read it under the lock: `anyone_waiting`), and the places are
    counted only when someone waits for one."""
    if anyone_waiting is None:
        anyone_waiting = bool(db.session.scalar(_anyone_waiting_statement(), {"meeting_id": meeting.id}))
    if not anyone_waiting:
        return []
    if meeting.capacity is None:
        free = None
    else:
        free = meeting.capacity - _going_count(meeting.id)
        if free <= 0:
            return []
    query = select(Rsvp).where(_waiting(meeting.id)).order_by(Rsvp.waitlist_position)
    if free is not None:
        query = query.limit(free)
    promoted = list(db.session.scalars(query))
    for rsvp in promoted:
        rsvp.waitlist_position = None
        rsvp.answered_at = utcnow()
    db.session.flush()
    return promoted


@functools.cache
def _rsvp_statement():
    """Built once per process: every member's meeting page and every answer on PostgreSQL runs it."""
    return select(Rsvp).where(Rsvp.meeting_id == bindparam("meeting_id"), Rsvp.member_id == bindparam("member_id"))


@functools.cache
def _meeting_with_rsvp_statement(
    count_going: bool, check_waiting: bool, through_link: bool = False, *, check_only: bool = False
):
    """Built once per process for each case: every answer runs one or two of them. With `count_going`, the places
    taken (NULL for a meeting without a limit, which needs no count); with `check_waiting`, whether anyone waits;
    `through_link`, the member is the one whose personal link to the meeting is `token`, read with her link, and
    there is no row when there is no such link of an active member. With `check_only`, the row holds what tells
    whether the meeting, her answer and her link are still as an earlier read of them found them (_STILL_AS_READ),
    not the rows themselves."""
    meeting_id: BindParameter[int] = bindparam("meeting_id")
    going = (
        case((Meeting.capacity.is_not(None), _going_statement().scalar_subquery()), else_=null())
        if count_going
        else null()
    )
    waiting = exists().where(_waiting(meeting_id)) if check_waiting else null()
    if check_only:
        read: tuple = tuple(getattr(entity, name) for entity, name in _still_as_read(through_link))
    else:
        read = (Meeting, Rsvp, Invitation, Member) if through_link else (Meeting, Rsvp)
    query = select(*read, going.label("going"), waiting.label("anyone_waiting")).select_from(Meeting)
    if not through_link:
        query = query.outerjoin(Rsvp, (Rsvp.meeting_id == Meeting.id) & (Rsvp.member_id == bindparam("member_id")))
    else:
        query = (
            query.join(Invitation, (Invitation.meeting_id == Meeting.id) & (Invitation.token == bindparam("token")))
            .join(Member, (Member.id == Invitation.member_id) & Member.active.is_(True))
            .outerjoin(Rsvp, (Rsvp.meeting_id == Meeting.id) & (Rsvp.member_id == Invitation.member_id))
        )
    query = query.where(Meeting.id == meeting_id)
    return query if check_only else query.execution_options(populate_existing=True)


# What an answer reads of the meeting, her answer and her link, and what any change to them that matters to it moves:
# every change to a meeting by its organisers moves updated_at, every change to an answer its own updated_at.
_STILL_AS_READ = (
    (Meeting, ("updated_at", "status", "ends_at", "rsvp_deadline", "capacity", "sequence")),
    (Rsvp, ("id", "updated_at", "answer", "waitlist_position")),
    (Invitation, ("id", "sent_at")),
    (Member, ("id",)),
)


def _still_as_read(through_link: bool) -> list[tuple[type[Meeting | Rsvp | Invitation | Member], str]]:
    """Each (entity, attribute) of _STILL_AS_READ an answer reads: her link and her member row only `through_link`."""
    return [
        (entity, name)
        for entity, names in _STILL_AS_READ
        if through_link or entity not in (Invitation, Member)
        for name in names
    ]


def _as_read(read: _UnderLock, through_link: bool) -> tuple:
    """The values _still_as_read() names, as `read` holds them."""
    rows = {Meeting: read.meeting, Rsvp: read.rsvp, Invitation: read.link, Member: read.member}
    return tuple(
        getattr(rows[entity], name) if rows[entity] is not None else None
        for entity, name in _still_as_read(through_link)
    )


@dataclass(frozen=True)
class _UnderLock:
    """What an answer knows once it holds the meeting's lock: the meeting, her answer (read under the lock, or before
    it and checked under it), and the places taken and whether anyone waits, where the answer may need them, counted
    under the lock in the same statement (on PostgreSQL each would be a round trip, on SQLite a statement's work in
    Python, while others wait for the lock); None where not read."""

    meeting: Meeting
    rsvp: Rsvp | None
    going: int | None = None
    anyone_waiting: bool | None = None
    member: Member | None = None
    link: Invitation | None = None


@overload
def _lock_with_answer(meeting_id: int, choice: Answer, *, member_id: int) -> _UnderLock: ...
@overload
def _lock_with_answer(meeting_id: int, choice: Answer, *, token: str) -> _UnderLock | None: ...
def _lock_with_answer(
    meeting_id: int, choice: Answer, *, member_id: int | None = None, token: str | None = None
) -> _UnderLock | None:
    """The meeting locked (lock_meeting_row) with the member's answer to it as they stand under the lock, the places
    taken when a Going may need one and whether anyone waits when an answer other than Going may free a place. The
    member is `member_id`, or the one whose personal link is `token`, read with it (None when there is no such link
    of an active member).

    Where the unit of work reads before it writes (database.reads_before_lock), the meeting, her answer and her link
    are read before the lock, and under it one short statement checks that none of them has changed since and counts
    the places: the others waiting for the lock then wait for that statement, not for loading four rows. When one
    has changed, they are read again under the lock. That statement, as the one that reads them under the lock,
    follows the row lock's own on PostgreSQL: a statement that waited for the lock still reads other tables as they
    were when it began, and would miss an answer the transaction it waited for had just added. On SQLite the lock is
    held from BEGIN."""
    params = {"meeting_id": meeting_id, "member_id": member_id, "token": token}
    going, waiting = choice == Answer.GOING, choice != Answer.GOING
    through_link = token is not None
    early = None
    if reads_before_lock():
        early = _read(_meeting_with_rsvp_statement(False, False, through_link), params, through_link)
        if early is None:
            return None
    lock_meeting_row(meeting_id)
    if early is not None:
        check = _meeting_with_rsvp_statement(going, waiting, through_link, check_only=True)
        row = db.session.connection().execute(check, params).one_or_none()
        if row is not None and tuple(row[:-2]) == _as_read(early, through_link):
            return _counted_under_lock(early, row, going, waiting)
    return _read(_meeting_with_rsvp_statement(going, waiting, through_link), params, through_link, going, waiting)


def _read(statement, params: dict, through_link: bool, going: bool = False, waiting: bool = False) -> _UnderLock | None:
    """The meeting with her answer (and her link, `through_link`); None when there is no such link of an active
    member. A meeting that does not exist is an error: the caller found it first."""
    result = db.session.execute(statement, params)
    row = result.one_or_none() if through_link else result.one()
    if row is None:
        return None
    read = _UnderLock(row.Meeting, row.Rsvp)
    if through_link:
        set_committed_value(row.Invitation, "member", row.Member)
        read = replace(read, member=row.Member, link=row.Invitation)
    return _counted_under_lock(read, row, going, waiting)


def _counted_under_lock(read: _UnderLock, row, going: bool, waiting: bool) -> _UnderLock:
    return replace(
        read,
        going=int(row.going or 0) if going and read.meeting.capacity is not None else None,
        anyone_waiting=bool(row.anyone_waiting) if waiting else None,
    )


def rsvp_of(meeting_id: int, member_id: int) -> Rsvp | None:
    """A member's answer to a meeting, if she has one. Not for a change: answer() reads it afresh under the lock."""
    return db.session.scalar(_rsvp_statement(), {"meeting_id": meeting_id, "member_id": member_id})


@functools.cache
def _counts_statement():
    """Built once per process: on the meeting page, building this statement cost more than running it. Each
    meeting's counts come with the version of its answers they were counted at, read in the same statement."""
    waiting = (Rsvp.answer == Answer.GOING) & Rsvp.waitlist_position.is_not(None)
    return (
        select(
            Meeting.id,
            Meeting.answers_version,
            func.sum(case(((Rsvp.answer == Answer.GOING) & Rsvp.waitlist_position.is_(None), 1), else_=0)),
            func.sum(case((Rsvp.answer == Answer.MAYBE, 1), else_=0)),
            func.sum(case(((Rsvp.answer == Answer.DECLINED) & (Rsvp.source != RsvpSource.ORGANISER), 1), else_=0)),
            func.sum(case((waiting, 1), else_=0)),
            func.sum(case((Rsvp.attended.is_(True), 1), else_=0)),
        )
        .select_from(Meeting)
        .outerjoin(Rsvp, Rsvp.meeting_id == Meeting.id)
        .where(Meeting.id.in_(bindparam("ids", expanding=True)))
        .group_by(Meeting.id, Meeting.answers_version)
    )


def _counted(meeting_ids: Sequence[int]) -> dict[int, tuple[int, Counts]]:
    """Each meeting's answer counts, with the version of its answers they were counted at; one query."""
    if not meeting_ids:
        return {}
    rows = db.session.execute(_counts_statement(), {"ids": list(meeting_ids)}).all()
    return {
        mid: (
            version,
            Counts(
                going=int(going or 0),
                maybe=int(maybe or 0),
                declined=int(declined or 0),
                waiting=int(waiting_n or 0),
                attended=int(attended or 0),
            ),
        )
        for mid, version, going, maybe, declined, waiting_n, attended in rows
    }


def counts_for(meeting_ids: list[int]) -> dict[int, Counts]:
    """Answer counts for many meetings in one query."""
    counted = _counted(meeting_ids)
    return {mid: counted[mid][1] if mid in counted else Counts() for mid in meeting_ids}


KEPT_COUNTS = 1024


def page_counts(meetings: Sequence[Meeting]) -> dict[int, Counts]:
    """counts_for() for pages: kept per process for each version of a meeting's answers (Meeting.answers_version,
    which every change to them moves), so a page costs the same however many have answered. Counts are kept under
    the version read with them, not the one the page's meeting carries: a meeting read in another session or
    transaction (services.meetings.meeting_to_read) may be newer or older than what the request counts. Never used
    where a decision is taken (capacity, the waiting list), and bypassed by a transaction that has changed answers
    itself."""
    if db.session.info.get(ANSWERS_CHANGED):
        return counts_for([m.id for m in meetings])
    store: Kept[Counts] = kept("kxn_answer_counts", KEPT_COUNTS)
    found = {m.id: value for m in meetings if (value := store.get((m.id, m.answers_version))) is not None}
    fresh = _counted([m.id for m in meetings if m.id not in found])
    for mid, (version, value) in fresh.items():
        store.keep((mid, version), value)
    result = {**found, **{mid: value for mid, (_version, value) in fresh.items()}}
    return {m.id: replace(result.get(m.id, Counts())) for m in meetings}


def counts(meeting: Meeting) -> Counts:
    """Answer counts; "no reply" counts active members without an answer: those invited, once invitations have
    gone out, otherwise every active member."""
    result = counts_for([meeting.id])[meeting.id]
    query = select(func.count(Member.id)).where(
        Member.active.is_(True), ~exists().where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == Member.id)
    )
    # Invitation.sent_at is also set by the confirmation a member gets after answering, so the invitation
    # round itself is recognised by its outbox rows.
    if db.session.scalar(
        select(exists().where(OutboxMessage.meeting_id == meeting.id, OutboxMessage.kind == MessageKind.INVITATION))
    ):
        query = query.where(
            exists().where(
                Invitation.meeting_id == meeting.id, Invitation.member_id == Member.id, Invitation.sent_at.is_not(None)
            )
        )
    result.no_reply = db.session.scalar(query) or 0
    return result


TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")


@functools.cache
def _invitation_statement():
    """A personal link with its member, in one statement: every answer through a link reads both. Read as two
    entities of one row rather than through a joined load, whose machinery cost more than the statement itself;
    invitation_by_token() then sets the member on the link, as a joined load would have."""
    return (
        select(Invitation, Member)
        .join(Member, Member.id == Invitation.member_id)
        .where(Invitation.token == bindparam("token"), Invitation.meeting_id == bindparam("meeting_id"))
    )


def invitation_by_token(meeting_id: int, token: str) -> Invitation | None:
    """The personal link of an active member for this meeting; a link to another meeting is no link."""
    if not TOKEN_SHAPE.fullmatch(token or ""):
        return None
    row = db.session.execute(_invitation_statement(), {"token": token, "meeting_id": meeting_id}).first()
    if row is None or not row.Member.active:
        return None
    set_committed_value(row.Invitation, "member", row.Member)
    return row.Invitation


@dataclass
class Attendance:
    """Who came, against who said they would: the attendance figure is those going who came, of those going; those
    who answered Maybe and the walk-ins (who came without answering Going: no answer, Can't go or the waiting list)
    are counted apart, and the no-shows are those going recorded as not attended."""

    going: int
    came_going: int
    came_maybe: int
    walk_ins: list[Rsvp]
    no_shows: list[Rsvp]

    @property
    def rate(self) -> float | None:
        return self.came_going / self.going if self.going else None


def attendance(meeting: Meeting) -> Attendance:
    rows = db.session.scalars(
        select(Rsvp).where(Rsvp.meeting_id == meeting.id).options(joinedload(Rsvp.member)).order_by(Rsvp.id)
    ).all()
    going = [r for r in rows if r.is_going and not r.is_walk_in]
    return Attendance(
        going=len(going),
        came_going=sum(1 for r in going if r.attended),
        came_maybe=sum(1 for r in rows if r.answer == Answer.MAYBE and r.attended),
        walk_ins=[r for r in rows if r.attended and not r.is_going and r.answer != Answer.MAYBE],
        no_shows=[r for r in going if r.attended is False],
    )
