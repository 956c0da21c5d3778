"""Notices: every email a member gets about a meeting after its invitation, each found here by its name. An
answer's confirmation and the "a place is yours" of a promotion from the waiting list (queue_answer_notices), an
update once a batch of edits is due (record_changes, queue_update; pending_update says who will get it and when,
send_pending_update_now sends it before the window closes), a cancellation (queue_cancellation) and the reminder
ahead of the start (queue_reminders).

Each is built and queued as an invitation is (services.invitations): personal, with the member's own calendar part,
queued in the caller's transaction with a de-duplication key per notice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeGuard

from flask import current_app
from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from .. import timefmt
from ..database import begin_write, is_postgresql
from ..extensions import db
from ..models import Answer, Invitation, Meeting, MeetingStatus, Member, MessageKind, Rsvp, utcnow
from . import follows, rooms
from .invitations import _Notice, _short_when, ensure_announced, personal_link, snapshot
from .locking import lock_meeting
from .outbox import drop_unrendered, queue_to_render, render, set_aside, to_render
from .rsvps import AnswerResult, counts_for, rsvp_of

log = logging.getLogger(__name__)

# Changes, cancellation ------------------------------------------------------------------------------


def _is_recipient(meeting: Meeting) -> ColumnElement[bool]:
    """Everyone whose calendar may hold the meeting: active, invited or answered, and not declined."""
    invited = exists().where(
        Invitation.meeting_id == meeting.id, Invitation.member_id == Member.id, Invitation.sent_at.is_not(None)
    )
    answered = exists().where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == Member.id)
    declined = exists().where(
        Rsvp.meeting_id == meeting.id, Rsvp.member_id == Member.id, Rsvp.answer == Answer.DECLINED
    )
    return Member.active.is_(True) & or_(invited, answered) & ~declined


def recipients(meeting: Meeting) -> list[Member]:
    """Who an update or a cancellation goes to."""
    return list(db.session.scalars(select(Member).where(_is_recipient(meeting)).order_by(Member.id)))


def recipient_count(meeting: Meeting) -> int:
    """How many members an update or a cancellation would go to now: the pages announce it before it is sent."""
    return db.session.scalar(select(func.count(Member.id)).where(_is_recipient(meeting))) or 0


def record_changes(meeting: Meeting, before: dict[str, str], *, notify: bool) -> int | None:
    """After an edit: schedule one update for everyone concerned (edits close together become one).

    `before` is snapshot() taken before the edit. Returns None when members are not to be told, otherwise how many
    updates were queued at once: 0 while the batch window is open (pending_update says until when).
    """
    if not meeting.is_scheduled:
        return None  # drafts are announced from the state they are published in
    ensure_announced(meeting, before)
    after = snapshot(meeting)
    if after == before:
        return None
    if not notify:
        announced = json.loads(meeting.announced)
        announced.update({k: v for k, v in after.items() if before.get(k) != v})
        meeting.announced = json.dumps(announced)
        return None
    if meeting.update_due_at is None:
        meeting.sequence += 1
        meeting.update_due_at = utcnow() + dt.timedelta(seconds=current_app.config["UPDATE_WINDOW_SECONDS"])
    if current_app.config["UPDATE_WINDOW_SECONDS"] <= 0:
        return queue_update(meeting)
    return 0


@dataclass(frozen=True)
class PendingUpdate:
    """An update waiting for its batch window to close: how many members will get it, and when it is queued."""

    recipients: int
    due_at: dt.datetime


def _update_due(meeting: Meeting) -> dt.datetime | None:
    """When the update waiting for its window goes out; None when none waits."""
    return meeting.update_due_at if meeting.is_scheduled else None


def pending_update(meeting: Meeting) -> PendingUpdate | None:
    """The update members will get once the window closes, or None when none is waiting."""
    if (due_at := _update_due(meeting)) is None:
        return None
    return PendingUpdate(recipients=recipient_count(meeting), due_at=due_at)


def send_pending_update_now(meeting: Meeting) -> int:
    """Queue the waiting update at once instead of when its window closes; how many were queued. Nothing when no
    update waits (pressed twice, or the window closed and the outbox worker queued it), so none is sent twice."""
    meeting = lock_meeting(meeting.id)
    if _update_due(meeting) is None:
        return 0
    return queue_update(meeting)


def describe_changes(meeting: Meeting) -> list[str]:
    """'Time: Tuesday 9 March 2027, 3–5pm GMT → Tuesday 9 March 2027, 4–6pm GMT', one line per change."""
    old = json.loads(meeting.announced or "{}")
    new = snapshot(meeting)
    lines: list[str] = []
    if any(old.get(k) != new[k] for k in ("starts_at", "ends_at", "timezone")) and old.get("starts_at"):
        before = timefmt.when(
            dt.datetime.fromisoformat(old["starts_at"]),
            dt.datetime.fromisoformat(old["ends_at"]),
            old.get("timezone") or meeting.timezone,
        )
        lines.append(f"Time: {before} \u2192 {timefmt.when(meeting.starts_at, meeting.ends_at, meeting.timezone)}")
    if old.get("title") != new["title"]:
        lines.append(f"Title: {old.get('title', '')} \u2192 {new['title']}")
    if old.get("location") != new["location"]:
        lines.append(f"Place: {old.get('location') or 'online only'} \u2192 {new['location'] or 'online only'}")
    if old.get("join_url") != new["join_url"]:
        lines.append("Join link: changed (members who are going receive the new link)")
    return lines


def queue_update(meeting: Meeting) -> int:
    """Queue the update now for a meeting whose changes are due; returns how many were queued."""
    changes = describe_changes(meeting)
    meeting.update_due_at = None
    if not changes:
        return 0
    meeting.announced = json.dumps(snapshot(meeting))
    return _send_to_everyone(
        MessageKind.UPDATE,
        meeting,
        "Updated",
        method="REQUEST",
        context={"changes": changes},
        extra=f"Changed: {'; '.join(changes)}",
    )


def queue_due_updates(now: dt.datetime | None = None) -> int:
    """Announce every batch of edits whose window has closed (run by the outbox commands)."""
    query = select(Meeting).where(Meeting.update_due_at.is_not(None), Meeting.update_due_at <= (now or utcnow()))
    if is_postgresql():
        query = query.with_for_update(skip_locked=True)
    return sum(queue_update(meeting) for meeting in db.session.scalars(query).all())


def queue_cancellation(meeting: Meeting) -> int:
    """METHOD:CANCEL with STATUS:CANCELLED to everyone concerned. Called by services.meetings.cancel()."""
    meeting.update_due_at = None
    reason = meeting.cancel_reason
    return _send_to_everyone(
        MessageKind.CANCELLATION,
        meeting,
        "Cancelled",
        method="CANCEL",
        context={"reason": reason},
        extra=f"Cancelled: {reason}" if reason else "Cancelled",
    )


def _send_to_everyone(
    kind: MessageKind, meeting: Meeting, heading: str, *, method: str, context: dict, extra: str
) -> int:
    """One notice of this version of the meeting (its SEQUENCE keys it) to everyone concerned."""
    notice = _Notice.of(
        kind,
        meeting,
        subject=f"{heading}: {meeting.title} ({_short_when(meeting)})",
        method=method,
        context=context,
        extra=extra,
    )
    return notice.send(recipients(meeting), lambda m: f"{kind}:{meeting.id}:{m.id}:{meeting.sequence}")


# Answers --------------------------------------------------------------------------------------------


ANSWER_NOTICES = (MessageKind.CONFIRMATION, MessageKind.DECLINE, MessageKind.WAITLIST_PROMOTED)


def _single(
    kind: MessageKind,
    meeting: Meeting,
    member: Member,
    rsvp: Rsvp,
    *,
    method: str,
    dedup: str,
    link: Invitation | None = None,
    replacing: tuple[MessageKind, ...] = (),
) -> int | None:
    """One notice to one member who has just answered (or been given a place): queued, and written by the outbox
    worker just before it is sent (render_answer_notices), so an answer does the least in its request.
    Her personal link is made here, under the meeting's lock, so that writing the notice never adds a row; `link`, the
    one she answered through, is known to exist.
    """
    if not _is_link_of(link, meeting, member):
        personal_link(meeting, member)
    return queue_to_render(
        kind,
        member,
        subject=_answer_subject(kind, meeting),
        dedup_key=dedup,
        meeting_id=meeting.id,
        calendar_method=method,
        replacing=replacing,
    )


def _answer_subject(kind: MessageKind, meeting: Meeting) -> str:
    """Worded when the notice is queued, and again when it is written, from the meeting as it is by then: a meeting
    moved or renamed meanwhile is not announced under its old time or title."""
    if kind == MessageKind.DECLINE:
        return f"Removed from your calendar: {meeting.title}"
    heading = "A place is yours" if kind == MessageKind.WAITLIST_PROMOTED else "You're going"
    return f"{heading}: {meeting.title} ({_short_when(meeting)})"


def _is_link_of(link: Invitation | None, meeting: Meeting, member: Member) -> TypeGuard[Invitation]:
    return link is not None and (link.meeting_id, link.member_id) == (meeting.id, member.id)


def _still_true(kind: MessageKind, rsvp: Rsvp | None) -> bool:
    """Whether what the notice says of her answer still holds."""
    if kind == MessageKind.DECLINE:
        return rsvp is not None and rsvp.answer == Answer.DECLINED
    return rsvp is not None and rsvp.is_going


def render_answer_notices(only_ids: Iterable[int] | None = None, limit: int | None = None) -> int:
    """Write the answer notices still to be written (all, or those of `only_ids`; at most `limit`, the oldest first,
    so that the caller may commit between batches), each as _single() would have when it was queued, for the meeting
    and her answer as they are now. One that no longer holds (the meeting was cancelled, or her answer changed another
    way than by answering again) is dropped. One whose member or meeting has been deleted, or that cannot be written
    (an address no longer usable), is set aside with the reason, still to render: retried, it is written afresh. Returns
    how many it took, written or set aside. deliver_due() calls it first on every path: the outbox worker, `flask
    kxn outbox send` and delivery after commit."""
    begin_write()
    rows = to_render(only_ids, limit)
    for row in rows:
        meeting = db.session.get(Meeting, row.meeting_id) if row.meeting_id is not None else None
        member = db.session.get(Member, row.member_id) if row.member_id is not None else None
        if meeting is None or member is None:
            set_aside(row, "Not written: its meeting or its member has been deleted.")
            continue
        rsvp = rsvp_of(meeting.id, member.id)
        kind = row.message_kind
        if kind is None or not meeting.is_scheduled or not _still_true(kind, rsvp):
            db.session.delete(row)  # cancelled since, or her answer was changed another way: it would mislead
            continue
        try:
            notice = _Notice.of(kind, meeting, subject=_answer_subject(kind, meeting), method=row.calendar_method)
            message = notice.message(
                member,
                dedup=row.dedup_key or "",
                invitation=personal_link(meeting, member),
                rsvp=rsvp,
                series=follows.links_for(meeting, [member]).get(member.id),
            )
            render(row, message)
        except SQLAlchemyError:
            raise
        except Exception as error:  # one notice that cannot be written must not hold up the rest of the mail
            log.exception("answer notice %s could not be written", row.id)
            set_aside(row, f"Not written: {error}")
    db.session.flush()
    return len(rows)


def queue_answer_notices(result: AnswerResult, *, link: Invitation | None = None) -> None:
    """What an answer (services.rsvps.answer) calls for: its confirmation when the answer changed, then "a place is
    yours" to each member it let in from the waiting list. `link`: the personal link she answered through."""
    if result.answer_changed:
        # A notice of her earlier answer not written yet would tell her where she no longer stands: it goes, and the
        # notice of this answer (if it calls for one) follows, queued with the same statement that drops it. One
        # already written may be on its way, and stays.
        queued = queue_answer_confirmation(
            result.meeting,
            result.rsvp,
            was_going=result.was_going,
            was_answer=result.previous,
            link=link,
            replacing=ANSWER_NOTICES,
        )
        if not queued:
            drop_unrendered(result.meeting.id, result.rsvp.member_id, ANSWER_NOTICES)
    queue_promotions(result.meeting, result.promoted)


