"""Every email, written in the transaction of the change that causes it and delivered later."""

from __future__ import annotations

import datetime as dt
import enum
from typing import NamedTuple

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .base import LabelledEnum, UTCDateTime, member_test, member_tests, parse_choice, stored_enum, utcnow


class MessageKind(enum.StrEnum):
    """What an email is for. Stored as its value in outbox_messages.kind, a plain string column: a row of a kind
    this version does not know (written by an older or newer one) still shows on the Outbox page."""

    INVITATION = "invitation"
    NUDGE = "nudge"
    UPDATE = "update"
    CANCELLATION = "cancellation"
    CONFIRMATION = "confirmation"
    DECLINE = "decline"
    WAITLIST_PROMOTED = "waitlist_promoted"
    REMINDER = "reminder"
    SIGN_IN = "sign_in"
    NOTES_PUBLISHED = "notes_published"
    NOTES_UPDATED = "notes_updated"
    MESSAGE = "message"
    FEEDBACK = "feedback"
    SCRIBE_LINK = "scribe_link"

    # The body is a key to someone's account or to a room's scribe page: the Outbox page shows who and when, never
    # the body.
    is_private = member_test("SIGN_IN", "SCRIBE_LINK")
    # Counted on the invite page as "invitations so far".
    in_invitation_round = member_test("INVITATION", "NUDGE")
    is_update = member_test("UPDATE")
    is_cancellation = member_test("CANCELLATION")
    removes_from_calendar = member_test("CANCELLATION", "DECLINE")
    # Carries the meeting's description, agenda, answer-by date and places (services.meeting_summary).
    tells_the_meeting = member_test("INVITATION", "NUDGE", "UPDATE", "CONFIRMATION", "WAITLIST_PROMOTED", "REMINDER")

    @property
    def label(self) -> str:
        return _KINDS[self].label

    def lead(self, network_name: str) -> str:
        """The sentence the email opens with, the same in its text and HTML parts."""
        return _KINDS[self].lead.format(network=network_name)

    @property
    def closing(self) -> str:
        """The sentence after the details (the changes, the reason), or ""."""
        return _KINDS[self].closing

    @property
    def template(self) -> str:
        """The email's templates: emails/<template>.txt and .html."""
        return _KINDS[self].template


class _Wording(NamedTuple):
    label: str
    lead: str
    closing: str = ""
    template: str = "meeting_notice"


_KINDS = {
    MessageKind.INVITATION: _Wording("Invitation", "You are invited to the next meeting of the {network}."),
    MessageKind.NUDGE: _Wording("Nudge to reply", "We have not heard from you yet: will you join us?"),
    MessageKind.UPDATE: _Wording("Update", "This meeting has changed:", "Your calendar is updated by this email."),
    MessageKind.CANCELLATION: _Wording(
        "Cancellation", "This meeting has been cancelled.", "It is removed from your calendar by this email."
    ),
    MessageKind.CONFIRMATION: _Wording(
        "Going: confirmation",
        "Thank you: you are going. The meeting, with the joining link, is in your calendar.",
    ),
    MessageKind.DECLINE: _Wording(
        "Can't go: removed from calendar",
        "Thank you for letting us know you can't come. This email takes the meeting out of your calendar; you can "
        "change your mind with the links below.",
    ),
    MessageKind.WAITLIST_PROMOTED: _Wording(
        "Place from the waiting list",
        "Good news: a place has come free and it is yours. The meeting, with the joining link, is in your calendar.",
    ),
    MessageKind.REMINDER: _Wording("Reminder", "A reminder that this meeting is coming up soon."),
    MessageKind.SIGN_IN: _Wording("Sign-in link", "Open this link to sign in to the {network}:", template="sign_in"),
    MessageKind.NOTES_PUBLISHED: _Wording(
        "Notes published", "The notes of this meeting are now published:", template="notes_published"
    ),
    MessageKind.NOTES_UPDATED: _Wording(
        "Notes updated", "The notes of this meeting have been updated:", template="notes_published"
    ),
    MessageKind.MESSAGE: _Wording(
        "Message from the organisers",
        "A message from the organisers of this meeting:",
        "Reply to this email to answer the organisers.",
        template="organiser_message",
    ),
    MessageKind.FEEDBACK: _Wording(
        "Feedback request",
        "Thank you for coming. One question, and two more if you have a minute:",
        template="feedback_request",
    ),
    MessageKind.SCRIBE_LINK: _Wording(
        "Scribe link",
        "You are a scribe at this meeting: please write down what your workshop room says.",
        template="scribe_link",
    ),
}


class OutboxStatus(LabelledEnum):
    PENDING = "pending", "Waiting"
    SENT = "sent"
    FAILED = "failed", "Set aside"

    is_pending, is_sent = member_tests("PENDING", "SENT")
    # Set aside after repeated refusals, until an organiser retries it.
    is_failed = member_test("FAILED")


class OutboxMessage(Model):
    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    sender: Mapped[str] = mapped_column(String(320))
    recipient: Mapped[str] = mapped_column(String(320))
    reply_to: Mapped[str] = mapped_column(String(320), default="")
    # The unfollow link of a series email (List-Unsubscribe, RFC 2369, with One-Click POST, RFC 8058), or "".
    list_unsubscribe: Mapped[str] = mapped_column(String(1000), default="", server_default="")
    subject: Mapped[str] = mapped_column(String(400))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text, default="")
    calendar_method: Mapped[str | None] = mapped_column(String(20))
    calendar: Mapped[bytes | None] = mapped_column(LargeBinary)
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id", ondelete="SET NULL"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), index=True)
    # The messages queued in one transaction (an invitation round, an update, a message to those going) share it.
    send_id: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[OutboxStatus] = mapped_column(
        stored_enum(OutboxStatus, "outbox_status"), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # An answer's notice, queued by the request with its subject and addresses only: the outbox worker writes its
    # body and calendar part just before sending it (services.notices.render_answer_notices).
    to_render: Mapped[bool] = mapped_column(default=False, server_default=false())

    __table_args__ = (Index("ix_outbox_messages_due", "status", "next_attempt_at"),)

    @property
    def message_kind(self) -> MessageKind | None:
        return parse_choice(MessageKind, self.kind)

    @property
    def kind_label(self) -> str:
        kind = self.message_kind
        return kind.label if kind is not None else self.kind

    @property
    def is_private(self) -> bool:
        kind = self.message_kind
        return kind is not None and kind.is_private
