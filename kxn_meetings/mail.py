"""Building email from outbox rows and delivering them: at least once, never lost, retried with back-off.

Delivery is in three steps, each its own short transaction, so no database transaction stays open while
talking to the SMTP server:
1. claim: a batch of due rows is leased to this worker (FOR UPDATE SKIP LOCKED on PostgreSQL,
   BEGIN IMMEDIATE on SQLite), so concurrent workers never take the same row;
2. per message: the lease is renewed only if still ours, the message is sent;
3. the outcome is written: sent, retry later with back-off, or set aside (status failed).
A worker that dies keeps nothing: its lease runs out and another worker takes the rows over.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.policy
import email.utils
import functools
import logging
import os
import smtplib
import socket
import ssl
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import urlsplit

import flask_mail
from flask import Flask, Response, current_app, g
from sqlalchemy import or_, select, update

from .database import begin_write, is_postgresql
from .extensions import db
from .models import OutboxMessage, OutboxStatus, utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = dt.timedelta(hours=6)
QUEUED_IN_REQUEST = "outbox_queued_ids"


def init_app(app: Flask) -> None:
    app.after_request(_deliver_after_commit)


def message_bytes(row: OutboxMessage) -> bytes:
    """The one place that decides the MIME layout, as the bytes handed to the SMTP server.

    multipart/mixed
      multipart/alternative: text/plain, text/html, text/calendar; method=X (last, preferred by calendars)
      application/ics "invite.ics" (the same calendar, for clients that only look at attachments)
    Without a calendar: multipart/alternative of text/plain and text/html.

    Text parts are quoted-printable, so long HTML lines never break the 998-octet SMTP line limit; the
    calendar is base64, so its CRLF line endings arrive byte for byte. Every line is 7-bit and at most 78
    octets. Assembled directly (the email package's builder costs milliseconds a message, which an
    invitation round to the whole network feels); build_message() reads the result back for inspection.
    """
    # The Date is the time of this try, not of queueing: spam filters count a Date hours behind Received
    # against it. Retries are recognised by the unchanged Message-ID instead.
    headers = [_header("Subject", row.subject), _header("From", row.sender), _header("To", row.recipient)]
    if row.reply_to:
        headers.append(_header("Reply-To", row.reply_to))
    headers += [f"Date: {email.utils.format_datetime(utcnow())}", _header("Message-ID", row.message_id),
                "Auto-Submitted: auto-generated", "MIME-Version: 1.0"]
    parts = [_text_part("plain", row.text_body)]
    if row.html_body:
        parts.append(_text_part("html", row.html_body))
    if row.calendar is not None and row.calendar_method:
        calendar = _base64(bytes(row.calendar))
        method = row.calendar_method
        parts.append(f'Content-Type: text/calendar; method="{method}"; charset="utf-8"\r\n'
                     f"Content-Transfer-Encoding: base64\r\n\r\n{calendar}")
        attachment = ('Content-Type: application/ics\r\nContent-Transfer-Encoding: base64\r\n'
                      f'Content-Disposition: attachment; filename="invite.ics"\r\n\r\n{calendar}')
        body = _multipart("mixed", [_multipart("alternative", parts), attachment])
    elif len(parts) > 1:
        body = _multipart("alternative", parts)
    else:
        body = parts[0]
    return ("\r\n".join(headers) + "\r\n" + body).encode("ascii")


def build_message(row: OutboxMessage) -> EmailMessage:
    """The message as mail clients read it (message_bytes() parsed): for the Outbox page and the console."""
    return email.message_from_bytes(message_bytes(row), policy=email.policy.SMTP)


@functools.lru_cache(maxsize=1024)  # an invitation round repeats its subject and sender for every message
def _header(name: str, value: str) -> str:
    if value.isascii() and value.isprintable() and len(name) + 2 + len(value) <= 78:
        return f"{name}: {value}"
    # Non-ASCII or long: the email package encodes (RFC 2047) and folds it as the header's kind requires.
    policy = email.policy.SMTP
    return policy.header_factory(name, value).fold(policy=policy).rstrip("\r\n")


def _text_part(subtype: str, text: str) -> str:
    encoded = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable'
            f"\r\n\r\n{encoded.decode('ascii')}")


def _base64(data: bytes) -> str:
    return base64.encodebytes(data).replace(b"\n", b"\r\n").decode("ascii")


def _multipart(subtype: str, parts: list[str]) -> str:
    # "=_" never occurs in quoted-printable or base64 text, so the boundary cannot appear inside a part.
    boundary = f"=_kxn{uuid.uuid4().hex}"
    inner = "".join(f"--{boundary}\r\n{part.rstrip(chr(13) + chr(10))}\r\n" for part in parts)
    return (f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'
            f"{inner}--{boundary}--\r\n")


def new_message_id() -> str:
    domain = urlsplit(current_app.config["BASE_URL"]).hostname or "kxn.invalid"
    return f"<{uuid.uuid4().hex}@{domain}>"


def _deliver_after_commit(response: Response) -> Response:
    """Development convenience: send what this request queued once its transaction is over.

    Anything the view left uncommitted is rolled back first (teardown would discard it anyway), so only
    rows that really were committed exist to be sent.
    """
    ids = g.pop(QUEUED_IN_REQUEST, None)
    if not ids or not current_app.config["OUTBOX_DELIVER_AFTER_COMMIT"]:
        return response
    db.session.rollback()
    try:
        deliver_due(worker_id=f"web-{socket.gethostname()}-{os.getpid()}", only_ids=ids)
    except Exception:  # the change is committed; a later `outbox send` or the worker delivers
        log.exception("delivery after commit failed; the message stays queued")
        db.session.rollback()
    return response


def _connect() -> smtplib.SMTP:
    """An authenticated SMTP connection; TLS certificates are verified (smtplib's default does not)."""
    config = current_app.config
    timeout = config["MAIL_TIMEOUT"]
    host, port = config["MAIL_SERVER"], config["MAIL_PORT"]
    smtp: smtplib.SMTP
    if config["MAIL_USE_SSL"]:
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    try:
        if config["MAIL_USE_TLS"]:
            smtp.starttls(context=ssl.create_default_context())
        if config["MAIL_USERNAME"] and config["MAIL_PASSWORD"]:
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
    except BaseException:
        smtp.close()
        raise
    return smtp


class OutboxMail(flask_mail.Message):
    """A Flask-Mail message carrying the bytes message_bytes() made.

    Flask-Mail's own builder encodes non-ASCII display names twice and sends 8-bit bodies, so the layout
    is ours; Flask-Mail still does the sending (envelope, signals).
    """

    def __init__(self, data: bytes, row: OutboxMessage) -> None:
        # The envelope needs only the addresses; given as (name, address) pairs with no name, Flask-Mail
        # does not parse and re-encode display names that the headers already carry.
        super().__init__(subject=row.subject, recipients=[("", _address(row.recipient))],
                         sender=("", _address(row.sender)))
        self.data = data

    def as_bytes(self) -> bytes:
        return self.data

    def as_string(self) -> str:
        return self.data.decode("ascii")


@functools.lru_cache(maxsize=1024)
def _address(value: str) -> str:
    return email.utils.parseaddr(value)[1]


class _Connection(flask_mail.Connection):
    """Flask-Mail's connection, opened by _connect(): a timeout and verified TLS."""

    def configure_host(self) -> smtplib.SMTP:
        return _connect()

    def __exit__(self, *exc_info) -> None:
        if self.host is not None:
            _disconnect(self.host)


def _disconnect(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _due(now: dt.datetime, due_by: dt.datetime | None = None):
    return (
        OutboxMessage.status == OutboxStatus.PENDING,
        OutboxMessage.next_attempt_at <= (due_by or now),
        or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
    )


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=current_app.config["OUTBOX_LEASE_SECONDS"])


def _claim(worker_id: str, limit: int, due_by: dt.datetime,
           only_ids: list[int] | None = None) -> tuple[list[int], dt.datetime]:
    """Lease up to `limit` messages due by `due_by` to this worker; committed at once. Returns their ids and
    when the lease ends."""
    now = utcnow()
    query = (select(OutboxMessage.id).where(*_due(now, due_by))
             .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id))
    if only_ids is not None:
        query = query.where(OutboxMessage.id.in_(only_ids))
    query = query.limit(limit)
    if is_postgresql():
        query = query.with_for_update(skip_locked=True)
    else:
        begin_write()
    ids = list(db.session.scalars(query))
    if ids:
        db.session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids))
            .values(locked_until=now + _lease(), locked_by=worker_id)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return ids, now + _lease()


