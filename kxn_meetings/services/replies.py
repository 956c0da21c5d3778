"""Calendar replies (iTIP REPLY and COUNTER by email) turned into RSVPs, and kept whether or not they count.

A reply is matched to a meeting by UID and to a member by the attendee it names. It counts only when it was
sent from that attendee's address or to the member's personal reply address, so nothing in a message can
change anyone but the attendee it names. Anything else is kept as unmatched, with the reason, and changes
nothing: Gmail in particular sends replies unreliably, so this path is a bonus that must never do harm. A message
too large, nested too deep or in too many parts to read safely is refused (Refused, with the reason) and not kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import logging
from dataclasses import dataclass, field
from email.feedparser import BytesFeedParser
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from email.utils import getaddresses
from zoneinfo import ZoneInfo

from flask import current_app
from icalendar import Calendar
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .. import timefmt
from ..extensions import db
from ..models import Answer, CalendarReply, Meeting, Member, ReplyOutcome, Rsvp, RsvpSource, utcnow
from . import notices, rsvps
from .errors import ServiceError
from .locking import lock_meeting
from .reply_addresses import invitation_by_reply_address

log = logging.getLogger(__name__)

ANSWERS = {"ACCEPTED": Answer.GOING, "TENTATIVE": Answer.MAYBE, "DECLINED": Answer.DECLINED}
CALENDAR_TYPES = frozenset({"text/calendar", "application/ics", "text/x-vcalendar", "application/x-ics"})
# Where the address a reply was sent to shows: the receiving server's own headers first.
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc")
# Clients nest three or four levels (mixed > alternative > calendar; a forward adds two); ten is generous.
MAX_MIME_DEPTH = 10
MAX_MIME_PARTS = 200
MAX_CALENDAR_PARTS = 4
# Header values are parsed only this far: the email package takes time growing faster than a header's length, and
# a megabyte of encoded words in one Subject kept it busy for more than ten minutes.
HEADER_MAX = 4000
# A DTSTAMP further ahead of this server's clock is not believed (see _written()).
CLOCK_TOLERANCE = dt.timedelta(days=1)


class Unmatched(Exception):
    """Why a message changes nothing, in words an organiser understands."""


class Refused(ServiceError):
    """A message not read at all (too large, nested too deep or in too many parts to read safely): nothing is
    stored or changed."""


@dataclass
class Attendee:
    email: str
    name: str
    partstat: str
    comment: str = ""


@dataclass
class ReadReply:
    """What a message says, read without touching the database."""

    message_id: str
    sender: str = ""
    subject: str = ""
    recipients: list[str] = field(default_factory=list)
    method: str = ""
    uid: str = ""
    attendees: list[Attendee] = field(default_factory=list)
    comment: str = ""
    dtstamp: dt.datetime | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    duration: dt.timedelta | None = None
    problem: str = ""


@dataclass
class Processed:
    reply: CalendarReply
    duplicate: bool


# Reading a message ------------------------------------------------------------------------------------


def too_large(size: int, *, at_least: bool = False) -> str | None:
    """Why a message of this many bytes is refused (REPLIES_MAX_BYTES), or None when it may be read. at_least: only
    the first `size` bytes were read, so the message may be larger still."""
    limit = current_app.config["REPLIES_MAX_BYTES"]
    if size <= limit:
        return None
    return f"Too large: {'at least ' if at_least else ''}{size} bytes; a message may be at most {limit} bytes."


class _ReadingPolicy(EmailPolicy):
    """The default policy, reading no more than HEADER_MAX characters of any header value."""

    def header_fetch_parse(self, name, value):
        if not hasattr(value, "name") and len(value) > HEADER_MAX:
            value = value[:HEADER_MAX]
        return super().header_fetch_parse(name, value)


class _LimitedParser(BytesFeedParser):
    """The email package's parser, stopped as soon as parts nest deeper than MAX_MIME_DEPTH or number more than
    MAX_MIME_PARTS. It descends into each nested part by recursion and checks every line against every enclosing
    boundary, so a message nested thousands of levels deep would exhaust the stack or take minutes; and each part
    costs it a fraction of a millisecond, so tens of thousands of tiny parts take most of a minute."""

    def __init__(self) -> None:
        self._level = -1
        self._parts = 0
        super().__init__(policy=_ReadingPolicy())

    def _parsegen(self):
        self._level += 1
        self._parts += 1
        try:
            if self._level > MAX_MIME_DEPTH:
                raise Refused(
                    f"Nested too deep: MIME parts inside one another more than {MAX_MIME_DEPTH} levels "
                    "deep; no calendar client writes that."
                )
            if self._parts > MAX_MIME_PARTS:
                raise Refused(f"Too many parts: more than {MAX_MIME_PARTS} MIME parts; no calendar client writes that.")
            yield from super()._parsegen()  # type: ignore[misc]
        finally:
            self._level -= 1


def _parse(raw: bytes) -> EmailMessage:
    parser = _LimitedParser()
    parser.feed(raw)
    message = parser.close()
    assert isinstance(message, EmailMessage)
    return message


def _clean(value: object, limit: int) -> str:
    """Text safe to store: no lone surrogates (undecodable header bytes) and no NUL, which PostgreSQL refuses."""
    text = str(value or "").encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return text.strip()[:limit]


def _header(message: EmailMessage, name: str) -> str:
    try:
        values = message.get_all(name) or []
        return " ".join(str(v) for v in values)
    except Exception:  # the email package raises on some malformed headers when they are read
        return ""


def _addresses(message: EmailMessage, name: str) -> list[str]:
    try:
        values = [str(v) for v in (message.get_all(name) or [])]
        return [addr.strip() for _, addr in getaddresses(values) if "@" in addr]
    except Exception:
        return []


def _decode(payload: bytes, charset: str) -> str:
    for candidate in (charset, "utf-8"):
        try:
            return payload.decode(candidate).lstrip("\ufeff")
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("cp1252", "replace")


def _calendar_parts(message: EmailMessage) -> list[tuple[str, str]]:
    """The text of each calendar part wherever the client put it, with the part's own method= parameter; the first
    MAX_CALENDAR_PARTS of them, since reading a calendar is slow and clients send one, or two copies of it."""
    found: list[tuple[str, str]] = []
    for part in message.walk():
        if len(found) == MAX_CALENDAR_PARTS:
            break
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        filename = (part.get_filename() or "").lower()
        if content_type not in CALENDAR_TYPES and not filename.endswith((".ics", ".vcs")):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload.strip():
            continue
        charset = part.get_content_charset() or "utf-8"
        found.append((_decode(payload, charset), str(part.get_param("method") or "").strip().upper()))
    return found


def _delivery_report(message: EmailMessage) -> str | None:
    """What a delivery report (a bounce or a delay warning, RFC 3464) says, or None for any other message. A bounce
    of an invitation carries the invitation itself, which must not be mistaken for anything the member sent."""
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type") or "").lower() != "delivery-status":
        return "A read receipt or other report, not a calendar reply."
    found: list[str] = []
    for part in message.walk():
        blocks = part.get_payload() if part.get_content_type() == "message/delivery-status" else None
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, Message):
                continue
            recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
            address = _clean(recipient.partition(";")[2] or recipient, 320)
            action = _clean(block.get("Action"), 20).lower()
            if address:
                found.append(f"{address} ({action})" if action else address)
    about = f" about the message to {', '.join(found[:5])}" if found else ""
    return f"A delivery report (bounce){about}, not a calendar reply."


def _tnef_note(message: EmailMessage) -> str:
    """Outlook sends a reply as winmail.dat (TNEF) when it believes the organiser uses Outlook too; its calendar
    cannot be read, so the member's answer does not count."""
    for part in message.walk():
        if part.get_content_type() == "application/ms-tnef" or (part.get_filename() or "").lower() == "winmail.dat":
            return (
                " Outlook sent it as winmail.dat (TNEF), which holds the answer in a form only Outlook reads:"
                " the member can answer with the link in the invitation instead."
            )
    return ""


