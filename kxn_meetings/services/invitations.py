"""Invitations: each member's personal link, invitation rounds (invite, nudge, the preview) and choosing whom to
invite; and the personal email with its calendar part that every notice (services.notices) is built from.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from email.utils import getaddresses

from flask import current_app, render_template
from icalendar import vCalAddress
from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from .. import ical, timefmt
from ..extensions import db
from ..models import Answer, Invitation, Meeting, Member, MessageKind, OutboxMessage, Rsvp, utcnow
from ..text import first_control, is_email_address
from ..urls import external_url
from . import calendars, follows, meeting_summary
from .errors import ServiceError
from .locking import lock_meeting
from .outbox import Email, Queued, queue_emails
from .reply_addresses import reply_address
from .rsvps import may_see_join_link, rsvp_of

PARTSTAT = {Answer.GOING: "ACCEPTED", Answer.MAYBE: "TENTATIVE", Answer.DECLINED: "DECLINED"}
INVITE_KINDS = tuple(kind for kind in MessageKind if kind.in_invitation_round)
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
    """The recipient's ATTENDEE property as icalendar writes it: parameters in name order, CN the name as every
    parser reads it alike (ical.display_name) quoted by icalendar's own rules, the line folded."""
    address = vCalAddress(f"mailto:{member.email}")  # refuses a line break
    line = (
        f"ATTENDEE;{ical.cn_parameter(member.name)};CUTYPE=INDIVIDUAL;PARTSTAT={partstat_value};"
        f"ROLE=REQ-PARTICIPANT{';RSVP=TRUE' if rsvp else ''}:{address}"
    )
    return ical.folded(line) + b"\r\n"


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

    kind: MessageKind
    meeting: Meeting
    subject: str
    method: str | None
    context: dict
    calendars: _Calendars | None
    reply_to: str | None = None

    @classmethod
    def of(
        cls,
        kind: MessageKind,
        meeting: Meeting,
        *,
        subject: str,
        method: str | None,
        context: dict | None = None,
        extra: str = "",
        reply_to: str | None = None,
    ) -> _Notice:
        shared = {
            "kind": kind,
            "meeting": meeting,
            "when": timefmt.when(meeting.starts_at, meeting.ends_at, meeting.timezone),
            "meeting_url": external_url("meetings.show", ref=meeting.slug),
            "summary": meeting_summary.summary(meeting) if kind.tells_the_meeting else None,
            **(context or {}),
        }
        calendars = _Calendars(meeting, method, extra) if method else None
        return cls(kind, meeting, subject, method, shared, calendars, reply_to)

    def personal_context(
        self, member: Member, rsvp: Rsvp | None, invitation: Invitation, series: follows.SeriesLinks | None = None
    ) -> dict:
        reminder = self.kind == MessageKind.REMINDER
        # A reminder gives the link to those who said maybe too, unless the meeting is full: then only those with a
        # place have it, as those waiting for one do not.
        maybe_joins = reminder and self.context.get("join_when_maybe", True)
        return dict(
            self.context,
            rsvp=rsvp,
            series=series,
            answer_url=external_url("meetings.personal_answer", ref=self.meeting.slug, token=invitation.token),
            # Only a notice that puts the meeting in a calendar (or a reminder) carries the link: never a
            # cancellation, a decline or a preview.
            show_join=(reminder or self.method == "REQUEST")
            and may_see_join_link(self.meeting, rsvp, reminder=maybe_joins),
        )

    def message(
        self,
        member: Member,
        *,
        dedup: str,
        invitation: Invitation,
        rsvp: Rsvp | None,
        series: follows.SeriesLinks | None = None,
    ) -> Email:
        return Email(
            kind=self.kind,
            to=member,
            subject=self.subject,
            context=self.personal_context(member, rsvp, invitation, series),
            dedup_key=dedup,
            calendar=self.calendars.personal(member, rsvp, invitation) if self.calendars else None,
            calendar_method=self.method,
            meeting_id=self.meeting.id,
            sender=calendar_sender(invitation),
            reply_to=self.reply_to,
            list_unsubscribe=series.list_unsubscribe if series else "",
        )

    def _record(self, rows: Sequence[OutboxMessage | Queued]) -> None:
        """Mark the invitations sent: one statement per few hundred members rather than one each. (Invitation
        objects already loaded keep their old sent_at until the commit; everything that asks, asks the database.)"""
        if self.kind != MessageKind.INVITATION:
            return
        for chunk in _chunks([row.member_id for row in rows]):
            db.session.execute(
                update(Invitation)
                .where(Invitation.meeting_id == self.meeting.id, Invitation.member_id.in_(chunk))
                .values(sent_at=utcnow(), sent_sequence=self.meeting.sequence)
                .execution_options(synchronize_session=False)
            )

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
        followed = follows.links_for(self.meeting, todo)
        rows = queue_emails(
            [
                self.message(
                    m, dedup=keys[m.id], invitation=links[m.id], rsvp=answers.get(m.id), series=followed.get(m.id)
                )
                for m in todo
            ],
            progress=progress,
        )
        self._record(rows)
        return len(rows)


# Invitations -----------------------------------------------------------------------------------------


def invitable(meeting: Meeting) -> None:
    if not meeting.is_scheduled:
        raise InvitationError(
            "Publish the meeting before inviting members."
            if meeting.is_draft
            else "A cancelled meeting cannot be invited to."
        )
    if meeting.ends_at <= utcnow():
        raise InvitationError("This meeting has already taken place.")


