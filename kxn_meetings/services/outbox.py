"""Queueing email: rendered now, written as an outbox row in the caller's transaction."""

from __future__ import annotations

import email.policy
import functools
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.errors import MessageError
from email.headerregistry import Address
from typing import NamedTuple

from flask import current_app, g, has_request_context
from jinja2 import Template
from sqlalchemy import ColumnElement, Select, bindparam, delete, event, exists, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..database import insert_where, insert_where_statement, is_postgresql
from ..extensions import db
from ..mail import QUEUED_IN_REQUEST, new_message_id
from ..models import Meeting, Member, MessageKind, OutboxMessage, OutboxStatus, utcnow
from ..text import character_name, first_control, without_controls
from ..urls import external_url
from .errors import ServiceError

SEND_KEY = "kxn_outbox_send"
CALENDAR_METHODS = frozenset({"PUBLISH", "REQUEST", "REPLY", "CANCEL", "ADD", "REFRESH", "COUNTER", "DECLINECOUNTER"})


log = logging.getLogger(__name__)


class HeaderInjection(ValueError):
    """A value bound for an email header holds a line break or another control character."""


class BadAddress(ValueError):
    """Not exactly one usable email address."""


def _single_line(value: str, what: str) -> str:
    if char := first_control(value):
        raise HeaderInjection(f"{what} must be a single line without control characters: remove {character_name(char)}")
    return value


# A dot-atom address (RFC 5322 3.4.1): the email package reads it back unchanged, so it needs no parsing.
_DOT_ATOM_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


def format_address(name: str, email: str) -> str:
    """`Name <address>`, quoted where needed and left unencoded (the message builder encodes headers). Each run of
    white space in the name (no-break spaces included) becomes one space: the email package reads a display name
    that way."""
    name = " ".join(_single_line(name, "name").split())
    email = _single_line(email, "email address").strip()
    try:
        if _DOT_ATOM_ADDRESS.fullmatch(email):
            username, _, domain = email.rpartition("@")
            address = Address(display_name=name, username=username, domain=domain)
        else:
            address = Address(display_name=name, addr_spec=email)
    except (ValueError, IndexError, MessageError):
        raise BadAddress(f"{email!r} is not a usable email address") from None
    if not address.username or not address.domain:
        raise BadAddress(f"{email!r} is not a usable email address")
    return str(address)


@functools.lru_cache(maxsize=512)  # the same sender is checked for every message of an invitation round
def _named_address(name: str, email: str) -> str:
    return format_address(name, email)


@functools.lru_cache(maxsize=512)  # the same sender is checked for every message of an invitation round
def _one_address(value: str, what: str) -> str:
    """Check that a free-form `Name <address>` or bare address names exactly one mailbox."""
    _single_line(value, what)
    try:
        header = email.policy.default.header_factory("To", value)
        addresses = header.addresses
    except (ValueError, IndexError, MessageError):
        addresses, header = (), None
    if header is None or header.defects or len(addresses) != 1:
        raise BadAddress(f"{what} {value!r} is not one email address")
    # Encoded words (=?utf-8?...?=) come back decoded, so pages show the name as people write it.
    return format_address(addresses[0].display_name, addresses[0].addr_spec)


def _check_calendar(calendar: bytes | None, method: str | None) -> None:
    if calendar is None and method is None:
        return
    if calendar is None or method is None:
        raise ValueError("a calendar and its method go together")
    if method not in CALENDAR_METHODS:
        raise ValueError(f"unknown iTIP method {method!r}")
    # Clients show no buttons when the MIME method= and the METHOD inside the calendar differ.
    lines = bytes(calendar).replace(b"\r\n", b"\n").split(b"\n")
    if f"METHOD:{method}".encode() not in lines:
        raise ValueError(f"the calendar does not say METHOD:{method}")


def _note_for_delivery(message_id: int) -> None:
    """Remember the row so the web process may send it once the request's transaction is committed."""
    if has_request_context():
        g.setdefault(QUEUED_IN_REQUEST, []).append(message_id)


