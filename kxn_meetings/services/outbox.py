"""Queueing email: rendered now, written as an outbox row in the caller's transaction."""

from __future__ import annotations

from flask import current_app, g, has_request_context, render_template
from sqlalchemy import select

from ..extensions import db
from ..mail import new_message_id
from ..models import Member, OutboxMessage, OutboxStatus, utcnow
from ..urls import external_url


class HeaderInjection(ValueError):
    pass


def _single_line(value: str, what: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderInjection(f"{what} must be a single line")
    return value


def format_address(name: str, email: str) -> str:
    from email.utils import formataddr

    return formataddr((_single_line(name, "name"), _single_line(email, "email address")))


def queue_email(
    *,
    kind: str,
    to: Member | str,
    subject: str,
    template: str,
    context: dict | None = None,
    dedup_key: str | None = None,
    calendar: bytes | None = None,
    calendar_method: str | None = None,
    meeting_id: int | None = None,
    sender: str | None = None,
    reply_to: str | None = None,
) -> OutboxMessage | None:
    """Render emails/<template>.txt and .html and add the message to the outbox.

    Returns None when a message with the same dedup_key was queued before (the notice is not sent twice).
    """
    if dedup_key is not None:
        existing = db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == dedup_key))
        if existing is not None:
            return None
    member = to if isinstance(to, Member) else None
    recipient = format_address(member.name, member.email) if member else _single_line(to, "email address")
    context = dict(context or {}, member=member, external_url=external_url,
                   network_name=current_app.config["NETWORK_NAME"])
    text_body = render_template(f"emails/{template}.txt", **context)
    html_body = render_template(f"emails/{template}.html", **context)
    row = OutboxMessage(
        kind=kind,
        dedup_key=dedup_key,
        message_id=new_message_id(),
        sender=_single_line(sender or current_app.config["MAIL_DEFAULT_SENDER"], "sender"),
        recipient=recipient,
        reply_to=_single_line(reply_to or "", "reply-to"),
        subject=_single_line(subject, "subject"),
        text_body=text_body,
        html_body=html_body,
        calendar=calendar,
        calendar_method=calendar_method,
        meeting_id=meeting_id,
        member_id=member.id if member else None,
        status=OutboxStatus.PENDING,
        next_attempt_at=utcnow(),
    )
    db.session.add(row)
    db.session.flush()
    if has_request_context():
        g.outbox_queued = True
    return row


def retry(message: OutboxMessage) -> None:
    """Put a set-aside message back in the queue; it keeps its Message-ID."""
    message.status = OutboxStatus.PENDING
    message.attempts = 0
    message.next_attempt_at = utcnow()
    message.locked_until = None
    message.locked_by = None