def _first_event(text: str):
    calendars = Calendar.from_ical(text, multiple=True)
    for calendar in calendars:
        events = calendar.walk("VEVENT")
        if events:
            # A reply to one occurrence carries RECURRENCE-ID; the series itself is what a meeting is.
            events.sort(key=lambda event: "RECURRENCE-ID" in event)
            return calendar, events[0]
    return None, None


def _attendees(event) -> list[Attendee]:
    values = event.get("ATTENDEE")
    if values is None:
        return []
    if not isinstance(values, list):
        values = [values]
    result = []
    for value in values:
        address = str(value).strip()
        if address.lower().startswith("mailto:"):
            address = address[len("mailto:") :].strip()
        if "@" not in address:
            continue
        params = getattr(value, "params", {}) or {}
        result.append(
            Attendee(
                email=_clean(address, 320),
                name=_clean(params.get("CN", ""), 200),
                partstat=_clean(params.get("PARTSTAT", ""), 20).upper(),
                comment=_response_comment(params.get("X-RESPONSE-COMMENT")),
            )
        )
    return result


def _response_comment(value) -> str:
    """Gmail's note, in the attendee's X-RESPONSE-COMMENT parameter. The iCalendar parser has already removed the
    quotes and decoded RFC 6868 (^n ^' ^^); an unquoted value with commas comes back as a list, and Gmail writes
    some characters as HTML references (`it&#39\\;s`)."""
    if value is None:
        return ""
    text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return rsvps.clean_comment(html.unescape(_clean(text, 4 * rsvps.COMMENT_MAX_LENGTH)))


