"""Invitations and every notice that keeps a member's calendar right for the life of a meeting.

Each message is personal: the recipient is the only ATTENDEE, the calendar part's METHOD matches the MIME
method, the UID never changes and SEQUENCE rises with every announced change. Nothing is sent here: rows are
queued in the outbox inside the caller's transaction, with a de-duplication key per notice.

A notice to many members (invitations, updates, cancellations, nudges, reminders) loads what it needs in a few
queries and builds the calendar part all recipients share once; each recipient's ATTENDEE is added to it.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from email.utils import getaddresses

from email_validator import EmailNotValidError, validate_email
from flask import current_app, render_template
from icalendar import vCalAddress
from icalendar.parser import Contentline, Parameters, dquote, rfc_6868_escape
from sqlalchemy import exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from .. import ical, timefmt
from ..database import is_postgresql
from ..extensions import db
from ..models import Answer, Invitation, Meeting, MeetingStatus, Member, OutboxMessage, Rsvp, utcnow
from ..urls import external_url
from . import calendars
from .errors import ServiceError
from .locking import lock_meeting
from .outbox import Email, Queued, queue_email, queue_emails
from .reply_addresses import reply_address
from .rsvps import AnswerResult, may_see_join_link

PARTSTAT = {Answer.GOING: "ACCEPTED", Answer.MAYBE: "TENTATIVE", Answer.DECLINED: "DECLINED"}
# Kinds counted on the invite page as "invitations so far".
INVITE_KINDS = ("invitation", "nudge")
NAME_MAX = 200
CHUNK = 500  # ids per IN (...) list, well below SQLite's parameter limit
END_EVENT = b"END:VEVENT\r\n"


class InvitationError(ServiceError):
    pass


def calendar_sender(invitation: Invitation | None = None) -> tuple[str, str]:
    """Invitations come From the calendar address, which is also the ORGANIZER: clients drop updates otherwise.
    With REPLIES_TOKEN_ADDRESSES both are the invitation's personal reply address. A (name, address) pair, so the
    network's name is taken as written, never read as an address header (which would decode `=?...?=` in it)."""
    config = current_app.config
    address = reply_address(invitation) if invitation is not None else config["CALENDAR_ADDRESS"]
    return config["NETWORK_NAME"], address


def partstat(rsvp: Rsvp | None) -> str:
    if rsvp is None or rsvp.is_waiting:
        return "NEEDS-ACTION"
    return PARTSTAT[rsvp.answer]