@dataclass
class Email:
    """One message to queue: emails/<template>.txt and .html rendered with `context` (by default the kind's
    template)."""

    kind: MessageKind
    to: Member | str
    subject: str
    template: str | None = None
    context: dict | None = None
    dedup_key: str | None = None
    calendar: bytes | None = None
    calendar_method: str | None = None
    meeting_id: int | None = None
    sender: str | tuple[str, str] | None = None  # `Name <address>`, or a (name, address) pair taken as written
    reply_to: str | None = None
    list_unsubscribe: str = ""  # `<https://...>`: the unfollow link of a series email

    def __post_init__(self) -> None:
        self.kind = MessageKind(self.kind)  # the templates ask the kind for their wording
        self.template = self.template or self.kind.template


def _unusable_member_address(to: Member | str) -> bool:
    """Whether `to` is a member whose stored address no email can go to (one stored before such addresses were
    refused): her message is left out, with a warning in the log, rather than failing everything queued with it.
    Asked only once writing a message has failed on an address, so that a good one is not checked twice."""
    if not isinstance(to, Member):
        return False
    try:
        format_address(to.name, to.email)
    except BadAddress:
        log.warning("Member %s has an address no email can be sent to; her message is not queued", to.id)
        return True
    return False


def _headers(message: Email) -> tuple[str, str, str, str]:
    """Recipient, subject, sender and reply-to as they go into the headers; raises on anything unusable."""
    member = message.to if isinstance(message.to, Member) else None
    recipient = format_address(member.name, member.email) if member else _one_address(message.to, "recipient")
    subject = _single_line(message.subject, "subject")
    if isinstance(message.sender, tuple):
        sender = _named_address(*message.sender)
    else:
        sender = _one_address(message.sender or current_app.config["MAIL_DEFAULT_SENDER"], "sender")
    reply_to = _one_address(message.reply_to, "reply-to") if message.reply_to else ""
    _check_calendar(message.calendar, message.calendar_method)
    return recipient, subject, sender, reply_to


class _Renderer:
    """Renders email templates as render_template() does, for many messages at once: each template is looked
    up, and the context processors run, once rather than once per message."""

    def __init__(self) -> None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        self.environment = app.jinja_env
        self.shared: dict = {}
        app.update_template_context(self.shared)
        self.templates: dict[str, Template] = {}

    def __call__(self, name: str, context: dict) -> str:
        template = self.templates.get(name)
        if template is None:
            template = self.templates[name] = self.environment.get_template(name)
        return template.render({**self.shared, **context})


def _current_send() -> str:
    """Every message queued in one transaction (one organiser's action, one worker's pass) is one send: the Outbox
    page groups by it."""
    send = db.session.info.get(SEND_KEY)
    if send is None:
        send = db.session.info[SEND_KEY] = secrets.token_hex(8)
    return send


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _end_send(session: Session) -> None:
    session.info.pop(SEND_KEY, None)


def _new_values(message: Email, render: _Renderer) -> dict:
    """The outbox row for one message as column values, checked and rendered."""
    recipient, subject, sender, reply_to = _headers(message)
    member = message.to if isinstance(message.to, Member) else None
    context = dict(
        message.context or {},
        kind=message.kind,
        member=member,
        external_url=external_url,
        network_name=current_app.config["NETWORK_NAME"],
    )
    return {
        "kind": message.kind,
        "dedup_key": message.dedup_key,
        "message_id": new_message_id(),
        "sender": sender,
        "recipient": recipient,
        "reply_to": reply_to,
        "list_unsubscribe": _single_line(message.list_unsubscribe, "List-Unsubscribe"),
        "subject": subject,
        "text_body": render(f"emails/{message.template}.txt", context),
        "html_body": render(f"emails/{message.template}.html", context),
        "calendar": bytes(message.calendar) if message.calendar is not None else None,
        "calendar_method": message.calendar_method,
        "meeting_id": message.meeting_id,
        "member_id": member.id if member else None,
        "send_id": _current_send(),
        "status": OutboxStatus.PENDING,
        "next_attempt_at": utcnow(),
    }


def _new_row(message: Email) -> OutboxMessage:
    """The outbox row for one message, checked and rendered, not yet added to the session."""
    return OutboxMessage(**_new_values(message, _Renderer()))


def render_email(**fields) -> OutboxMessage:
    """The outbox row queue_email() would add, checked and rendered, left out of the session: the same work
    without the message."""
    return _new_row(Email(**fields))


def _queued_before(dedup_key: str) -> bool:
    return db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == dedup_key)) is not None