# Dates a calendar may plausibly write, far enough inside what Python's datetime holds that no zone's offset and no
# plausible duration takes them outside it (0001-01-01 read in Tokyo time would be before year 1 in UTC).
PLAUSIBLE_YEARS = range(1900, 3000)
LONGEST_DURATION = dt.timedelta(days=366)


def _value(event, name: str):
    """A property's date, date-time or duration, or None when it is missing, unreadable or implausible (a date
    outside PLAUSIBLE_YEARS, a duration longer than LONGEST_DURATION either way)."""
    try:
        prop = event.get(name)
        value = None if prop is None else prop.dt
    except Exception:
        return None
    if isinstance(value, dt.date) and value.year not in PLAUSIBLE_YEARS:
        return None
    if isinstance(value, dt.timedelta) and abs(value) > LONGEST_DURATION:
        return None
    return value


def _comment(event) -> str:
    values = event.get("COMMENT")
    if values is None:
        return ""
    if not isinstance(values, list):
        values = [values]
    text = _clean("\n".join(str(v).strip() for v in values), 4 * rsvps.COMMENT_MAX_LENGTH)
    return rsvps.clean_comment(text)


def read_message(raw: bytes, *, size: int | None = None) -> ReadReply:
    """Everything the processing needs from a raw RFC 822 message; size: the whole message's, when raw holds only
    its beginning. Raises Refused for a message too large, nested too deep or in too many parts to read; any
    other problem is reported in the result."""
    refusal = too_large(len(raw) if size is None else max(size, len(raw)))
    if refusal:
        raise Refused(refusal)
    reply = ReadReply(message_id="sha256:" + hashlib.sha256(raw).hexdigest())
    try:
        message = _parse(raw)
    except Refused:
        raise
    except Exception:
        reply.problem = "The message could not be read as email."
        return reply
    message_id = _clean(_header(message, "Message-ID"), 1000)
    if message_id and len(message_id) <= 500:
        reply.message_id = message_id
    senders = _addresses(message, "From")
    reply.sender = _clean(senders[0], 320) if senders else ""
    reply.subject = _clean(_header(message, "Subject"), 500)
    reply.recipients = [a for name in RECIPIENT_HEADERS for a in _addresses(message, name)]
    try:
        report = _delivery_report(message)
    except Exception:
        report = None
    if report is not None:
        reply.problem = report
        return reply
    try:
        parts = _calendar_parts(message)
    except Exception:
        parts = []
    if not parts:
        reply.problem = "No calendar in the message, so it is not a calendar reply." + _tnef_note(message)
        return reply
    calendar = event = None
    mime_method = ""
    for text, mime_method in parts:  # noqa: B007 - the part whose event is read keeps its method
        try:
            calendar, event = _first_event(text)
        except Exception:
            continue
        if event is not None:
            break
    if event is None:
        reply.problem = "The calendar in the message could not be read (malformed, or it holds no event)."
        return reply
    try:
        _read_event(reply, calendar, event, mime_method)
    except Exception:
        reply.problem = "The calendar in the message could not be read (malformed, or it holds no event)."
    return reply