def _chunks(values: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _short_when(meeting: Meeting) -> str:
    local = meeting.local_start
    return f"{timefmt.short_day(local)}, {timefmt.time_range(local, meeting.local_end)} {local.tzname()}"


# Loading what a notice to many members needs -------------------------------------------------------


def personal_links(meeting: Meeting, members: Sequence[Member]) -> dict[int, Invitation]:
    """Each member's Invitation (personal RSVP link) for the meeting, created where missing; keyed by member id."""
    links: dict[int, Invitation] = {}
    ids = [m.id for m in members]
    for chunk in _chunks(ids):
        for invitation in db.session.scalars(
            select(Invitation).where(Invitation.meeting_id == meeting.id, Invitation.member_id.in_(chunk))
        ):
            links[invitation.member_id] = invitation
    missing = [
        {"meeting_id": meeting.id, "member_id": member_id, "token": secrets.token_urlsafe(24)}
        for member_id in dict.fromkeys(ids)
        if member_id not in links
    ]
    if missing:  # one bulk insert, the new invitations coming back as objects of the session
        links.update(
            (invitation.member_id, invitation)
            for invitation in db.session.scalars(insert(Invitation).returning(Invitation), missing)
        )
    return links


def personal_link(meeting: Meeting, member: Member) -> Invitation:
    """The member's own link to answer this meeting without signing in (one per member and meeting)."""
    return personal_links(meeting, [member])[member.id]


def _answers(meeting: Meeting, members: Sequence[Member]) -> dict[int, Rsvp]:
    answers: dict[int, Rsvp] = {}
    for chunk in _chunks([m.id for m in members]):
        for rsvp in db.session.scalars(select(Rsvp).where(Rsvp.meeting_id == meeting.id, Rsvp.member_id.in_(chunk))):
            if rsvp.member_id is not None:
                answers[rsvp.member_id] = rsvp
    return answers


def _already_queued(keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(keys):
        found.update(db.session.scalars(select(OutboxMessage.dedup_key).where(OutboxMessage.dedup_key.in_(chunk))))
    return found


# The calendar part -----------------------------------------------------------------------------------


def _attendee_lines(member: Member, partstat_value: str, *, rsvp: bool) -> bytes:
    """The recipient's ATTENDEE property as icalendar writes it: parameters in name order, CN escaped (RFC 6868)
    and quoted by icalendar's own rules, the line folded."""
    address = vCalAddress(f"mailto:{member.email}")  # refuses a line break
    always_quote = any(c in member.name for c in Parameters.quote_also["CN"])
    name = dquote(rfc_6868_escape(member.name), always_quote=always_quote)
    line = (
        f"ATTENDEE;CN={name};CUTYPE=INDIVIDUAL;PARTSTAT={partstat_value};ROLE=REQ-PARTICIPANT"
        f"{';RSVP=TRUE' if rsvp else ''}:{address}"
    )
    return _folded(line) + b"\r\n"


def _folded(line: str) -> bytes:
    """The content line folded as icalendar folds it (RFC 5545 3.1): 74 characters before each break, or 73
    where the 74th is a backslash or caret, so no escape is split. A line with non-ASCII characters, whose
    octets and characters differ, is left to icalendar."""
    if not line.isascii():
        return Contentline(line).to_ical()
    parts = []
    start = 0
    while len(line) - start > 74:
        end = start + 74 if line[start + 73] not in "\\^" else start + 73
        parts.append(line[start:end])
        start = end
    parts.append(line[start:])
    return "\r\n ".join(parts).encode("ascii")


class _Calendars:
    """Calendar bytes for each recipient of one notice: what recipients share (the meeting, its VTIMEZONE, the
    organiser, the join link or not) is built once with icalendar, then each recipient's ATTENDEE is added."""

    def __init__(self, meeting: Meeting, method: str, extra: str = "") -> None:
        self.meeting = meeting
        self.method = method
        self.extra = extra
        self.dtstamp = utcnow()
        self.shared: dict[tuple[bool, str], bytes] = {}

    def _shared(self, include_join_link: bool, organizer: str) -> bytes:
        key = (include_join_link, organizer)
        data = self.shared.get(key)
        if data is None:
            options = calendars.options_for(
                self.meeting,
                include_join_link=include_join_link,
                dtstamp=self.dtstamp,
                extra=self.extra,
                status="CANCELLED" if self.method == "CANCEL" else None,
                organizer_email=organizer,
            )
            data = ical.calendar_bytes([(self.meeting, options)], method=self.method)
            if data.count(END_EVENT) != 1:
                raise ValueError("a personal invitation holds exactly one event")
            # Personal reply addresses differ per recipient: nothing to share, so nothing to keep.
            if organizer == current_app.config["CALENDAR_ADDRESS"]:
                self.shared[key] = data
        return data

    def personal(self, member: Member, rsvp: Rsvp | None, invitation: Invitation) -> bytes:
        include_join_link = self.method == "REQUEST" and may_see_join_link(self.meeting, rsvp)
        data = self._shared(include_join_link, reply_address(invitation))
        state = partstat(rsvp)
        if self.method == "CANCEL" and rsvp is not None and rsvp.answer == Answer.DECLINED:
            state = "DECLINED"
        head, _, tail = data.rpartition(END_EVENT)
        return head + _attendee_lines(member, state, rsvp=self.method == "REQUEST") + END_EVENT + tail


# Queueing notices ------------------------------------------------------------------------------------


@dataclass
class _Notice:
    """One kind of notice about one meeting, with what all its recipients share."""

    kind: str
    meeting: Meeting
    subject: str
    method: str | None
    context: dict
    calendars: _Calendars | None

    @classmethod
    def of(
        cls,
        kind: str,
        meeting: Meeting,
        *,
        subject: str,
        method: str | None,
        context: dict | None = None,
        extra: str = "",
    ) -> _Notice:
        shared = {
            "kind": kind,
            "meeting": meeting,
            "when": timefmt.when(meeting.starts_at, meeting.ends_at, meeting.timezone),
            "meeting_url": external_url("meetings.show", ref=meeting.slug),
            **(context or {}),
        }
        return cls(kind, meeting, subject, method, shared, _Calendars(meeting, method, extra) if method else None)

    def personal_context(self, member: Member, rsvp: Rsvp | None, invitation: Invitation) -> dict:
        reminder = self.kind == "reminder"
        return dict(
            self.context,
            rsvp=rsvp,
            answer_url=external_url("meetings.personal_answer", ref=self.meeting.slug, token=invitation.token),
            # Only a notice that puts the meeting in a calendar (or a reminder) carries the link: never a
            # cancellation, a decline or a preview.
            show_join=(reminder or self.method == "REQUEST")
            and may_see_join_link(self.meeting, rsvp, reminder=reminder),
        )

    def message(self, member: Member, *, dedup: str, invitation: Invitation, rsvp: Rsvp | None) -> Email:
        return Email(
            kind=self.kind,
            to=member,
            subject=self.subject,
            template="meeting_notice",
            context=self.personal_context(member, rsvp, invitation),
            dedup_key=dedup,
            calendar=self.calendars.personal(member, rsvp, invitation) if self.calendars else None,
            calendar_method=self.method,
            meeting_id=self.meeting.id,
            sender=calendar_sender(invitation),
        )

    def _record(self, rows: Sequence[OutboxMessage | Queued]) -> None:
        """Mark the invitations sent: one statement per few hundred members rather than one each. (Invitation
        objects already loaded keep their old sent_at until the commit; everything that asks, asks the database.)"""
        if self.kind != "invitation":
            return
        for chunk in _chunks([row.member_id for row in rows]):
            db.session.execute(
                update(Invitation)
                .where(Invitation.meeting_id == self.meeting.id, Invitation.member_id.in_(chunk))
                .values(sent_at=utcnow(), sent_sequence=self.meeting.sequence)
                .execution_options(synchronize_session=False)
            )

    def queue(self, member: Member, *, dedup: str, invitation: Invitation, rsvp: Rsvp | None) -> OutboxMessage | None:
        row = queue_email(**vars(self.message(member, dedup=dedup, invitation=invitation, rsvp=rsvp)))
        if row is not None:
            self._record([row])
        return row

    def send(
        self, members: Iterable[Member], dedup: Callable[[Member], str], *, progress: Callable[[], None] | None = None
    ) -> int:
        """Queue this notice to each active member not already sent it; returns how many were queued."""
        members = list(members)
        keys = {member.id: dedup(member) for member in members}
        done = _already_queued(list(keys.values()))
        todo = [m for m in dict.fromkeys(members) if m.active and keys[m.id] not in done]
        if progress:
            for _ in range(len(members) - len(todo)):
                progress()
        if not todo:
            return 0
        links = personal_links(self.meeting, todo)
        answers = _answers(self.meeting, todo)
        rows = queue_emails(
            [self.message(m, dedup=keys[m.id], invitation=links[m.id], rsvp=answers.get(m.id)) for m in todo],
            progress=progress,
        )
        self._record(rows)
        return len(rows)


def _single(
    kind: str, meeting: Meeting, member: Member, rsvp: Rsvp, *, subject: str, method: str, dedup: str
) -> OutboxMessage | None:
    """One notice to one member who has just answered (or been given a place)."""
    notice = _Notice.of(kind, meeting, subject=subject, method=method)
    invitation = personal_link(meeting, member)
    return notice.queue(member, dedup=dedup, invitation=invitation, rsvp=rsvp)


# Invitations -----------------------------------------------------------------------------------------


def invitable(meeting: Meeting) -> None:
    if meeting.status != MeetingStatus.SCHEDULED:
        raise InvitationError(
            "Publish the meeting before inviting members."
            if meeting.status == MeetingStatus.DRAFT
            else "A cancelled meeting cannot be invited to."
        )
    if meeting.ends_at <= utcnow():
        raise InvitationError("This meeting has already taken place.")


def _invitation_subject(meeting: Meeting) -> str:
    return f"Invitation: {meeting.title} ({_short_when(meeting)})"


def invite(meeting: Meeting, members: Iterable[Member], *, progress: Callable[[], None] | None = None) -> int:
    """Queue one personal invitation per active member; members invited before are skipped (their calendar
    already holds the meeting and has had every update since)."""
    invitable(meeting)
    ensure_announced(meeting)
    notice = _Notice.of("invitation", meeting, subject=_invitation_subject(meeting), method="REQUEST")
    return notice.send(members, lambda m: f"invitation:{meeting.id}:{m.id}", progress=progress)


@dataclass
class Preview:
    subject: str
    text: str
    html: str


def preview(meeting: Meeting, member: Member) -> Preview:
    """The invitation `member` would receive, rendered without writing anything (GET requests show it)."""
    invitation = db.session.scalar(
        select(Invitation).where(Invitation.meeting_id == meeting.id, Invitation.member_id == member.id)
    )
    if invitation is None:
        invitation = Invitation(meeting_id=meeting.id, member_id=member.id, token="your-personal-link")
    notice = _Notice.of("invitation", meeting, subject=_invitation_subject(meeting), method=None)
    rsvp = db.session.scalar(select(Rsvp).where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == member.id))
    context = dict(
        notice.personal_context(member, rsvp, invitation),
        member=member,
        external_url=external_url,
        network_name=current_app.config["NETWORK_NAME"],
    )
    return Preview(
        notice.subject,
        render_template("emails/meeting_notice.txt", **context),
        render_template("emails/meeting_notice.html", **context),
    )


def nudge(meeting: Meeting) -> int:
    """Remind invited members who have not answered, at most once a day each."""
    invitable(meeting)
    today = utcnow().date().isoformat()
    notice = _Notice.of(
        "nudge", meeting, subject=f"Will you join us? {meeting.title} ({_short_when(meeting)})", method="REQUEST"
    )
    return notice.send(not_replied(meeting), lambda m: f"nudge:{meeting.id}:{m.id}:{today}")


def not_replied(meeting: Meeting) -> list[Member]:
    return list(
        db.session.scalars(
            select(Member)
            .join(Invitation, Invitation.member_id == Member.id)
            .where(
                Invitation.meeting_id == meeting.id,
                Invitation.sent_at.is_not(None),
                Member.active.is_(True),
                ~exists().where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == Member.id),
            )
            .order_by(Member.name, Member.id)
        )
    )