def _mine(message_id: int, worker_id: str):
    return (OutboxMessage.id == message_id, OutboxMessage.locked_by == worker_id,
            OutboxMessage.status == OutboxStatus.PENDING)


def _load(ids: list[int], worker_id: str) -> list[OutboxMessage]:
    """The claimed messages still ours, in claim order, in one query."""
    rows = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.id.in_(ids), OutboxMessage.locked_by == worker_id,
        OutboxMessage.status == OutboxStatus.PENDING).execution_options(populate_existing=True)).all()
    order = {message_id: n for n, message_id in enumerate(ids)}
    return sorted(rows, key=lambda row: order[row.id])


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    return isinstance(error, (smtplib.SMTPServerDisconnected, OSError))


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{addr}: SMTP {code} {_text(msg)}" for addr, (code, msg) in error.recipients.items())
    if isinstance(error, smtplib.SMTPResponseException):
        return f"SMTP {error.smtp_code}: {_text(error.smtp_error)}"
    return f"{type(error).__name__}: {error}"


def _backoff(attempts: int) -> dt.timedelta:
    base = current_app.config["OUTBOX_RETRY_BASE_SECONDS"]
    # The exponent is capped so a large OUTBOX_MAX_ATTEMPTS cannot overflow timedelta.
    return min(dt.timedelta(seconds=base * 2 ** min(attempts - 1, 20)), MAX_BACKOFF)


