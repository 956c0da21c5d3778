"""Invitations and every notice that keeps a member's calendar right for the life of a meeting.

Each message is personal: the recipient is the only ATTENDEE, the calendar part's METHOD matches the MIME
method, the UID never changes and SEQUENCE rises with every announced change. Nothing is sent here: rows are
queued in the outbox inside the caller's transaction, with a de-duplication key per notice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from email.utils import formataddr, getaddresses

from flask import current_app
from sqlalchemy import exists, func, or_, select

from .. import ical, timefmt
from ..database import is_postgresql
from ..extensions import db
from ..models import Answer, Invitation, Meeting, MeetingStatus, Member, OutboxMessage, Rsvp, utcnow
from ..urls import external_url
from . import calendars, replies, rsvps
from . import meetings as meeting_rules
from .outbox import queue_email

PARTSTAT = {Answer.GOING: "ACCEPTED", Answer.MAYBE: "TENTATIVE", Answer.DECLINED: "DECLINED"}


def calendar_sender(invitation: Invitation | None = None) -> str:
    """Invitations come From the calendar address, which is also the ORGANIZER: clients drop updates otherwise.
    With REPLIES_TOKEN_ADDRESSES both are the invitation's personal reply address."""
    config = current_app.config
    address = replies.reply_address(invitation) if invitation is not None else config["CALENDAR_ADDRESS"]
    return formataddr((config["NETWORK_NAME"], address))


def partstat(rsvp: Rsvp | None) -> str:
    if rsvp is None or rsvp.is_waiting:
        return "NEEDS-ACTION"
    return PARTSTAT[rsvp.answer]


def _rsvp(meeting: Meeting, member: Member) -> Rsvp | None:
    return db.session.scalar(select(Rsvp).where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == member.id))


def _calendar(meeting: Meeting, member: Member, method: str, rsvp: Rsvp | None, invitation: Invitation, *,
              extra: str = "") -> bytes:
    going = rsvp is not None and rsvp.is_going
    attendee = ical.Attendee(email=member.email, name=member.name,
                             partstat="DECLINED" if method == "CANCEL" and rsvp and rsvp.answer == Answer.DECLINED
                             else partstat(rsvp),
                             rsvp=method == "REQUEST")
    options = calendars.options_for(meeting, include_join_link=going and method == "REQUEST", attendee=attendee,
                                    status="CANCELLED" if method == "CANCEL" else None, extra=extra,
                                    organizer_email=replies.reply_address(invitation))
    return ical.calendar_bytes([(meeting, options)], method=method)


def _notice(kind: str, meeting: Meeting, member: Member, *, subject: str, method: str | None, dedup: str,
            rsvp: Rsvp | None = None, context: dict | None = None, extra: str = "") -> OutboxMessage | None:
    invitation = rsvps.personal_link(meeting, member)
    rsvp = rsvp if rsvp is not None else _rsvp(meeting, member)
    calendar = _calendar(meeting, member, method, rsvp, invitation, extra=extra) if method else None
    answer_url = external_url("meetings.personal_answer", ref=meeting.slug, token=invitation.token)
    row = queue_email(
        kind=kind,
        to=member,
        subject=subject,
        template="meeting_notice",
        context={
            "kind": kind, "meeting": meeting, "rsvp": rsvp, "answer_url": answer_url,
            "show_join": bool(meeting.join_url) and (kind == "reminder" or (rsvp is not None and rsvp.is_going)),
            "when": timefmt.when(meeting.starts_at, meeting.ends_at, meeting.timezone),
            "meeting_url": external_url("meetings.show", ref=meeting.slug),
            "ics_url": external_url("calendar.meeting_ics", ref=meeting.slug),
            **(context or {}),
        },
        dedup_key=dedup,
        calendar=calendar,
        calendar_method=method,
        meeting_id=meeting.id,
        sender=calendar_sender(invitation),
    )
    if row is not None and method == "REQUEST":
        invitation.sent_at = utcnow()
        invitation.sent_sequence = meeting.sequence
    return row


def _short_when(meeting: Meeting) -> str:
    local = meeting.local_start
    return f"{timefmt.short_day(local)}, {timefmt.time_range(local, meeting.local_end)} {local.tzname()}"


# Invitations -----------------------------------------------------------------------------------------

class InvitationError(ValueError):
    pass