def recipients(meeting: Meeting) -> list[Member]:
    """Everyone whose calendar may hold the meeting: invited or answered, and not declined."""
    invited = exists().where(
        Invitation.meeting_id == meeting.id, Invitation.member_id == Member.id, Invitation.sent_at.is_not(None)
    )
    answered = exists().where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == Member.id)
    declined = exists().where(
        Rsvp.meeting_id == meeting.id, Rsvp.member_id == Member.id, Rsvp.answer == Answer.DECLINED
    )
    return list(
        db.session.scalars(
            select(Member).where(Member.active.is_(True), or_(invited, answered), ~declined).order_by(Member.id)
        )
    )


def outbox_counts(meeting: Meeting) -> dict[str, int]:
    """Invitations and nudges of the meeting by outbox status: {'pending': n, 'sent': n, 'failed': n}."""
    rows = db.session.execute(
        select(OutboxMessage.status, func.count(OutboxMessage.id))
        .where(OutboxMessage.meeting_id == meeting.id, OutboxMessage.kind.in_(INVITE_KINDS))
        .group_by(OutboxMessage.status)
    ).all()
    return {str(status): n for status, n in rows}


# Choosing recipients -------------------------------------------------------------------------------


def active_members(organisations: list[str] | None = None) -> list[Member]:
    query = select(Member).where(Member.active.is_(True)).order_by(Member.name, Member.id)
    if organisations is not None:
        query = query.where(Member.organisation.in_(organisations))
    return list(db.session.scalars(query))


