"""The record of a meeting: notes with every revision kept, and the actions agreed."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .base import LabelledEnum, TimestampMixin, UTCDateTime, column_is, member_test, member_tests, stored_enum, utcnow
from .meetings import Meeting, Visibility
from .members import Member


class NotesStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"

    is_draft, is_published = member_tests("DRAFT", "PUBLISHED")


class MeetingNotes(TimestampMixin, Model):
    __tablename__ = "meeting_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), unique=True)
    status: Mapped[NotesStatus] = mapped_column(stored_enum(NotesStatus, "notes_status"), default=NotesStatus.DRAFT)
    visibility: Mapped[Visibility] = mapped_column(
        stored_enum(Visibility, "notes_visibility"), default=Visibility.PUBLIC
    )
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    current_revision_id: Mapped[int | None] = mapped_column(
        ForeignKey("note_revisions.id", ondelete="SET NULL", use_alter=True)
    )

    meeting: Mapped[Meeting] = relationship()
    current_revision: Mapped[NoteRevision | None] = relationship(foreign_keys=[current_revision_id], post_update=True)
    revisions: Mapped[list[NoteRevision]] = relationship(
        back_populates="notes",
        foreign_keys="NoteRevision.notes_id",
        order_by="NoteRevision.number",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    is_published = column_is("status", NotesStatus.PUBLISHED)
    is_members_only = column_is("visibility", Visibility.MEMBERS)


class NoteRevision(Model):
    """Markdown source with the sanitised HTML rendered from it when saved."""

    __tablename__ = "note_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    notes_id: Mapped[int] = mapped_column(ForeignKey("meeting_notes.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    body_markdown: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    notes: Mapped[MeetingNotes] = relationship(back_populates="revisions", foreign_keys=[notes_id])
    author: Mapped[Member | None] = relationship()

    __table_args__ = (UniqueConstraint("notes_id", "number"),)


class ActionStatus(LabelledEnum):
    OPEN = "open"
    DONE = "done"

    is_done = member_test("DONE")


class ActionItem(TimestampMixin, Model):
    __tablename__ = "action_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200), default="")
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[ActionStatus] = mapped_column(stored_enum(ActionStatus, "action_status"), default=ActionStatus.OPEN)

    meeting: Mapped[Meeting] = relationship()


class NoteAttachment(Model):
    """A slide deck or document kept with the notes; the file lives under the upload folder as stored_name."""

    __tablename__ = "note_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    notes_id: Mapped[int] = mapped_column(ForeignKey("meeting_notes.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(100), unique=True)
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int]
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    notes: Mapped[MeetingNotes] = relationship()
