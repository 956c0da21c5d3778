"""Delivering the outbox: at least once, never lost, retried with back-off.

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

import datetime as dt
import email.policy
import logging
import os
import smtplib
import socket
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import NamedTuple

from flask import Flask, Response, current_app, g
from sqlalchemy import Row, or_, select, update

from ..database import begin_write, changed_rows, is_postgresql
from ..extensions import db
from ..models import OutboxMessage, OutboxStatus, utcnow
from .message import message_bytes
from .sent_log import _SentLog
from .smtp import _connect, _disconnect, _envelope, _finish, _start

log = logging.getLogger(__name__)

MAX_BACKOFF = dt.timedelta(hours=6)
QUEUED_IN_REQUEST = "outbox_queued_ids"


PREPARE = "kxn_prepare_delivery"
# Notices written per transaction: on SQLite each batch holds the write lock, so answers wait at most for this many.
PREPARE_BATCH = 10


def init_app(app: Flask, *, prepare: Callable[[list[int] | None, int], int] | None = None) -> None:
    """`prepare(ids, limit)`, when given, writes what must be written before messages can go (the answer notices
    the outbox worker renders), at most `limit` of them, and says how many it took: deliver_due() calls it with its
    `only_ids` (None for all), committing after each batch, until a batch comes up short."""
    app.extensions[PREPARE] = prepare
    app.after_request(_deliver_after_commit)


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


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _due(now: dt.datetime, due_by: dt.datetime | None = None):
    """What makes a message due, written or still to be written (deliver_due() writes those first)."""
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
    OutboxMessage.list_unsubscribe,
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
    query = (
        select(OutboxMessage.id)
        .where(*_due(now, due_by), OutboxMessage.to_render.is_(False))
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
    )
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
    batch_size = current_app.config["OUTBOX_BATCH_SIZE"]
    prepare_due(only_ids)
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
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


def prepare_due(only_ids: list[int] | None = None) -> None:
    """Write what must be written before it can go (init_app's `prepare`), committing batch by batch. Notices that
    no longer hold are dropped here, so a count of what is due taken afterwards is what will be tried."""
    prepare = current_app.extensions.get(PREPARE)
    while prepare is not None:
        taken = prepare(only_ids, PREPARE_BATCH)
        db.session.commit()
        if taken < PREPARE_BATCH:
            break


def count_due() -> int:
    return db.session.scalar(select(db.func.count(OutboxMessage.id)).where(*_due(utcnow()))) or 0
