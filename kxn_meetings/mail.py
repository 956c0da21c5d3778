"""Building email from outbox rows and delivering them: at least once, never lost, retried with back-off.

Delivery is in three steps, each its own short transaction, so no database transaction stays open while
talking to the SMTP server:
1. claim: a batch of due rows is leased to this worker (FOR UPDATE SKIP LOCKED on PostgreSQL,
   BEGIN IMMEDIATE on SQLite), so concurrent workers never take the same row;
2. per message, while at least half the lease is left: the message is sent (one SMTP connection per pass);
3. the outcome is written as soon as the server's verdict is read, before the next message is offered: sent,
   retry later with back-off, or set aside (status failed).
A worker that dies keeps nothing: its lease runs out and another worker takes the rows over. What it sends again
is at most the message whose verdict it had not yet read when it died.
"""

from __future__ import annotations

import binascii
import contextlib
import datetime as dt
import email.policy
import email.utils
import functools
import logging
import os
import re
import smtplib
import socket
import ssl
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import NamedTuple
from urllib.parse import urlsplit

import flask_mail
from flask import Flask, Response, current_app, g
from sqlalchemy import Row, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from . import mail_headers
from .database import SQLITE_SYNCHRONOUS, begin_write, changed_rows, is_postgresql
from .extensions import db
from .models import OutboxMessage, OutboxStatus, utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = dt.timedelta(hours=6)
QUEUED_IN_REQUEST = "outbox_queued_ids"


def init_app(app: Flask) -> None:
    app.after_request(_deliver_after_commit)


def message_bytes(row: OutboxMessage | Row) -> bytes:
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
    headers += [
        f"Date: {email.utils.format_datetime(utcnow())}",
        _header("Message-ID", row.message_id),
        "Auto-Submitted: auto-generated",
        "MIME-Version: 1.0",
    ]
    parts = [_text_part("plain", row.text_body)]
    if row.html_body:
        parts.append(_text_part("html", row.html_body))
    if row.calendar is not None and row.calendar_method:
        calendar = _base64(bytes(row.calendar))
        method = row.calendar_method
        parts.append(
            f'Content-Type: text/calendar; method="{method}"; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{calendar}"
        )
        attachment = (
            "Content-Type: application/ics\r\nContent-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="invite.ics"\r\n\r\n{calendar}'
        )
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
    if name == "Subject":
        return mail_headers.text_header(name, value)
    if name in _ADDRESS_HEADERS:
        header = mail_headers.address_header(name, value)
        if header is not None:
            return header
    if value.isascii() and value.isprintable() and len(name) + 2 + len(value) <= 78:
        return f"{name}: {value}"
    # A non-ASCII address: the email package writes it as the header's kind requires.
    policy = email.policy.SMTP
    return policy.header_factory(name, value).fold(policy=policy).rstrip("\r\n")


_ADDRESS_HEADERS = frozenset({"From", "To", "Reply-To"})


def _text_part(subtype: str, text: str) -> str:
    encoded = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable'
        f"\r\n\r\n{encoded.decode('ascii')}"
    )


def _base64(data: bytes) -> str:
    encoded = binascii.b2a_base64(data, newline=False).decode("ascii")
    return "".join(f"{encoded[start : start + 76]}\r\n" for start in range(0, len(encoded), 76))


def _multipart(subtype: str, parts: list[str]) -> str:
    # "=_" never occurs in quoted-printable or base64 text, so the boundary cannot appear inside a part.
    boundary = f"=_kxn{uuid.uuid4().hex}"
    inner = "".join(f"--{boundary}\r\n{part.rstrip(chr(13) + chr(10))}\r\n" for part in parts)
    return f'Content-Type: multipart/{subtype};\r\n boundary="{boundary}"\r\n\r\n{inner}--{boundary}--\r\n'


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