def _record_failure(message_id: int, worker_id: str, error: BaseException, report: DeliveryReport) -> None:
    """Count a failed try of this message: retry later with back-off, or set it aside."""
    if not is_postgresql():
        begin_write()
    row = db.session.scalar(select(OutboxMessage).where(*_mine(message_id, worker_id))
                            .with_for_update().execution_options(populate_existing=True))
    if row is None:  # the lease ran out and another worker has it
        db.session.rollback()
        return
    row.attempts += 1
    row.last_error = _describe(error)[:2000]
    row.locked_until = None
    row.locked_by = None
    if not _is_transient(error) or row.attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]:
        row.status = OutboxStatus.FAILED
        report.failed += 1
        log.warning("outbox message %s set aside after %s tries: %s", message_id, row.attempts, row.last_error)
    else:
        row.next_attempt_at = utcnow() + _backoff(row.attempts)
        report.retrying += 1
    report.errors.append(f"{row.recipient}: {row.last_error}")
    db.session.commit()


def _postpone(ids: list[int], worker_id: str, error: BaseException, report: DeliveryReport) -> None:
    """The server could not be reached: not the messages' fault, so no try is counted and none is set aside."""
    reason = f"Mail server unavailable: {_describe(error)}"[:2000]
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.locked_by == worker_id,
               OutboxMessage.status == OutboxStatus.PENDING)
        .values(locked_until=None, locked_by=None, last_error=reason,
                next_attempt_at=utcnow() + dt.timedelta(seconds=current_app.config["OUTBOX_RETRY_BASE_SECONDS"]))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    report.retrying += result.rowcount
    report.errors.append(reason)
    log.warning("outbox: %s; %s messages wait", reason, result.rowcount)