def queue_email(**fields) -> OutboxMessage | None:
    """Render emails/<template>.txt and .html and add the message to the outbox (keywords: those of Email).

    Returns None when a message with the same dedup_key was queued before (the notice is not sent twice),
    also when another transaction queues it at the same moment, and when it is to a member whose stored address no
    email can go to (a warning is logged). Raises HeaderInjection for a line break in the subject or an address,
    BadAddress for anything else that is not one email address.
    """
    message = Email(**fields)
    try:
        if message.dedup_key is not None and _queued_before(message.dedup_key):
            _headers(message)  # bad input is refused all the same
            return None
        row = _new_row(message)
    except BadAddress:
        if _unusable_member_address(message.to):
            return None
        raise
    return _add(row)


def _values_or_none(message: Email, render: _Renderer) -> dict | None:
    """_new_values(), or None (with a warning logged) for a member whose stored address no email can go to."""
    try:
        return _new_values(message, render)
    except BadAddress:
        if _unusable_member_address(message.to):
            return None
        raise


def _add(row: OutboxMessage) -> OutboxMessage | None:
    """Add a new row to the outbox, or None when its dedup_key was taken by another transaction meanwhile."""
    if row.dedup_key is None:
        db.session.add(row)
        db.session.flush()
    else:
        # A concurrent transaction may queue the same notice between the check before and this insert.
        try:
            with db.session.begin_nested():
                db.session.add(row)
        except IntegrityError:
            if not _queued_before(row.dedup_key):
                raise
            return None
    _note_for_delivery(row.id)
    return row


# What render() writes into a row queued by queue_to_render().
_RENDERED = ("sender", "recipient", "reply_to", "list_unsubscribe", "subject", "text_body", "html_body", "calendar")


def queue_to_render(
    kind: MessageKind,
    to: Member,
    *,
    subject: str,
    dedup_key: str,
    meeting_id: int,
    calendar_method: str | None,
    replacing: tuple[MessageKind, ...] = (),
) -> int | None:
    """Queue a message to a member whose body and calendar part are written later, by render(), just before it is
    sent: the request that queues it does the least it can, one INSERT ... SELECT. Returns the new row's id, or None
    when one with this dedup_key was queued before. Rows still to render are never delivered (mail.delivery leaves
    them out). `replacing`: kinds of her messages about the meeting not written yet to drop first (drop_unrendered),
    in the same statement on PostgreSQL."""
    try:
        recipient = format_address(to.name, to.email)
    except BadAddress:
        _unusable_member_address(to)
        if replacing:
            drop_unrendered(meeting_id, to.id, replacing)
        return None
    now = utcnow()
    # Every column with a default is given here: a statement that also drops rows (`replacing`, below) is not given
    # the column defaults an INSERT gets.
    values = {
        "kind": kind,
        "dedup_key": dedup_key,
        "message_id": new_message_id(),
        "sender": "",
        "recipient": recipient,
        "reply_to": "",
        "list_unsubscribe": "",
        "subject": _single_line(subject, "subject"),
        "text_body": "",
        "html_body": "",
        "calendar_method": calendar_method,
        "meeting_id": meeting_id,
        "member_id": to.id,
        "send_id": _current_send(),
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": "",
        "created_at": now,
        "to_render": True,
    }
    # Every caller holds the meeting's lock, so no other transaction can queue the same key meanwhile. The row goes
    # straight to the connection: it depends on nothing the session may hold unflushed, and the session's execution
    # path cost as much as the statement.
    together = bool(replacing) and is_postgresql()
    if replacing and not together:
        drop_unrendered(meeting_id, to.id, replacing)
    statement = _queue_to_render_statement(tuple(values), replacing if together else ())
    return _noted(db.session.connection().scalars(statement, {**values, "new_key": dedup_key}).all())


@functools.cache
def _queue_to_render_statement(names: tuple[str, ...], replacing: tuple[MessageKind, ...]):
    """Built once per process: every answer that calls for a notice runs it. With `replacing`, the DELETE of
    drop_unrendered() runs in the same statement (a data-modifying WITH), one round trip less under the meeting's
    lock; its parameters are the row's own meeting_id and member_id. The INSERT's NOT EXISTS still sees the rows the
    DELETE drops (both read the same snapshot), which is harmless: an answer's new key carries the time of the
    answer just written, so it never equals the key of a notice it replaces."""
    new_key = ~exists().where(OutboxMessage.dedup_key == bindparam("new_key"))
    statement = insert_where_statement(OutboxMessage, names, new_key)
    if replacing:
        statement = statement.add_cte(_drop_unrendered_statement(replacing).cte("dropped"))
    return statement