def _disconnect(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


@functools.lru_cache(maxsize=1024)  # every message of an invitation round has the same sender
def _envelope(address: str) -> str:
    """The address of `Name <address>` for MAIL FROM or RCPT TO; a non-ASCII one as Flask-Mail sends it (IDNA
    domain)."""
    _, bracket, tail = address.rpartition("<")
    if bracket and tail.endswith(">") and not any(c in tail for c in '"<\\ ()'):
        bare = tail[:-1]
    else:
        bare = email.utils.parseaddr(address)[1]
    return bare if bare.isascii() else flask_mail.sanitize_address(("", bare))


def _start(smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> None:
    """MAIL, RCPT, DATA and the message, the commands smtplib's sendmail() sends, except that the server's
    verdict on the message is left for _finish() to read. Raises as sendmail() does for a refusal before that.
    The addresses come from _envelope(), worked out before, while the server was busy."""
    smtp.ehlo_or_helo_if_needed()
    code, reply = smtp.docmd("mail", f"from:<{sender}>")
    if code != 250:
        _after_refusal(smtp, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = smtp.docmd("rcpt", f"to:<{recipient}>")
    if code not in (250, 251):
        _after_refusal(smtp, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = smtp.docmd("data")
    if code != 354:
        _after_refusal(smtp, code)
        raise smtplib.SMTPDataError(code, reply)
    smtp.send(_dot_stuffed(data))


def _finish(smtp: smtplib.SMTP) -> None:
    """The server's verdict on the message _start() sent; raises SMTPDataError for a refusal."""
    code, reply = smtp.getreply()
    if code != 250:
        _after_refusal(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


def _after_refusal(smtp: smtplib.SMTP, code: int) -> None:
    """421: the server is closing the connection. Otherwise RSET, so the next message starts clean."""
    if code == 421:
        smtp.close()
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA carries it (RFC 5321 4.5.2): leading dots doubled, a line with one dot at the end."""
    if data.startswith(b".") or b"\n." in data:
        data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


_LEADING_DOT = re.compile(rb"(?m)^\.")


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


# What message_bytes() reads of a row: claimed as plain rows, no ORM objects to build for a batch.
_CONTENT = (
    OutboxMessage.id,
    OutboxMessage.subject,
    OutboxMessage.sender,
    OutboxMessage.recipient,
    OutboxMessage.reply_to,
    OutboxMessage.message_id,
    OutboxMessage.text_body,
    OutboxMessage.html_body,
    OutboxMessage.calendar,
    OutboxMessage.calendar_method,
)


def _claim(
    worker_id: str, limit: int, due_by: dt.datetime, only_ids: list[int] | None = None
) -> tuple[list[Row], dt.datetime]:
    """Lease up to `limit` messages due by `due_by` to this worker; committed at once. Returns what
    message_bytes() needs of them, oldest first, and when the lease ends."""
    now = utcnow()
    query = select(OutboxMessage.id).where(*_due(now, due_by)).order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
    if only_ids is not None:
        query = query.where(OutboxMessage.id.in_(only_ids))
    query = query.limit(limit)
    if is_postgresql():
        query = query.with_for_update(skip_locked=True)
    else:
        begin_write()
    ids = list(db.session.scalars(query))
    rows: Sequence[Row] = []
    if ids:
        rows = db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(locked_until=now + _lease(), locked_by=worker_id)
            .returning(*_CONTENT)
            .execution_options(synchronize_session=False)
        ).all()
    db.session.commit()
    order = {message_id: n for n, message_id in enumerate(ids)}
    return sorted(rows, key=lambda row: order[row.id]), now + _lease()


def _mine(message_id: int, worker_id: str):
    return (
        OutboxMessage.id == message_id,
        OutboxMessage.locked_by == worker_id,
        OutboxMessage.status == OutboxStatus.PENDING,
    )


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
    row = db.session.scalar(
        select(OutboxMessage)
        .where(*_mine(message_id, worker_id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
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
    waiting = changed_rows(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(ids),
            OutboxMessage.locked_by == worker_id,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .values(
            locked_until=None,
            locked_by=None,
            last_error=reason,
            next_attempt_at=utcnow() + dt.timedelta(seconds=current_app.config["OUTBOX_RETRY_BASE_SECONDS"]),
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    report.retrying += waiting
    report.errors.append(reason)
    log.warning("outbox: %s; %s messages wait", reason, waiting)


def _release(ids: list[int], worker_id: str) -> None:
    """Give claimed messages back untried, for the next pass or another worker."""
    if not ids:
        return
    db.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(ids),
            OutboxMessage.locked_by == worker_id,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .values(locked_until=None, locked_by=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


class _SentLog:
    """Records each message the server accepts as sent, at once and before anything more is said to the server. A
    worker killed at any moment leaves pending at most the message whose verdict it had not yet read, to be sent
    again once its lease ends: delivery is at least once, never lost.

    One UPDATE per message, in autocommit on a database connection of its own, straight through the driver: a pass
    records every message it sends, and SQLAlchemy's statement handling would cost several times the UPDATE itself.
    The values are converted by the columns' own types, so they are stored exactly as the ORM stores them."""

    def __init__(self) -> None:
        self.connection: PoolProxiedConnection | None = None  # the pool's DBAPI connection, while a pass records
        self.sql = ""
        self.sent_value = self.pending_value = None
        self.stored_time: Callable = lambda value: value
        self.driver_error: type[Exception] = Exception
        self.postgresql = False

    def record(self, message_id: int) -> None:
        if self.connection is None:
            self._open()
        self._run(
            self.sql,
            {
                "id": message_id,
                "now": self.stored_time(utcnow()),
                "sent": self.sent_value,
                "pending": self.pending_value,
            },
        )

    def _open(self) -> None:
        dialect = db.engine.dialect
        self.driver_error = dialect.loaded_dbapi.Error
        self.postgresql = dialect.name == "postgresql"
        columns = OutboxMessage.__table__.c
        status = columns.status.type.bind_processor(dialect) or (lambda value: value)
        self.sent_value, self.pending_value = status(OutboxStatus.SENT), status(OutboxStatus.PENDING)
        self.stored_time = columns.sent_at.type.bind_processor(dialect) or (lambda value: value)
        mark = "%({})s".format if dialect.paramstyle == "pyformat" else ":{}".format
        # Not limited to our lease: the message did go, so no other worker should send it again.
        self.sql = (
            f"UPDATE {OutboxMessage.__tablename__} SET status = {mark('sent')}, sent_at = {mark('now')}, "
            f"locked_until = NULL, locked_by = NULL WHERE id = {mark('id')} AND status = {mark('pending')}"
        )
        self.connection = connection = db.engine.raw_connection()
        if self.postgresql:
            connection.rollback()
            connection.driver_connection.autocommit = True  # type: ignore[union-attr]
            # Commits that do not wait for the disk: a killed worker loses nothing by it, and a database crash that
            # lost a record would only send that message again.
            self._run("SET synchronous_commit TO off")
        else:
            # Autocommit already (database.py begins transactions itself); the same bargain as on PostgreSQL:
            # a killed worker loses no record, and only a machine crash could lose one, which sends it again.
            self._run("PRAGMA synchronous=OFF")

    def _run(self, sql: str, parameters: dict | None = None) -> None:
        """Raises the driver's errors as SQLAlchemy's (a worker outlives a database restart by catching those); the
        connection is then given up, and the next record opens a fresh one."""
        connection = self.connection
        assert connection is not None
        try:
            cursor = connection.cursor()
            try:
                if parameters is None:
                    cursor.execute(sql)
                else:
                    cursor.execute(sql, parameters)
            finally:
                cursor.close()
        except self.driver_error as error:
            self.connection = None
            connection.invalidate()
            raise DBAPIError.instance(sql, parameters, error, self.driver_error) from error

    def close(self) -> None:
        if self.connection is None:
            return
        try:
            if self.postgresql:  # the pool's next user gets durable commits, in transactions
                self._run("RESET synchronous_commit")
                self.connection.driver_connection.autocommit = False  # type: ignore[union-attr]
            else:
                self._run(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
        except DBAPIError:
            log.warning("outbox: could not reset the connection that recorded sent messages; it is discarded")
        finally:
            if self.connection is not None:
                self.connection.close()
                self.connection = None


def _print_to_console(message: EmailMessage) -> None:
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    attachments = ", ".join(part.get_filename() or part.get_content_type() for part in message.iter_attachments())
    out = sys.stdout
    printed = (
        f"\n----- email (no SMTP server configured: KXN_MAIL_SERVER) -----\n"
        f"To: {message['To']}\nSubject: {message['Subject']}\n"
        + (f"Attachments: {attachments}\n" if attachments else "")
        + f"\n{text}\n----- end of email -----\n"
    )
    encoding = getattr(out, "encoding", None) or "utf-8"
    out.write(printed.encode(encoding, "replace").decode(encoding))
    out.flush()


class _Outgoing(NamedTuple):
    """A claimed message ready to go: its outbox id, envelope addresses and bytes."""

    id: int
    sender: str
    recipient: str
    data: bytes


class _Delivery:
    """One deliver_due() call: its report, and one SMTP connection that every batch of the call reuses.

    The server's verdict on a message is read only once the next message is built, so the server checks one
    message while this process prepares the next; a message counts as sent only once the server accepted it, and is
    recorded as sent at once, before the next message is offered.
    """

    def __init__(
        self,
        worker_id: str,
        report: DeliveryReport,
        on_sent: Callable[[], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        config = current_app.config
        self.worker_id = worker_id
        self.report = report
        self.on_sent = on_sent
        self.should_stop = should_stop
        self.console = not config["MAIL_SERVER"]
        self.smtp_wanted = not (self.console or config.get("MAIL_SUPPRESS_SEND"))
        self.pause = 1.0 / config["OUTBOX_SEND_RATE"] if config["OUTBOX_SEND_RATE"] > 0 else 0.0
        self.next_send = 0.0  # time.monotonic() before which the send rate allows no message
        self.smtp: smtplib.SMTP | None = None
        self.awaiting: int | None = None  # the message whose verdict is still to be read
        self.sent_log = _SentLog()

    def batch(self, rows: list[Row], lease_until: dt.datetime) -> None:
        if not self._connected(rows):
            return
        # A message is sent only while at least half the lease is left, so no other worker can have taken it
        # meanwhile, however slow the server; the rest go back for a fresh claim.
        send_until = lease_until - _lease() / 2
        for index, row in enumerate(rows):
            if (self.should_stop is not None and self.should_stop()) or utcnow() >= send_until:
                self._settle()
                _release([r.id for r in rows[index:]], self.worker_id)
                return
            message = self._prepare(row)
            if message is None:
                continue
            if not self._settle():  # connection gone (e.g. 421): the rest wait untried
                _release([r.id for r in rows[index:]], self.worker_id)
                return
            self._keep_to_rate()
            if not self._offer(message):
                _release([r.id for r in rows[index + 1 :]], self.worker_id)
                return
        self._settle()

    def close(self, *, orderly: bool) -> None:
        """QUIT after a pass that ran its course. Otherwise the session may be halfway through a message, so
        the connection is just closed: a message without a verdict stays claimed, to go again after the lease."""
        self.sent_log.close()
        if self.smtp is None:
            return
        if orderly:
            _disconnect(self.smtp)
        else:
            self.smtp.close()
        self.smtp = None

    def _connected(self, rows: list[Row]) -> bool:
        """An open connection when mail goes to a server: the last batch's if it still answers, else a new one.
        An unreachable server postpones the batch."""
        if not self.smtp_wanted:
            return True
        if self.smtp is not None and self.smtp.sock is not None:
            try:
                if self.smtp.noop()[0] == 250:
                    return True
            except smtplib.SMTPServerDisconnected:
                pass
            self.smtp.close()
        try:
            self.smtp = _connect()
        except Exception as error:
            self.smtp = None
            _postpone([row.id for row in rows], self.worker_id, error, self.report)
            return False
        return True

    def _keep_to_rate(self) -> None:
        """Wait as OUTBOX_SEND_RATE requires, counted across batches (a new batch is no reason to send sooner)."""
        if not self.pause:
            return
        now = time.monotonic()
        if now < self.next_send:
            time.sleep(self.next_send - now)
            now = self.next_send
        self.next_send = now + self.pause

    def _prepare(self, row: Row) -> _Outgoing | None:
        try:
            return _Outgoing(row.id, _envelope(row.sender), _envelope(row.recipient), message_bytes(row))
        except Exception as error:  # stored data that cannot make a message: retrying will not help
            self._failed(row.id, error)
            return None

    def _offer(self, message: _Outgoing) -> bool:
        """Hand one message over; False when the connection is gone."""
        try:
            if self.smtp is not None:
                _start(self.smtp, message.sender, message.recipient, message.data)
                self.awaiting = message.id
                return True
            if self.console:
                _print_to_console(email.message_from_bytes(message.data, policy=email.policy.SMTP))
        except Exception as error:
            if self.smtp is not None and not isinstance(error, smtplib.SMTPException):
                self.smtp.close()  # stopped halfway through the commands: the session is in no known state
            return self._failed(message.id, error)
        self._accepted(message.id)
        return True

    def _settle(self) -> bool:
        """Read the verdict on the message offered last; False when the connection is gone."""
        message_id, self.awaiting = self.awaiting, None
        if message_id is None:
            return True
        try:
            assert self.smtp is not None, "a message awaits a verdict only on an open connection"
            _finish(self.smtp)
        except Exception as error:
            return self._failed(message_id, error)
        self._accepted(message_id)
        return True

    def _accepted(self, message_id: int) -> None:
        self.sent_log.record(message_id)
        self.report.sent += 1
        if self.on_sent is not None:
            self.on_sent()

    def _failed(self, message_id: int, error: BaseException) -> bool:
        _record_failure(message_id, self.worker_id, error, self.report)
        return self.smtp is None or self.smtp.sock is not None


def deliver_due(
    worker_id: str | None = None,
    *,
    limit: int | None = None,
    only_ids: list[int] | None = None,
    on_sent: Callable[[], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DeliveryReport:
    """Deliver every message due now (or only those in `only_ids`), batch by batch over one SMTP connection.

    Each message is tried at most once per call: one that fails is due again only after this call began.
    Stops early when a whole batch failed (the server is down or refusing: the rest waits for the next
    pass) or when `should_stop()` says so (claimed messages are released untried). The session must hold
    no uncommitted work: delivery commits as it goes.
    """
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    batch_size = current_app.config["OUTBOX_BATCH_SIZE"]
    started = utcnow()
    report = DeliveryReport()
    delivery = _Delivery(worker_id, report, on_sent, should_stop)
    handled = 0
    try:
        while limit is None or handled < limit:
            if should_stop is not None and should_stop():
                break
            size = batch_size if limit is None else min(batch_size, limit - handled)
            rows, lease_until = _claim(worker_id, size, started, only_ids)
            if not rows:
                break
            handled += len(rows)
            sent_before, failed_before = report.sent, report.retrying + report.failed
            delivery.batch(rows, lease_until)
            if report.sent == sent_before and report.retrying + report.failed > failed_before:
                break
    except BaseException:
        delivery.close(orderly=False)
        raise
    delivery.close(orderly=True)
    return report


def count_due() -> int:
    return db.session.scalar(select(db.func.count(OutboxMessage.id)).where(*_due(utcnow()))) or 0
