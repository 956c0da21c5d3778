"""Building email from outbox rows and delivering them: at least once, never lost, retried with back-off."""

from __future__ import annotations

import datetime as dt
import logging
import os
import smtplib
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import flask_mail
from flask import Flask, current_app, g
from sqlalchemy import or_, select, update

from .database import begin_write, is_postgresql
from .extensions import db
from .models import OutboxMessage, OutboxStatus, utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = dt.timedelta(hours=6)


def init_app(app: Flask) -> None:
    app.after_request(_deliver_after_commit)


def build_message(row: OutboxMessage) -> flask_mail.Message:
    """The one place that decides the MIME layout.

    multipart/mixed
      multipart/alternative: text/plain, text/html, text/calendar; method=X (last, preferred by calendars)
      application/ics "invite.ics" (the same calendar, for clients that only look at attachments)
    """
    message = flask_mail.Message(
        subject=row.subject,
        recipients=[row.recipient],
        body=row.text_body,
        html=row.html_body or None,
        sender=row.sender,
        reply_to=row.reply_to or None,
        date=row.created_at.timestamp(),
        extra_headers={"Auto-Submitted": "auto-generated"},
    )
    message.msgId = row.message_id
    if row.calendar is not None and row.calendar_method:
        # Set after the constructor: its html= argument rebuilds alts.
        message.alts[f"calendar; method={row.calendar_method}"] = row.calendar.decode("utf-8")
        message.attach("invite.ics", "application/ics", bytes(row.calendar))
    return message


def new_message_id() -> str:
    base = current_app.config["BASE_URL"]
    domain = base.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "kxn.invalid"
    return f"<{uuid.uuid4().hex}@{domain}>"


def _deliver_after_commit(response):
    if current_app.config["OUTBOX_DELIVER_AFTER_COMMIT"] and g.pop("outbox_queued", False):
        try:
            deliver_due(worker_id=f"web-{os.getpid()}")
        except Exception:  # the change is committed; the outbox worker will deliver later
            log.exception("delivery after commit failed; the message stays queued")
            db.session.rollback()
    return response


class _Connection(flask_mail.Connection):
    """Flask-Mail's connection with a timeout, so a hung server cannot hang a worker."""

    def configure_host(self):
        state = self.mail
        timeout = current_app.config["MAIL_TIMEOUT"]
        if state.use_ssl:
            host = smtplib.SMTP_SSL(state.server, state.port, timeout=timeout)
        else:
            host = smtplib.SMTP(state.server, state.port, timeout=timeout)
        if state.use_tls:
            host.starttls()
        if state.username and state.password:
            host.login(state.username, state.password)
        return host

    def __exit__(self, exc_type, exc_value, tb):
        if self.host is not None:
            try:
                self.host.quit()
            except (smtplib.SMTPException, OSError):
                self.host.close()


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: DeliveryReport) -> None:
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed
        self.errors.extend(other.errors)


def _claim(worker_id: str, limit: int) -> list[int]:
    """Take up to `limit` due messages for this worker under a lease; committed at once."""
    now = utcnow()
    query = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    if is_postgresql():
        query = query.with_for_update(skip_locked=True)
    else:
        begin_write()
    ids = list(db.session.scalars(query))
    if ids:
        lease = dt.timedelta(seconds=current_app.config["OUTBOX_LEASE_SECONDS"])
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(locked_until=now + lease, locked_by=worker_id)
        )
    db.session.commit()
    return ids


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    return isinstance(error, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError, socket.timeout))


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) else str(error.smtp_error)
        return f"SMTP {error.smtp_code}: {text}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{addr}: SMTP {code} {msg!r}" for addr, (code, msg) in error.recipients.items())
    return f"{type(error).__name__}: {error}"


