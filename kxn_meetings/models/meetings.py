"""Meeting series, who follows them, meetings, their agenda and workshop rooms."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import ForeignKey, Index, String, Text, Time, UniqueConstraint, event, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from ..text import first_control
from .base import LabelledEnum, TimestampMixin, UTCDateTime, column_is, member_test, member_tests, parse_id, stored_enum
from .members import Member


class MeetingStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"

    # Scheduled: published and not cancelled.
    is_draft, is_scheduled, is_cancelled = member_tests("DRAFT", "SCHEDULED", "CANCELLED")


class Visibility(LabelledEnum):
    PUBLIC = "public"
    MEMBERS = "members", "Members only"

    is_public, is_members_only = member_tests("PUBLIC", "MEMBERS")


class MeetingSeries(TimestampMixin, Model):
    __tablename__ = "meeting_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")

    meetings: Mapped[list[Meeting]] = relationship(back_populates="series", order_by="Meeting.starts_at")


class StandingAnswer(LabelledEnum):
    """What a follower of a series asked for: an invitation to each meeting, or Going unless she says otherwise."""

    INVITE = "invite", "Invite me to each meeting"
    GOING = "going", "Count me in for each meeting unless I say otherwise"

    is_going = member_test("GOING")


class SeriesFollow(TimestampMixin, Model):
    """A member following a series. Followers are served in the order they followed (id)."""

    __tablename__ = "series_follows"
    __table_args__ = (UniqueConstraint("series_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("meeting_series.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    standing: Mapped[StandingAnswer] = mapped_column(stored_enum(StandingAnswer, "standing_answer"))
    # Every meeting of the series in the member's personal calendar feed, not only those she is going to.
    in_feed: Mapped[bool] = mapped_column(default=False, server_default=false())

    series: Mapped[MeetingSeries] = relationship()
    member: Mapped[Member] = relationship()


def new_uid() -> str:
    return f"{uuid.uuid4()}@kxn-meetings"


class Meeting(TimestampMixin, Model):
    __tablename__ = "meetings"
    # Changes to these are what a member's calendar must hear about.
    NOTIFIABLE_FIELDS: ClassVar[tuple[str, ...]] = ("title", "starts_at", "ends_at", "timezone", "join_url", "location")
    # The previous and next meeting of a series, found without sorting the series.
    __table_args__ = (Index("ix_meetings_series_id_starts_at", "series_id", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_series.id", ondelete="SET NULL"))
    slug: Mapped[str] = mapped_column(String(160), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    theme: Mapped[str] = mapped_column(String(500), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    # The description as the meeting page shows it, rendered whenever the description is set (_render_description).
    description_html: Mapped[str] = mapped_column(Text, default="", server_default="")
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    join_url: Mapped[str] = mapped_column(String(1000), default="")
    location: Mapped[str] = mapped_column(String(500), default="")
    capacity: Mapped[int | None]
    rsvp_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[MeetingStatus] = mapped_column(
        stored_enum(MeetingStatus, "meeting_status"), default=MeetingStatus.DRAFT
    )
    visibility: Mapped[Visibility] = mapped_column(
        stored_enum(Visibility, "meeting_visibility"), default=Visibility.PUBLIC
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    uid: Mapped[str] = mapped_column(String(200), unique=True, default=new_uid)
    sequence: Mapped[int] = mapped_column(default=0)
    # Moves with every change to the meeting's answers (the database's triggers, migration 0014), so counts read once
    # can be kept per version.
    answers_version: Mapped[int] = mapped_column(default=0, server_default="0")
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    # What invited members were last told (JSON of NOTIFIABLE_FIELDS), and
    # when a batch of edits becomes due to be announced as one update.
    announced: Mapped[str] = mapped_column(Text, default="")
    update_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # When those who came were asked for feedback (with the notes, or a day after the meeting): asked once.
    feedback_asked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    series: Mapped[MeetingSeries | None] = relationship(back_populates="meetings")
    contact: Mapped[Member | None] = relationship()
    agenda_items: Mapped[list[AgendaItem]] = relationship(
        back_populates="meeting", order_by="AgendaItem.position", cascade="all, delete-orphan", passive_deletes=True
    )
    workshop_rooms: Mapped[list[WorkshopRoom]] = relationship(
        back_populates="meeting", order_by="WorkshopRoom.position", cascade="all, delete-orphan", passive_deletes=True
    )

    @staticmethod
    def parse_ref(ref: str | int) -> int | str | None:
        """A meeting reference (what URLs and every CLI command accept) as an id or a slug, or None for one no
        meeting can have."""
        ref = str(ref).strip()
        # PostgreSQL refuses NUL in text, no slug holds a control character, and str.isdigit() accepts digits
        # int() cannot read ("²").
        if not ref or first_control(ref, invisible=True) or len(ref) > 160:
            return None
        if ref.isascii() and ref.isdigit():
            return parse_id(ref)
        return ref

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def local_start(self) -> dt.datetime:
        return self.starts_at.astimezone(self.zone)

    @property
    def local_end(self) -> dt.datetime:
        return self.ends_at.astimezone(self.zone)

    @property
    def is_online(self) -> bool:
        return bool(self.join_url)

    @property
    def is_in_person(self) -> bool:
        return bool(self.location)

    @property
    def format_label(self) -> str:
        if self.is_online and self.is_in_person:
            return "Online and in person"
        return "In person" if self.is_in_person else "Online"

    is_draft = column_is("status", MeetingStatus.DRAFT)
    is_scheduled = column_is("status", MeetingStatus.SCHEDULED)
    is_cancelled = column_is("status", MeetingStatus.CANCELLED)
    is_public = column_is("visibility", Visibility.PUBLIC)

    def __repr__(self) -> str:
        return f"<Meeting {self.id} {self.slug}>"


@event.listens_for(Meeting.description, "set")
def _render_description(meeting: Meeting, value: str | None, old: object, _initiator: object) -> None:
    """Rendered when it is written, so a page that shows it does not load the Markdown renderer; an edit that leaves
    it as it was does not render it again."""
    if value == old:
        return
    from ..rendering import render_markdown

    meeting.description_html = render_markdown(value or "")


class _PartOfMeeting:
    """A row of a meeting's agenda or of its workshop rooms, in the order the organiser gave."""

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)


class AgendaItem(_PartOfMeeting, Model):
    __tablename__ = "agenda_items"

    start_time: Mapped[dt.time | None] = mapped_column(Time)
    title: Mapped[str] = mapped_column(String(300))
    speaker_name: Mapped[str] = mapped_column(String(200), default="")
    speaker_role: Mapped[str] = mapped_column(String(200), default="")
    speaker_organisation: Mapped[str] = mapped_column(String(200), default="")

    meeting: Mapped[Meeting] = relationship(back_populates="agenda_items")


class WorkshopRoom(_PartOfMeeting, Model):
    __tablename__ = "workshop_rooms"

    name: Mapped[str] = mapped_column(String(200))
    questions: Mapped[list[WorkshopQuestion]] = relationship(
        back_populates="room",
        order_by="WorkshopQuestion.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    meeting: Mapped[Meeting] = relationship(back_populates="workshop_rooms")


class WorkshopQuestion(Model):
    __tablename__ = "workshop_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("workshop_rooms.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    text: Mapped[str] = mapped_column(Text)

    room: Mapped[WorkshopRoom] = relationship(back_populates="questions")