def invitable(meeting: Meeting) -> None:
    if meeting.status != MeetingStatus.SCHEDULED:
        raise InvitationError("Publish the meeting before inviting members." if meeting.status == MeetingStatus.DRAFT
                              else "A cancelled meeting cannot be invited to.")
    if meeting.ends_at <= utcnow():
        raise InvitationError("This meeting has already taken place.")


def invite(meeting: Meeting, members: Iterable[Member], *, progress: Callable[[], None] | None = None) -> int:
    """Queue one personal invitation per member; members already invited at this SEQUENCE are skipped."""
    invitable(meeting)
    ensure_announced(meeting)
    queued = 0
    subject = f"Invitation: {meeting.title} ({_short_when(meeting)})"
    for member in members:
        if member.active and _notice("invitation", meeting, member, subject=subject, method="REQUEST",
                                     dedup=f"invitation:{meeting.id}:{member.id}:{meeting.sequence}"):
            queued += 1
        if progress:
            progress()
    return queued


def nudge(meeting: Meeting) -> int:
    """Remind invited members who have not answered (once a day at most)."""
    invitable(meeting)
    today = utcnow().date().isoformat()
    subject = f"Will you join us? {meeting.title} ({_short_when(meeting)})"
    queued = 0
    for member in not_replied(meeting):
        if _notice("nudge", meeting, member, subject=subject, method="REQUEST",
                   dedup=f"nudge:{meeting.id}:{member.id}:{meeting.sequence}:{today}"):
            queued += 1
    return queued


def not_replied(meeting: Meeting) -> list[Member]:
    return list(db.session.scalars(
        select(Member).join(Invitation, Invitation.member_id == Member.id)
        .where(Invitation.meeting_id == meeting.id, Invitation.sent_at.is_not(None), Member.active.is_(True),
               ~exists().where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == Member.id))
        .order_by(Member.name)
    ))


def recipients(meeting: Meeting) -> list[Member]:
    """Everyone whose calendar may hold the meeting: invited or answered, and not declined."""
    invited = exists().where(Invitation.meeting_id == meeting.id, Invitation.member_id == Member.id,
                             Invitation.sent_at.is_not(None))
    answered = exists().where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == Member.id)
    declined = exists().where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == Member.id,
                              Rsvp.answer == Answer.DECLINED)
    return list(db.session.scalars(
        select(Member).where(Member.active.is_(True), or_(invited, answered), ~declined).order_by(Member.id)
    ))


def last_queued() -> OutboxMessage | None:
    return db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1))


def outbox_counts(meeting: Meeting) -> dict[str, int]:
    rows = db.session.execute(
        select(OutboxMessage.status, func.count(OutboxMessage.id))
        .where(OutboxMessage.meeting_id == meeting.id, OutboxMessage.kind.in_(["invitation", "nudge"]))
        .group_by(OutboxMessage.status)
    ).all()
    return {str(status.value if hasattr(status, "value") else status): n for status, n in rows}


# Choosing recipients -------------------------------------------------------------------------------

def active_members(organisations: list[str] | None = None) -> list[Member]:
    query = select(Member).where(Member.active.is_(True)).order_by(Member.name)
    if organisations:
        query = query.where(Member.organisation.in_(organisations))
    return list(db.session.scalars(query))


def organisations() -> list[str]:
    return [o for o in db.session.scalars(
        select(Member.organisation).where(Member.active.is_(True), Member.organisation != "")
        .distinct().order_by(Member.organisation)) if o]