def queue_answer_confirmation(
    meeting: Meeting,
    rsvp: Rsvp,
    *,
    was_going: bool,
    was_answer: Answer | None,
    link: Invitation | None = None,
    replacing: tuple[MessageKind, ...] = (),
) -> bool:
    """A confirmation with the join link for a new 'Going'; a CANCEL of their own copy for a new 'Can't go'. Returns
    whether a notice was due; when one was, her unsent notices of the kinds in `replacing` were dropped with it (as
    queue_to_render does), and when none was, the caller drops them."""
    member = rsvp.member
    if member is None or not meeting.is_scheduled:
        return False
    stamp = f"{rsvp.answered_at.timestamp():.6f}"
    if rsvp.is_going and not was_going:
        _single(
            MessageKind.CONFIRMATION,
            meeting,
            member,
            rsvp,
            method="REQUEST",
            dedup=f"confirmation:{meeting.id}:{member.id}:{meeting.sequence}:{stamp}",
            link=link,
            replacing=replacing,
        )
        return True
    if rsvp.answer == Answer.DECLINED and (
        (was_answer is not None and was_answer != Answer.DECLINED)
        or (was_answer is None and _was_invited(meeting, member, link))
    ):
        # Only a calendar that holds the meeting has anything to remove.
        _single(
            MessageKind.DECLINE,
            meeting,
            member,
            rsvp,
            method="CANCEL",
            dedup=f"decline:{meeting.id}:{member.id}:{meeting.sequence}:{stamp}",
            link=link,
            replacing=replacing,
        )
        return True
    return False