def _read_event(reply: ReadReply, calendar, event, mime_method: str) -> None:
    reply.method = _clean(calendar.get("METHOD", "") or mime_method, 20).upper()
    reply.uid = _clean(event.get("UID", ""), 1000)
    reply.attendees = _attendees(event)
    reply.comment = _comment(event)
    stamp = _value(event, "DTSTAMP")
    if isinstance(stamp, dt.datetime):
        reply.dtstamp = stamp.astimezone(dt.UTC) if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
    reply.start, reply.end = _value(event, "DTSTART"), _value(event, "DTEND")
    duration = _value(event, "DURATION")
    reply.duration = duration if isinstance(duration, dt.timedelta) else None
    # Some Gmail and Outlook variants leave METHOD out of a reply; one answering attendee says what it is.
    if not reply.method and len(reply.attendees) == 1 and reply.attendees[0].partstat in ANSWERS:
        reply.method = "REPLY"
    if reply.method not in ("REPLY", "COUNTER"):
        what = f"METHOD:{reply.method}" if reply.method else "no METHOD"
        reply.problem = f"Not a reply: the calendar says {what}."
    elif not reply.uid:
        reply.problem = "The calendar names no meeting (no UID)."


def _instant(value, zone: ZoneInfo) -> dt.datetime | None:
    """A proposed time as a UTC instant; floating times and dates are read in the meeting's zone."""
    if isinstance(value, dt.datetime):
        local = value if value.tzinfo else value.replace(tzinfo=zone)
        return local.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(0), zone).astimezone(dt.UTC)
    return None


# Processing -----------------------------------------------------------------------------------------


def process(raw: bytes, *, size: int | None = None) -> Processed:
    """Read a message and apply it if it is a reply that counts, telling whether it had been processed before.
    Flushes; the caller commits. Raises Refused, having stored nothing, for a message it may not read (see
    read_message()). A reply that fails for any reason but the database's is kept as unmatched, with the error
    logged, rather than tried again and again.

    Idempotent by Message-ID (a hash of the bytes when there is none). Start from a fresh transaction and
    commit after each message: recording an answer may begin a new write transaction on SQLite.
    """
    read = read_message(raw, size=size)
    stored = _stored(read.message_id)
    if stored is not None:
        return Processed(stored, True)
    row = _row(read)
    if read.problem:
        return _store(row, ReplyOutcome.UNMATCHED, read.problem)
    meeting = db.session.scalar(select(Meeting).where(Meeting.uid == read.uid)) if len(read.uid) <= 200 else None
    if meeting is None:
        return _store(row, ReplyOutcome.UNMATCHED, f"No meeting has the calendar UID {read.uid[:200]}.")
    # From here on every change to this meeting's answers waits for us, so the check for a copy of this
    # message processed at the same moment is reliable.
    meeting = lock_meeting(meeting.id)
    stored = _stored(read.message_id)
    if stored is not None:
        return Processed(stored, True)
    row.meeting_id = meeting.id
    try:
        with db.session.begin_nested():
            return _apply(read, row, meeting)
    except (SQLAlchemyError, ServiceError):
        raise
    except Exception as error:
        # The same bytes would fail the same way on every try: kept, with the reason, and never tried again.
        log.exception("calendar reply %s could not be processed", read.message_id)
        if row in db.session:
            db.session.expunge(row)
        kept = _row(read)
        kept.meeting_id = meeting.id
        return _store(
            kept,
            ReplyOutcome.UNMATCHED,
            f"The reply could not be processed ({type(error).__name__}), so it changed nothing; the error is logged.",
        )