def _insert_where(values: dict, condition: ColumnElement[bool]) -> int | None:
    """One outbox row of `values`, added only where `condition` holds; its id, noted for delivery, or None."""
    return _noted(insert_where(OutboxMessage, values, condition))


def _noted(added: Sequence[int]) -> int | None:
    for message_id in added:
        _note_for_delivery(message_id)
    return added[0] if added else None


def to_render(only_ids: Iterable[int] | None = None, limit: int | None = None) -> Sequence[OutboxMessage]:
    """Rows queued by queue_to_render() and waiting to be written, the oldest first (all, or those of `only_ids`;
    at most `limit`). On PostgreSQL they are locked, and rows another worker holds are left to it."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.to_render.is_(True), OutboxMessage.status == OutboxStatus.PENDING)
        .order_by(OutboxMessage.id)
    )
    if only_ids is not None:
        query = query.where(OutboxMessage.id.in_(list(only_ids)))
    if limit is not None:
        query = query.limit(limit)
    if is_postgresql():
        query = query.with_for_update(skip_locked=True)
    return db.session.scalars(query).all()


@functools.cache
def _drop_unrendered_statement(kinds: tuple[MessageKind, ...]):
    """Built once per process and set of kinds: every changed answer runs it."""
    return (
        delete(OutboxMessage)
        .where(
            OutboxMessage.meeting_id == bindparam("meeting_id"),
            OutboxMessage.member_id == bindparam("member_id"),
            OutboxMessage.to_render.is_(True),
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.kind.in_(kinds),
        )
        .execution_options(synchronize_session=False)
    )


def drop_unrendered(meeting_id: int, member_id: int | None, kinds: Iterable[MessageKind]) -> None:
    """Delete the messages of these kinds about this meeting to this member that are not written yet: never sent,
    nor about to be. An answer of nobody's (a walk-in's) has none."""
    if member_id is None:
        return
    params = {"meeting_id": meeting_id, "member_id": member_id}  # straight to the connection, as queue_to_render()
    db.session.connection().execute(_drop_unrendered_statement(tuple(kinds)), params)


def set_aside(row: OutboxMessage, reason: str) -> None:
    """Stop trying a message until an organiser retries it, saying why on the Outbox page."""
    row.status = OutboxStatus.FAILED
    row.last_error = reason


def render(row: OutboxMessage, message: Email) -> None:
    """Write a row queued by queue_to_render() from `message`, checked as queue_email() checks it; it keeps its
    Message-ID and place in the queue."""
    values = _new_values(message, _Renderer())
    for name in _RENDERED:
        setattr(row, name, values[name])
    row.to_render = False


def queue_email_where(condition: ColumnElement[bool], **fields) -> int | None:
    """queue_email() for a message without a dedup_key, added only where `condition` holds (say, that an address
    belongs to a member). It is rendered, and the same statement runs, either way. Returns the new row's id or None.
    """
    message = Email(**fields)
    if message.dedup_key is not None:
        raise ValueError("queue_email_where() takes no dedup_key")
    values = _values_or_none(message, _Renderer())
    return None if values is None else _insert_where(values, condition)


class Queued(NamedTuple):
    """A message queue_emails() added to the outbox."""

    id: int
    member_id: int | None


def queue_emails(messages: Iterable[Email], *, progress: Callable[[], None] | None = None) -> list[Queued]:
    """queue_email() for many messages at once (an invitation round): one query for the de-duplication keys
    and one bulk insert. Every message must carry a dedup_key. Returns the messages queued; a message queued
    before, or twice in `messages`, is left out. `progress` is called as each message is rendered."""
    messages = list(messages)
    keys = [m.dedup_key for m in messages]
    if None in keys:
        raise ValueError("queue_emails() needs a dedup_key on every message")
    taken: set[str | None] = set()
    for start in range(0, len(keys), 500):
        taken.update(
            db.session.scalars(
                select(OutboxMessage.dedup_key).where(OutboxMessage.dedup_key.in_(keys[start : start + 500]))
            )
        )
    chosen: list[Email] = []
    for message in messages:
        if message.dedup_key not in taken:
            taken.add(message.dedup_key)
            chosen.append(message)
    render = _Renderer()
    values = []
    for message in chosen:
        if (written := _values_or_none(message, render)) is not None:
            values.append(written)
        if progress is not None:
            progress()
    if not values:
        return []
    try:
        with db.session.begin_nested():
            # Rows rather than objects for the session to track: callers need only the ids.
            queued = [
                Queued(*row)
                for row in db.session.execute(
                    insert(OutboxMessage).returning(OutboxMessage.id, OutboxMessage.member_id), values
                )
            ]
    except IntegrityError:
        # Another transaction queued some of these meanwhile: one at a time, as queue_email() would.
        return [
            Queued(added.id, added.member_id)
            for message in chosen
            if (added := queue_email(**vars(message))) is not None
        ]
    for row in queued:
        _note_for_delivery(row.id)
    return queued


class NotSetAside(ServiceError):
    pass


def retry(message: OutboxMessage) -> None:
    """Put a set-aside message back in the queue for a fresh round of tries; it keeps its Message-ID."""
    if not message.status.is_failed:
        raise NotSetAside("Only a message that was set aside can be retried; this one is not.")
    message.status = OutboxStatus.PENDING
    message.attempts = 0
    message.next_attempt_at = utcnow()
    message.locked_until = None
    message.locked_by = None
    db.session.flush()
    _note_for_delivery(message.id)


# The Outbox page --------------------------------------------------------------------------------------------------

ADDRESS_SEARCH_MAX = 320


@dataclass(frozen=True)
class OutboxFilter:
    """What the Outbox page narrows its list to: part of an address, one send, one meeting."""

    address: str = ""
    send_id: str | None = None
    meeting_id: int | None = None

    @classmethod
    def of(cls, address: str | None, send_id: str | None, meeting_id: int | None) -> OutboxFilter:
        address = " ".join(without_controls(address or "").split())[:ADDRESS_SEARCH_MAX]
        send = send_id if send_id and re.fullmatch(r"[0-9a-f]{16}", send_id) else None
        return cls(address, send, meeting_id)

    @property
    def active(self) -> bool:
        return bool(self.address or self.send_id or self.meeting_id)

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.address:
            found.append(OutboxMessage.recipient.icontains(self.address, autoescape=True))
        if self.send_id:
            found.append(OutboxMessage.send_id == self.send_id)
        if self.meeting_id:
            found.append(OutboxMessage.meeting_id == self.meeting_id)
        return found


def messages(narrowed: OutboxFilter, status: OutboxStatus | None) -> Select:
    query = select(OutboxMessage).where(*narrowed.conditions()).order_by(OutboxMessage.id.desc())
    return query.where(OutboxMessage.status == status) if status is not None else query


def status_counts(narrowed: OutboxFilter) -> dict[OutboxStatus, int]:
    rows = db.session.execute(
        select(OutboxMessage.status, func.count()).where(*narrowed.conditions()).group_by(OutboxMessage.status)
    ).all()
    return {status: int(count) for status, count in rows}


def sends(meeting_id: int | None = None) -> Select:
    """One row per send (the messages queued together), newest first, with its counts by status."""
    by_status = {
        status.value: func.count(OutboxMessage.id).filter(OutboxMessage.status == status) for status in OutboxStatus
    }
    query = (
        select(
            OutboxMessage.send_id,
            OutboxMessage.meeting_id,
            Meeting.title.label("meeting_title"),
            Meeting.slug.label("meeting_slug"),
            OutboxMessage.kind,
            func.min(OutboxMessage.created_at).label("queued_at"),
            func.count(OutboxMessage.id).label("total"),
            *(count.label(name) for name, count in by_status.items()),
        )
        .outerjoin(Meeting, Meeting.id == OutboxMessage.meeting_id)
        .group_by(OutboxMessage.send_id, OutboxMessage.meeting_id, Meeting.title, Meeting.slug, OutboxMessage.kind)
        .order_by(func.min(OutboxMessage.created_at).desc(), func.max(OutboxMessage.id).desc())
    )
    return query.where(OutboxMessage.meeting_id == meeting_id) if meeting_id else query