def snapshot(meeting: Meeting) -> dict[str, str]:
    return {
        name: (value.isoformat() if isinstance(value, dt.datetime) else str(value or ""))
        for name in Meeting.NOTIFIABLE_FIELDS
        for value in [getattr(meeting, name)]
    }


def ensure_announced(meeting: Meeting, previous: dict[str, str] | None = None) -> None:
    if not meeting.announced:
        meeting.announced = json.dumps(previous or snapshot(meeting))


def _invitation_subject(meeting: Meeting) -> str:
    return f"Invitation: {meeting.title} ({_short_when(meeting)})"


def _invitation_key(meeting: Meeting, member: Member) -> str:
    return f"invitation:{meeting.id}:{member.id}"


def invite(meeting: Meeting, members: Iterable[Member], *, progress: Callable[[], None] | None = None) -> int:
    """Queue one personal invitation per active member; members invited before are skipped (their calendar
    already holds the meeting and has had every update since)."""
    invitable(meeting)
    ensure_announced(meeting)
    notice = _Notice.of(MessageKind.INVITATION, meeting, subject=_invitation_subject(meeting), method="REQUEST")
    return notice.send(members, lambda m: _invitation_key(meeting, m), progress=progress)


def not_invited_yet(meeting: Meeting, members: Sequence[Member]) -> list[Member]:
    """Those of `members` that `invite` would send to: active, and not sent this meeting's invitation before."""
    keys = {member.id: _invitation_key(meeting, member) for member in members}
    done = _already_queued(list(keys.values()))
    return [member for member in dict.fromkeys(members) if member.active and keys[member.id] not in done]


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
    notice = _Notice.of(MessageKind.INVITATION, meeting, subject=_invitation_subject(meeting), method=None)
    rsvp = rsvp_of(meeting.id, member.id)
    context = dict(
        notice.personal_context(member, rsvp, invitation, follows.links_for(meeting, [member]).get(member.id)),
        member=member,
        external_url=external_url,
        network_name=current_app.config["NETWORK_NAME"],
    )
    return Preview(
        notice.subject,
        render_template(f"emails/{notice.kind.template}.txt", **context),
        render_template(f"emails/{notice.kind.template}.html", **context),
    )


def nudge(meeting: Meeting) -> int:
    """Nudge invited members who have not answered, at most once a day each."""
    invitable(meeting)
    today = utcnow().date().isoformat()
    notice = _Notice.of(
        MessageKind.NUDGE,
        meeting,
        subject=f"Will you join us? {meeting.title} ({_short_when(meeting)})",
        method="REQUEST",
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


def parse_addresses(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Pasted addresses ('Name <a@b>' or 'a@b', by line, comma or semicolon): (name, email) pairs and bad entries."""
    good: list[tuple[str, str]] = []
    bad: list[str] = []
    seen: set[str] = set()
    chunks = [c.strip() for line in text.splitlines() for c in line.replace(";", ",").split(",") if c.strip()]
    for chunk in chunks:
        # Invisible characters too: a zero-width space or a bidi override would disguise one address as another.
        parsed = getaddresses([chunk]) if not first_control(chunk, invisible=True) else []
        name, email = parsed[0] if len(parsed) == 1 else ("", "")
        name, email = " ".join(name.split()), email.strip()
        if not is_email_address(email) or len(name) > NAME_MAX:
            bad.append(chunk[:300])
            continue
        if email.lower() in seen:
            continue
        seen.add(email.lower())
        good.append((name, email))
    return good, bad


def members_for_addresses(pairs: list[tuple[str, str]]) -> tuple[list[Member], list[tuple[str, str]]]:
    """Existing members for the addresses, and the pairs of addresses nobody has."""
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
    return found, unknown


def add_members(pairs: list[tuple[str, str]]) -> list[Member]:
    """New members for addresses nobody has, named as given or after the address."""
    new = [Member(email=email, name=name or email.split("@")[0].replace(".", " ").title()) for name, email in pairs]
    try:
        with db.session.begin_nested():
            db.session.add_all(new)
    except IntegrityError:
        raise InvitationError(
            "Some of these addresses were added as members by someone else meanwhile. "
            "Nothing was sent; please send again."
        ) from None
    return new


@dataclass
class Chosen:
    """Who a choice on the invite page names: active members, addresses of nobody known, entries not addresses."""

    members: list[Member]
    unknown: list[tuple[str, str]]
    bad: list[str]
    added: int = 0


def choose_recipients(
    recipients: str,
    *,
    organisations: list[str] | None = None,
    addresses: str = "",
    create: bool = False,
    series_id: int | None = None,
) -> Chosen:
    """Members named by the invite page's choice: 'followers' (of the meeting's series), 'organisations',
    'addresses' (new members made when `create`), or everyone active."""
    if recipients == "followers":
        return Chosen(follows.follower_members(series_id) if series_id is not None else [], [], [])
    if recipients == "organisations":
        return Chosen(active_members(organisations), [], [])
    if recipients == "addresses":
        pairs, bad = parse_addresses(addresses)
        members, unknown = members_for_addresses(pairs)
        if create and unknown:
            added = add_members(unknown)
            return Chosen([m for m in members + added if m.active], [], bad, added=len(added))
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
    chosen = choose_recipients(
        recipients, organisations=organisations, addresses=addresses, create=create, series_id=meeting.series_id
    )
    return invite(meeting, chosen.members), chosen