def _apply(read: ReadReply, row: CalendarReply, meeting: Meeting) -> Processed:
    """The rest of process(), under the meeting's lock: who the reply speaks for, and what it changes."""
    try:
        member, attendee = _who(read, meeting)
    except Unmatched as reason:
        return _store(row, ReplyOutcome.UNMATCHED, str(reason))
    row.partstat = attendee.partstat
    row.comment = comment = _note(read, attendee)
    if read.method == "COUNTER":
        row.member_id = member.id
        zone = ZoneInfo(meeting.timezone)
        row.proposed_start = _instant(read.start, zone)
        end = (
            read.end if read.end is not None else (read.start + read.duration if read.start and read.duration else None)
        )
        row.proposed_end = _instant(end, zone)
        return _store(row, ReplyOutcome.COUNTER, "A new time was proposed. It is shown here and never applied.")
    choice = ANSWERS.get(attendee.partstat)
    if choice is None:
        return _store(
            row,
            ReplyOutcome.UNMATCHED,
            f"{attendee.email} answered {attendee.partstat or 'nothing'}, which is not Accept, Tentative or Decline.",
        )
    row.member_id = member.id
    written = _written(read)
    current = db.session.scalar(select(Rsvp).where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == member.id))
    stale = _stale(current, written, meeting.timezone)
    if stale:
        return _store(row, ReplyOutcome.UNCHANGED, stale)
    row.outcome, row.reason = ReplyOutcome.APPLIED, ""
    db.session.add(row)
    try:
        result = rsvps.answer(meeting.id, member, choice, comment=comment or None, source=RsvpSource.CALENDAR_REPLY)
    except rsvps.RsvpClosed as closed:
        row.outcome, row.reason = ReplyOutcome.UNCHANGED, str(closed)
    else:
        notices.queue_answer_notices(result)
        # Kept even when the answer is unchanged: it is still the calendar's latest word.
        result.rsvp.reply_dtstamp = written
        if not result.changed:
            row.outcome, row.reason = ReplyOutcome.UNCHANGED, f"{choice.label} was already recorded."
        elif result.waiting_position is not None:
            row.reason = f"Going, on the waiting list (place {result.waiting_position}): the meeting is full."
        else:
            row.reason = f"Recorded as {choice.label}."
    db.session.flush()
    return Processed(row, False)


def _row(read: ReadReply) -> CalendarReply:
    """What is kept of a reply whatever becomes of it, before it is known which attendee answers."""
    attendee = read.attendees[0] if len(read.attendees) == 1 else None
    return CalendarReply(
        message_id=read.message_id,
        sender=read.sender,
        subject=read.subject,
        method=read.method,
        comment=_note(read, attendee),
        partstat=attendee.partstat if attendee else "",
    )


def _note(read: ReadReply, attendee: Attendee | None) -> str:
    """The reply's note: a COMMENT property (Outlook, Apple, Thunderbird) or the attendee's X-RESPONSE-COMMENT
    parameter (Gmail); both, when a client sends two different ones."""
    notes = [read.comment] + ([attendee.comment] if attendee and attendee.comment != read.comment else [])
    return rsvps.clean_comment("\n".join(note for note in notes if note))


def _written(read: ReadReply) -> dt.datetime:
    """When the reply was written, by its calendar's clock: its DTSTAMP. Without one, or with one more than
    CLOCK_TOLERANCE ahead (a clock set years wrong would otherwise hide every later reply), the time it is read."""
    now = utcnow()
    if read.dtstamp is None or read.dtstamp > now + CLOCK_TOLERANCE:
        return now
    return read.dtstamp


