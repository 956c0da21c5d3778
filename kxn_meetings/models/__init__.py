"""All models, importable from one place (and seen by Alembic)."""

from .base import TimestampMixin, UTCDateTime, utcnow
from .meetings import AgendaItem, Meeting, MeetingSeries, MeetingStatus, Visibility, WorkshopQuestion, WorkshopRoom
from .members import LoginToken, Member, MemberSession, RateLimitHit
from .notes import ActionItem, ActionStatus, MeetingNotes, NoteRevision, NotesStatus
from .outbox import OutboxMessage, OutboxStatus
from .rsvps import Answer, Invitation, Rsvp, RsvpSource

__all__ = [
    "ActionItem", "ActionStatus", "AgendaItem", "Answer", "Invitation", "LoginToken", "Meeting", "MeetingNotes",
    "MeetingSeries", "MeetingStatus", "Member", "MemberSession", "NoteRevision", "NotesStatus", "OutboxMessage",
    "OutboxStatus", "RateLimitHit", "Rsvp", "RsvpSource", "TimestampMixin", "UTCDateTime", "Visibility",
    "WorkshopQuestion", "WorkshopRoom", "utcnow",
]