def _release(ids: list[int], worker_id: str) -> None:
    """Give claimed messages back untried, for the next pass or another worker."""
    if not ids:
        return
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.locked_by == worker_id,
               OutboxMessage.status == OutboxStatus.PENDING)
        .values(locked_until=None, locked_by=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _mark_sent(message_ids: list[int]) -> None:
    """Record messages the server accepted: one statement for a batch. A worker killed before this runs
    leaves them pending, to be sent again once its lease ends (delivery is at least once, never lost)."""
    if not message_ids:
        return
    # Not limited to our lease: the messages did go, so no other worker should send them again.
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(message_ids), OutboxMessage.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.SENT, sent_at=utcnow(), locked_until=None, locked_by=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    message_ids.clear()


def _print_to_console(message: EmailMessage) -> None:
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    attachments = ", ".join(part.get_filename() or part.get_content_type() for part in message.iter_attachments())
    out = sys.stdout
    printed = (f"\n----- email (no SMTP server configured: KXN_MAIL_SERVER) -----\n"
               f"To: {message['To']}\nSubject: {message['Subject']}\n"
               + (f"Attachments: {attachments}\n" if attachments else "")
               + f"\n{text}\n----- end of email -----\n")
    encoding = getattr(out, "encoding", None) or "utf-8"
    out.write(printed.encode(encoding, "replace").decode(encoding))
    out.flush()


def _send_batch(ids: list[int], lease_until: dt.datetime, worker_id: str, report: DeliveryReport,
                on_sent: Callable[[], None] | None, should_stop: Callable[[], bool] | None) -> None:
    config = current_app.config
    console = not config["MAIL_SERVER"]
    suppressed = bool(config.get("MAIL_SUPPRESS_SEND"))
    pause = 1.0 / config["OUTBOX_SEND_RATE"] if config["OUTBOX_SEND_RATE"] > 0 else 0.0
    # A message is sent only while at least half the lease is left, so no other worker can have taken it
    # meanwhile, however slow the server; the rest go back for a fresh claim.
    send_until = lease_until - _lease() / 2
    prepared: list[tuple[int, OutboxMessage, bytes]] = []
    broken: list[tuple[int, Exception]] = []
    for row in _load(ids, worker_id):
        try:
            prepared.append((row.id, row, message_bytes(row)))
        except Exception as error:  # stored data that cannot make a message: retrying will not help
            broken.append((row.id, error))
    for _message_id, row, _data in prepared:
        db.session.expunge(row)  # kept readable through the commits below
    db.session.commit()  # no transaction stays open while the server is talking
    for message_id, error in broken:
        _record_failure(message_id, worker_id, error, report)
    connection: _Connection | None = None
    if prepared and not (console or suppressed):
        try:
            connection = _Connection(current_app.extensions["mail"])
            connection.__enter__()
        except Exception as error:
            _postpone([p[0] for p in prepared], worker_id, error, report)
            return
    sent: list[int] = []
    try:
        for index, (message_id, row, data) in enumerate(prepared):
            if (should_stop is not None and should_stop()) or utcnow() >= send_until:
                _mark_sent(sent)
                _release([p[0] for p in prepared[index:]], worker_id)
                return
            try:
                if connection is not None:
                    connection.send(OutboxMail(data, row))
                elif console:
                    _print_to_console(email.message_from_bytes(data, policy=email.policy.SMTP))
            except Exception as error:
                _mark_sent(sent)
                _record_failure(message_id, worker_id, error, report)
                if connection is not None and getattr(connection.host, "sock", None) is None:
                    # connection gone (e.g. 421): the rest wait untried
                    _release([p[0] for p in prepared[index + 1:]], worker_id)
                    return
                continue
            sent.append(message_id)
            report.sent += 1
            if on_sent is not None:
                on_sent()
            if pause and index + 1 < len(prepared):
                time.sleep(pause)
    finally:
        _mark_sent(sent)
        if connection is not None:
            connection.__exit__(None, None, None)


def deliver_due(worker_id: str | None = None, *, limit: int | None = None, only_ids: list[int] | None = None,
                on_sent: Callable[[], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> DeliveryReport:
    """Deliver every message due now (or only those in `only_ids`), batch by batch, one SMTP connection each.

    Each message is tried at most once per call: one that fails is due again only after this call began.
    Stops early when a whole batch failed (the server is down or refusing: the rest waits for the next
    pass) or when `should_stop()` says so (claimed messages are released untried). The session must hold
    no uncommitted work: delivery commits as it goes.
    """
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    batch_size = current_app.config["OUTBOX_BATCH_SIZE"]
    started = utcnow()
    report = DeliveryReport()
    handled = 0
    while limit is None or handled < limit:
        if should_stop is not None and should_stop():
            break
        size = batch_size if limit is None else min(batch_size, limit - handled)
        ids, lease_until = _claim(worker_id, size, started, only_ids)
        if not ids:
            break
        handled += len(ids)
        sent_before, failed_before = report.sent, report.retrying + report.failed
        _send_batch(ids, lease_until, worker_id, report, on_sent, should_stop)
        if report.sent == sent_before and report.retrying + report.failed > failed_before:
            break
    return report


def count_due() -> int:
    return db.session.scalar(select(db.func.count(OutboxMessage.id)).where(*_due(utcnow()))) or 0