def _stale(current: Rsvp | None, written: dt.datetime, zone: str) -> str | None:
    """Why a reply written at `written` is older than the answer stored, or None when it may apply.

    Against an earlier calendar reply the two DTSTAMPs are compared, never the time the earlier one was processed:
    calendar clocks run minutes fast, so a reply can be written before another one that was processed earlier.
    Against an answer given on the website, by an email link or by an organiser, the DTSTAMP is compared with the
    time of that answer. The DTSTAMP of the last reply applied stays with the RSVP after such an answer, so a reply
    older than it stays stale too.
    """
    if current is None:
        return None
    last = current.reply_dtstamp
    if current.source == RsvpSource.CALENDAR_REPLY:
        # A reply applied before DTSTAMPs were kept is known only by the time it was processed.
        earlier, what = (
            (last, "the calendar reply already applied") if last else (current.answered_at, "the answer recorded")
        )
    else:
        earlier, what = current.answered_at, f"the answer already recorded ({current.source.label})"
        if last and last > earlier:
            earlier, what = last, "the calendar reply already applied"
    if written >= earlier:
        return None
    return f"Stale: written {timefmt.instant(written, zone)}, before {what} ({timefmt.instant(earlier, zone)})."


def _stored(message_id: str) -> CalendarReply | None:
    return db.session.scalar(select(CalendarReply).where(CalendarReply.message_id == message_id))


def _store(row: CalendarReply, outcome: ReplyOutcome, reason: str) -> Processed:
    row.outcome, row.reason = outcome, reason
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:  # the same message processed by another process at this moment
        stored = _stored(row.message_id)
        if stored is None:
            raise
        return Processed(stored, True)
    return Processed(row, False)


def _member_by_email(email: str) -> Member | None:
    return db.session.scalar(select(Member).where(func.lower(Member.email) == email.lower()))


def _who(read: ReadReply, meeting: Meeting) -> tuple[Member, Attendee]:
    """The member the reply speaks for and the attendee line that says so; Unmatched when it may not count."""
    if not read.attendees:
        raise Unmatched("The reply names no attendee.")
    named = ", ".join(a.email for a in read.attendees[:5])
    invitation, had_token = invitation_by_reply_address(read.recipients)
    if invitation is not None:
        if invitation.meeting_id != meeting.id:
            raise Unmatched("The reply went to the personal reply address of another meeting's invitation.")
        member = invitation.member
        attendee = next((a for a in read.attendees if a.email.lower() == member.email.lower()), None)
        if attendee is None and len(read.attendees) == 1:
            # Sent from another of the member's addresses: the token says who, unless the address is someone else's.
            other = _member_by_email(read.attendees[0].email)
            if other is None or other.id == member.id:
                attendee = read.attendees[0]
        if attendee is None:
            raise Unmatched(f"The reply went to {member.email}'s personal reply address but names {named}.")
        return _active(member), attendee
    if current_app.config["REPLIES_REQUIRE_TOKEN"]:
        raise Unmatched(
            "Only replies sent to a personal reply address count (REPLIES_REQUIRE_TOKEN), and this "
            + ("one's address is not valid." if had_token else "one was sent to the shared address.")
        )
    attendee = next((a for a in read.attendees if a.email.lower() == read.sender.lower()), None)
    if attendee is None:
        via = "an invalid personal reply address" if had_token else "the shared address"
        raise Unmatched(
            f"Sent from {read.sender or 'no address'} but names {named}, and sent to {via}: "
            "a reply counts only from the attendee's own address."
        )
    sender = _member_by_email(attendee.email)
    if sender is None:
        raise Unmatched(f"No member has the address {attendee.email}.")
    return _active(sender), attendee


def _active(member: Member) -> Member:
    if not member.active:
        raise Unmatched(f"The account of {member.email} is closed.")
    return member