def _was_invited(meeting: Meeting, member: Member, link: Invitation | None) -> bool:
    if _is_link_of(link, meeting, member):
        return link.sent_at is not None
    return (
        db.session.scalar(
            select(Invitation.id).where(
                Invitation.meeting_id == meeting.id, Invitation.member_id == member.id, Invitation.sent_at.is_not(None)
            )
        )
        is not None
    )


def queue_promotions(meeting: Meeting, promoted: Iterable[Rsvp]) -> None:
    """A place from the waiting list: the calendar invitation with the join link, as for a new 'Going'."""
    if not meeting.is_scheduled:
        return
    for rsvp in promoted:
        if rsvp.member is None:
            continue
        stamp = f"{rsvp.answered_at.timestamp():.6f}"
        _single(
            MessageKind.WAITLIST_PROMOTED,
            meeting,
            rsvp.member,
            rsvp,
            method="REQUEST",
            dedup=f"waitlist_promoted:{meeting.id}:{rsvp.member_id}:{meeting.sequence}:{stamp}",
        )


# Reminders ------------------------------------------------------------------------------------------


def queue_reminders(now: dt.datetime | None = None) -> int:
    """Once per member and meeting: a reminder with the join link to those going, and to those who said maybe while
    the meeting has places left, ahead of the start."""
    now = now or utcnow()
    horizon = now + dt.timedelta(hours=current_app.config["REMINDER_HOURS"])
    rows = db.session.execute(
        select(Meeting, Member)
        .join(Rsvp, Rsvp.meeting_id == Meeting.id)
        .join(Member, Member.id == Rsvp.member_id)
        .where(
            Meeting.status == MeetingStatus.SCHEDULED,
            Meeting.starts_at > now,
            Meeting.starts_at <= horizon,
            Rsvp.answer.in_([Answer.GOING, Answer.MAYBE]),
            Rsvp.waitlist_position.is_(None),
            Member.active.is_(True),
        )
        .order_by(Meeting.starts_at, Rsvp.id)
    ).all()
    by_meeting: dict[int, tuple[Meeting, list[Member]]] = {}
    for meeting, member in rows:
        by_meeting.setdefault(meeting.id, (meeting, []))[1].append(member)
    counts = counts_for(list(by_meeting))
    queued = 0
    for meeting, members in by_meeting.values():
        notice = _Notice.of(
            MessageKind.REMINDER,
            meeting,
            subject=f"Reminder: {meeting.title} ({_short_when(meeting)})",
            method=None,
            # Each member going finds her workshop room in the reminder, once the organiser has locked the rooms.
            context={
                "rooms": rooms.rooms_by_member(meeting),
                "join_when_maybe": counts[meeting.id].places_left(meeting.capacity) != 0,
            },
        )

        def dedup(member: Member, meeting_id: int = meeting.id) -> str:
            return f"reminder:{meeting_id}:{member.id}"

        queued += notice.send(members, dedup)
    return queued