def organisations() -> list[str]:
    return [
        o
        for o in db.session.scalars(
            select(Member.organisation)
            .where(Member.active.is_(True), Member.organisation != "")
            .distinct()
            .order_by(Member.organisation)
        )
        if o
    ]


def _usable_address(email: str) -> bool:
    if not email or len(email) > 254 or email.count("@") != 1:
        return False
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)


def parse_addresses(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Pasted addresses ('Name <a@b>' or 'a@b', by line, comma or semicolon): (name, email) pairs and bad entries."""
    good: list[tuple[str, str]] = []
    bad: list[str] = []
    seen: set[str] = set()
    chunks = [c.strip() for line in text.splitlines() for c in line.replace(";", ",").split(",") if c.strip()]
    for chunk in chunks:
        parsed = getaddresses([chunk]) if not _has_control_characters(chunk) else []
        name, email = parsed[0] if len(parsed) == 1 else ("", "")
        name, email = " ".join(name.split()), email.strip()
        if not _usable_address(email) or len(name) > NAME_MAX:
            bad.append(chunk[:300])
            continue
        if email.lower() in seen:
            continue
        seen.add(email.lower())
        good.append((name, email))
    return good, bad


def members_for_addresses(pairs: list[tuple[str, str]], *, create: bool) -> tuple[list[Member], list[tuple[str, str]]]:
    """Existing members for the addresses, plus new members when `create` (else the unknown pairs)."""
    found: list[Member] = []
    unknown: list[tuple[str, str]] = []
    existing: dict[str, Member] = {}
    for chunk in _chunks([email.lower() for _, email in pairs]):
        existing.update(
            (m.email.lower(), m) for m in db.session.scalars(select(Member).where(func.lower(Member.email).in_(chunk)))
        )
    for name, email in pairs:
        member = existing.get(email.lower())
        if member is not None:
            found.append(member)
        else:
            unknown.append((name, email))
    if create and unknown:
        new = [
            Member(email=email, name=name or email.split("@")[0].replace(".", " ").title()) for name, email in unknown
        ]
        try:
            with db.session.begin_nested():
                db.session.add_all(new)
        except IntegrityError:
            raise InvitationError(
                "Some of these addresses were added as members by someone else meanwhile. "
                "Nothing was sent; please send again."
            ) from None
        return found + new, []
    return found, unknown


@dataclass
class Chosen:
    """Who a choice on the invite page names: active members, addresses of nobody known, entries not addresses."""

    members: list[Member]
    unknown: list[tuple[str, str]]
    bad: list[str]


def choose_recipients(
    recipients: str, *, organisations: list[str] | None = None, addresses: str = "", create: bool = False
) -> Chosen:
    """Members named by the invite page's choice: 'organisations', 'addresses' (new members made when `create`),
    or everyone active."""
    if recipients == "organisations":
        return Chosen(active_members(organisations), [], [])
    if recipients == "addresses":
        pairs, bad = parse_addresses(addresses)
        members, unknown = members_for_addresses(pairs, create=create)
        return Chosen([m for m in members if m.active], unknown, bad)
    return Chosen(active_members(), [], [])


def invite_chosen(
    meeting: Meeting,
    recipients: str,
    *,
    organisations: list[str] | None = None,
    addresses: str = "",
    create: bool = False,
) -> tuple[int, Chosen]:
    """The invite page's Send: the meeting is locked first, so two organisers sending at once queue each invitation
    (and make each new member) once. Returns how many were queued and who was chosen."""
    meeting = lock_meeting(meeting.id)
    invitable(meeting)
    chosen = choose_recipients(recipients, organisations=organisations, addresses=addresses, create=create)
    return invite(meeting, chosen.members), chosen


# Changes, cancellation ------------------------------------------------------------------------------


def snapshot(meeting: Meeting) -> dict[str, str]:
    return {
        name: (value.isoformat() if isinstance(value, dt.datetime) else str(value or ""))
        for name in Meeting.NOTIFIABLE_FIELDS
        for value in [getattr(meeting, name)]
    }


def ensure_announced(meeting: Meeting, previous: dict[str, str] | None = None) -> None:
    if not meeting.announced:
        meeting.announced = json.dumps(previous or snapshot(meeting))


def record_changes(meeting: Meeting, before: dict[str, str], *, notify: bool) -> bool:
    """After an edit: schedule one update for everyone concerned (edits close together become one).

    `before` is snapshot() taken before the edit. Returns True when an update is scheduled or sent.
    """
    if meeting.status != MeetingStatus.SCHEDULED:
        return False  # drafts are announced from the state they are published in
    ensure_announced(meeting, before)
    after = snapshot(meeting)
    if after == before:
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


def send_update(meeting: Meeting) -> int:
    """Queue the update now for a meeting whose changes are due; returns how many were queued."""
    changes = describe_changes(meeting)
    meeting.update_due_at = None
    if not changes:
        return 0
    meeting.announced = json.dumps(snapshot(meeting))
    notice = _Notice.of(
        "update",
        meeting,
        subject=f"Updated: {meeting.title} ({_short_when(meeting)})",
        method="REQUEST",
        context={"changes": changes},
        extra=f"Changed: {'; '.join(changes)}",
    )
    return notice.send(recipients(meeting), lambda m: f"update:{meeting.id}:{m.id}:{meeting.sequence}")


def send_due_updates(now: dt.datetime | None = None) -> int:
    """Announce every batch of edits whose window has closed (run by the outbox commands)."""
    query = select(Meeting).where(Meeting.update_due_at.is_not(None), Meeting.update_due_at <= (now or utcnow()))
    if is_postgresql():
        query = query.with_for_update(skip_locked=True)
    return sum(send_update(meeting) for meeting in db.session.scalars(query).all())


def send_cancellation(meeting: Meeting) -> int:
    """METHOD:CANCEL with STATUS:CANCELLED to everyone concerned. Called by services.meetings.cancel()."""
    meeting.update_due_at = None
    reason = meeting.cancel_reason
    notice = _Notice.of(
        "cancellation",
        meeting,
        subject=f"Cancelled: {meeting.title} ({_short_when(meeting)})",
        method="CANCEL",
        context={"reason": reason},
        extra=f"Cancelled: {reason}" if reason else "Cancelled",
    )
    return notice.send(recipients(meeting), lambda m: f"cancellation:{meeting.id}:{m.id}:{meeting.sequence}")


# Answers --------------------------------------------------------------------------------------------


def queue_answer_notices(result: AnswerResult) -> None:
    """What an answer (services.rsvps.answer) calls for: its confirmation when the answer changed, then "a place is
    yours" to each member it let in from the waiting list."""
    if result.answer_changed:
        queue_answer_confirmation(result.meeting, result.rsvp, was_going=result.was_going, was_answer=result.previous)
    queue_promotions(result.meeting, result.promoted)


def queue_answer_confirmation(meeting: Meeting, rsvp: Rsvp, *, was_going: bool, was_answer: Answer | None) -> None:
    """A confirmation with the join link for a new 'Going'; a CANCEL of their own copy for a new 'Can't go'."""
    member = rsvp.member
    if member is None or meeting.status != MeetingStatus.SCHEDULED:
        return
    stamp = f"{rsvp.answered_at.timestamp():.6f}"
    if rsvp.is_going and not was_going:
        _single(
            "confirmation",
            meeting,
            member,
            rsvp,
            method="REQUEST",
            subject=f"You're going: {meeting.title} ({_short_when(meeting)})",
            dedup=f"confirmation:{meeting.id}:{member.id}:{meeting.sequence}:{stamp}",
        )
    elif rsvp.answer == Answer.DECLINED and (
        (was_answer is not None and was_answer != Answer.DECLINED)
        or (was_answer is None and _was_invited(meeting, member))
    ):
        # Only a calendar that holds the meeting has anything to remove.
        _single(
            "decline",
            meeting,
            member,
            rsvp,
            method="CANCEL",
            subject=f"Removed from your calendar: {meeting.title}",
            dedup=f"decline:{meeting.id}:{member.id}:{meeting.sequence}:{stamp}",
        )


def _was_invited(meeting: Meeting, member: Member) -> bool:
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
    if meeting.status != MeetingStatus.SCHEDULED:
        return
    for rsvp in promoted:
        if rsvp.member is None:
            continue
        stamp = f"{rsvp.answered_at.timestamp():.6f}"
        _single(
            "waitlist_promoted",
            meeting,
            rsvp.member,
            rsvp,
            method="REQUEST",
            subject=f"A place is yours: {meeting.title} ({_short_when(meeting)})",
            dedup=f"waitlist_promoted:{meeting.id}:{rsvp.member_id}:{meeting.sequence}:{stamp}",
        )


# Reminders ------------------------------------------------------------------------------------------


def send_due_reminders(now: dt.datetime | None = None) -> int:
    """Once per member and meeting: a reminder with the join link to those going or maybe, ahead of the start."""
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
    queued = 0
    for meeting, members in by_meeting.values():
        notice = _Notice.of(
            "reminder", meeting, subject=f"Reminder: {meeting.title} ({_short_when(meeting)})", method=None
        )

        def dedup(member: Member, meeting_id: int = meeting.id) -> str:
            return f"reminder:{meeting_id}:{member.id}"

        queued += notice.send(members, dedup)
    return queued