def parse_addresses(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Pasted addresses ('Name <a@b>' or 'a@b', by line, comma or semicolon): (name, email) pairs and bad entries."""
    good: list[tuple[str, str]] = []
    bad: list[str] = []
    seen: set[str] = set()
    chunks = [c.strip() for line in text.splitlines() for c in line.replace(";", ",").split(",") if c.strip()]
    for chunk in chunks:
        parsed = getaddresses([chunk])
        name, email = parsed[0] if parsed else ("", "")
        email = email.strip()
        if (not email or email.count("@") != 1 or "." not in email.split("@")[1] or len(email) > 254
                or any(c in email for c in " <>\"'\r\n")):
            bad.append(chunk)
            continue
        if email.lower() in seen:
            continue
        seen.add(email.lower())
        good.append((name.strip(), email))
    return good, bad


def members_for_addresses(pairs: list[tuple[str, str]], *, create: bool) -> tuple[list[Member], list[tuple[str, str]]]:
    """Existing members for the addresses, plus new members when `create` (else the unknown pairs)."""
    found: list[Member] = []
    unknown: list[tuple[str, str]] = []
    if not pairs:
        return found, unknown
    existing = {m.email.lower(): m for m in db.session.scalars(
        select(Member).where(func.lower(Member.email).in_([e.lower() for _, e in pairs])))}
    for name, email in pairs:
        member = existing.get(email.lower())
        if member is not None:
            found.append(member)
        elif create:
            member = Member(email=email, name=name or email.split("@")[0].replace(".", " ").title())
            db.session.add(member)
            found.append(member)
        else:
            unknown.append((name, email))
    db.session.flush()
    return found, unknown


# Changes, cancellation ------------------------------------------------------------------------------

def snapshot(meeting: Meeting) -> dict[str, str]:
    return {name: (value.isoformat() if isinstance(value, dt.datetime) else str(value or ""))
            for name in meeting_rules.NOTIFIABLE_FIELDS for value in [getattr(meeting, name)]}


def ensure_announced(meeting: Meeting, previous: dict[str, str] | None = None) -> None:
    if not meeting.announced:
        meeting.announced = json.dumps(previous or snapshot(meeting))


def record_changes(meeting: Meeting, before: dict[str, str], *, notify: bool) -> bool:
    """After an edit: schedule one update for everyone concerned (edits close together become one).

    `before` is snapshot() taken before the edit. Returns True when an update is scheduled or sent.
    """
    ensure_announced(meeting, before)
    after = snapshot(meeting)
    if after == before or meeting.status != MeetingStatus.SCHEDULED:
        return False
    if not notify:
        announced = json.loads(meeting.announced)
        announced.update({k: v for k, v in after.items() if before.get(k) != v})
        meeting.announced = json.dumps(announced)
        return False
    if meeting.update_due_at is None:
        meeting.sequence += 1
        meeting.update_due_at = utcnow() + dt.timedelta(seconds=current_app.config["UPDATE_WINDOW_SECONDS"])
    if current_app.config["UPDATE_WINDOW_SECONDS"] <= 0:
        send_update(meeting)
    return True


def describe_changes(meeting: Meeting) -> list[str]:
    """'Time: Tuesday 9 March 2027, 3–5pm GMT → Tuesday 9 March 2027, 4–6pm GMT', one line per change."""
    old = json.loads(meeting.announced or "{}")
    new = snapshot(meeting)
    lines: list[str] = []
    if any(old.get(k) != new[k] for k in ("starts_at", "ends_at", "timezone")) and old.get("starts_at"):
        before = timefmt.when(dt.datetime.fromisoformat(old["starts_at"]), dt.datetime.fromisoformat(old["ends_at"]),
                              old.get("timezone") or meeting.timezone)
        lines.append(f"Time: {before} \u2192 {timefmt.when(meeting.starts_at, meeting.ends_at, meeting.timezone)}")
    if old.get("title") != new["title"]:
        lines.append(f"Title: {old.get('title', '')} \u2192 {new['title']}")
    if old.get("location") != new["location"]:
        lines.append(f"Place: {old.get('location') or 'online only'} \u2192 {new['location'] or 'online only'}")
    if old.get("join_url") != new["join_url"]:
        lines.append("Join link: changed (members who are going receive the new link)")
    return lines


def send_update(meeting: Meeting) -> int:
    """Queue the update now for a meeting whose changes are due; returns how many were queued."""
    changes = describe_changes(meeting)
    meeting.update_due_at = None
    if not changes:
        return 0
    meeting.announced = json.dumps(snapshot(meeting))
    subject = f"Updated: {meeting.title} ({_short_when(meeting)})"
    summary = "; ".join(changes)
    queued = 0
    for member in recipients(meeting):
        if _notice("update", meeting, member, subject=subject, method="REQUEST", context={"changes": changes},
                   dedup=f"update:{meeting.id}:{member.id}:{meeting.sequence}", extra=f"Changed: {summary}"):
            queued += 1
    return queued


def send_due_updates(now: dt.datetime | None = None) -> int:
    """Announce every batch of edits whose window has closed (run by the outbox commands)."""
    query = select(Meeting).where(Meeting.update_due_at.is_not(None), Meeting.update_due_at <= (now or utcnow()))
    if is_postgresql():
        query = query.with_for_update(skip_locked=True)
    return sum(send_update(meeting) for meeting in db.session.scalars(query).all())


def send_cancellation(meeting: Meeting) -> int:
    """METHOD:CANCEL with STATUS:CANCELLED to everyone concerned. Call after services.meetings.cancel()."""
    meeting.update_due_at = None
    reason = meeting.cancel_reason
    subject = f"Cancelled: {meeting.title} ({_short_when(meeting)})"
    queued = 0
    for member in recipients(meeting):
        if _notice("cancellation", meeting, member, subject=subject, method="CANCEL", context={"reason": reason},
                   dedup=f"cancellation:{meeting.id}:{member.id}:{meeting.sequence}",
                   extra=f"Cancelled: {reason}" if reason else "Cancelled"):
            queued += 1
    return queued


# Answers --------------------------------------------------------------------------------------------

def after_answer(meeting: Meeting, rsvp: Rsvp, *, was_going: bool, was_answer: Answer | None) -> None:
    """A confirmation with the join link for a new 'Going'; a CANCEL of their own copy for a new 'Can't go'."""
    member = rsvp.member
    if member is None or meeting.status != MeetingStatus.SCHEDULED:
        return
    stamp = f"{rsvp.answered_at.timestamp():.6f}"
    if rsvp.is_going and not was_going:
        _notice("confirmation", meeting, member, rsvp=rsvp, method="REQUEST",
                subject=f"You're going: {meeting.title} ({_short_when(meeting)})",
                dedup=f"confirmation:{meeting.id}:{member.id}:{meeting.sequence}:{stamp}")
    elif rsvp.answer == Answer.DECLINED and was_answer is not None and was_answer != Answer.DECLINED:
        _notice("decline", meeting, member, rsvp=rsvp, method="CANCEL",
                subject=f"Removed from your calendar: {meeting.title}",
                dedup=f"decline:{meeting.id}:{member.id}:{meeting.sequence}:{stamp}")
    elif rsvp.answer == Answer.DECLINED and was_answer is None and _was_invited(meeting, member):
        _notice("decline", meeting, member, rsvp=rsvp, method="CANCEL",
                subject=f"Removed from your calendar: {meeting.title}",
                dedup=f"decline:{meeting.id}:{member.id}:{meeting.sequence}:{stamp}")


def _was_invited(meeting: Meeting, member: Member) -> bool:
    return db.session.scalar(select(Invitation.id).where(
        Invitation.meeting_id == meeting.id, Invitation.member_id == member.id, Invitation.sent_at.is_not(None))
    ) is not None


def after_promotion(meeting: Meeting, rsvp: Rsvp) -> None:
    if rsvp.member is None:
        return
    _notice("waitlist_promoted", meeting, rsvp.member, rsvp=rsvp, method="REQUEST",
            subject=f"A place is yours: {meeting.title} ({_short_when(meeting)})",
            dedup=f"waitlist_promoted:{meeting.id}:{rsvp.member_id}:{meeting.sequence}:{rsvp.answered_at.timestamp():.6f}")


# Reminders ------------------------------------------------------------------------------------------

def send_due_reminders(now: dt.datetime | None = None) -> int:
    """Once per member and meeting: a reminder with the join link to those going or maybe, ahead of the start."""
    now = now or utcnow()
    horizon = now + dt.timedelta(hours=current_app.config["REMINDER_HOURS"])
    rows = db.session.execute(
        select(Meeting, Rsvp).join(Rsvp, Rsvp.meeting_id == Meeting.id)
        .where(Meeting.status == MeetingStatus.SCHEDULED, Meeting.starts_at > now, Meeting.starts_at <= horizon,
               Rsvp.answer.in_([Answer.GOING, Answer.MAYBE]), Rsvp.waitlist_position.is_(None),
               Rsvp.member_id.is_not(None))
        .order_by(Meeting.starts_at, Rsvp.id)
    ).all()
    queued = 0
    for meeting, rsvp in rows:
        if not rsvp.member.active:
            continue
        if _notice("reminder", meeting, rsvp.member, rsvp=rsvp, method=None,
                   subject=f"Reminder: {meeting.title} ({_short_when(meeting)})",
                   dedup=f"reminder:{meeting.id}:{rsvp.member_id}"):
            queued += 1
    return queued
