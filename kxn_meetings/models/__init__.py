"""All models, importable from one place (and seen by Alembic)."""

from .base import MAX_ID, LabelledEnum, TimestampMixin, UTCDateTime, parse_choice, parse_id, utcnow
from .feedback import SCORES, MeetingFeedback
from .meetings import (
    AgendaItem,
    Meeting,
    MeetingSeries,
    MeetingStatus,
    SeriesFollow,
    StandingAnswer,
    Visibility,
    WorkshopQuestion,
    WorkshopRoom,
)
from .members import LoginToken, Member, MemberSession, RateLimitHit, Region, Sector
from .messages import Audience, MeetingMessage
from .notes import ActionItem, ActionStatus, MeetingNotes, NoteAttachment, NoteRevision, NotesStatus
from .outbox import MessageKind, OutboxMessage, OutboxStatus
from .replies import CalendarReply, ReplyOutcome
from .rooms import RoomMember, RoomPlan, RoomScribe, ScribeAnswer
from .rsvps import ANSWERS_CHANGED, Answer, Invitation, Rsvp, RsvpSource, update_answer

__all__ = [
    "ANSWERS_CHANGED",
    "MAX_ID",
    "SCORES",
    "ActionItem",
    "ActionStatus",
    "AgendaItem",
    "Answer",
    "Audience",
    "CalendarReply",
    "Invitation",
    "LabelledEnum",
    "LoginToken",
    "Meeting",
    "MeetingFeedback",
    "MeetingMessage",
    "MeetingNotes",
    "MeetingSeries",
    "MeetingStatus",
    "Member",
    "MemberSession",
    "MessageKind",
    "NoteAttachment",
    "NoteRevision",
    "NotesStatus",
    "OutboxMessage",
    "OutboxStatus",
    "RateLimitHit",
    "Region",
    "ReplyOutcome",
    "RoomMember",
    "RoomPlan",
    "RoomScribe",
    "Rsvp",
    "RsvpSource",
    "ScribeAnswer",
    "Sector",
    "SeriesFollow",
    "StandingAnswer",
    "TimestampMixin",
    "UTCDateTime",
    "Visibility",
    "WorkshopQuestion",
    "WorkshopRoom",
    "parse_choice",
    "parse_id",
    "update_answer",
    "utcnow",
]