def _record_failure(message_id: int, worker_id: str, error: BaseException, report: DeliveryReport) -> None:
    row = db.session.get(OutboxMessage, message_id, with_for_update=is_postgresql())
    if row is None or row.status != OutboxStatus.PENDING or row.locked_by != worker_id:
        db.session.rollback()
        return
    config = current_app.config
    row.attempts += 1
    row.last_error = _describe(error)[:2000]
    row.locked_until = None
    row.locked_by = None
    if not _is_transient(error) or row.attempts >= config["OUTBOX_MAX_ATTEMPTS"]:
        row.status = OutboxStatus.FAILED
        report.failed += 1
    else:
        delay = dt.timedelta(seconds=config["OUTBOX_RETRY_BASE_SECONDS"] * 2 ** (row.attempts - 1))
        row.next_attempt_at = utcnow() + min(delay, MAX_BACKOFF)
        report.retrying += 1
    report.errors.append(row.last_error)
    db.session.commit()


def _mark_sent(message_id: int, worker_id: str) -> None:
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.locked_by == worker_id)
        .values(status=OutboxStatus.SENT, sent_at=utcnow(), locked_until=None, locked_by=None, last_error="")
    )
    db.session.commit()


def _print_to_console(message: flask_mail.Message) -> None:
    out = sys.stdout
    out.write(f"\n----- email (no SMTP server configured: KXN_MAIL_SERVER) -----\n"
              f"To: {', '.join(message.recipients)}\nSubject: {message.subject}\n\n{message.body}\n"
              f"----- end of email -----\n")
    out.flush()


def _send_batch(ids: list[int], worker_id: str, report: DeliveryReport, on_sent: Callable[[], None] | None) -> None:
    config = current_app.config
    state = current_app.extensions["mail"]
    console = not config["MAIL_SERVER"]
    pause = 1.0 / config["OUTBOX_SEND_RATE"] if config["OUTBOX_SEND_RATE"] > 0 else 0.0
    remaining = list(ids)
    try:
        connection = None if console else _Connection(state).__enter__()
    except Exception as error:  # server down: every claimed message waits for its next attempt
        for message_id in remaining:
            _record_failure(message_id, worker_id, error, report)
        return
    try:
        while remaining:
            message_id = remaining[0]
            row = db.session.get(OutboxMessage, message_id)
            db.session.rollback()
            if row is None or row.status != OutboxStatus.PENDING or row.locked_by != worker_id:
                remaining.pop(0)
                continue
            message = build_message(row)
            try:
                if connection is None:
                    _print_to_console(message)
                else:
                    connection.send(message)
            except smtplib.SMTPServerDisconnected as error:
                for rest in remaining:
                    _record_failure(rest, worker_id, error, report)
                return
            except Exception as error:
                remaining.pop(0)
                _record_failure(message_id, worker_id, error, report)
                continue
            remaining.pop(0)
            _mark_sent(message_id, worker_id)
            report.sent += 1
            if on_sent:
                on_sent()
            if pause and remaining:
                time.sleep(pause)
    finally:
        if connection is not None:
            connection.__exit__(None, None, None)


def deliver_due(worker_id: str | None = None, *, limit: int | None = None,
                on_sent: Callable[[], None] | None = None) -> DeliveryReport:
    """Deliver every message due now, batch by batch, each batch over one SMTP connection."""
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    batch_size = current_app.config["OUTBOX_BATCH_SIZE"]
    report = DeliveryReport()
    handled = 0
    while limit is None or handled < limit:
        size = batch_size if limit is None else min(batch_size, limit - handled)
        ids = _claim(worker_id, size)
        if not ids:
            break
        handled += len(ids)
        before = report.sent
        _send_batch(ids, worker_id, report, on_sent)
        if report.sent == before and report.retrying + report.failed:
            break  # nothing got through this round: the server is down, leave the rest for the next pass
    return report


def count_due() -> int:
    now = utcnow()
    return db.session.scalar(
        select(db.func.count(OutboxMessage.id)).where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
        )
    ) or 0
