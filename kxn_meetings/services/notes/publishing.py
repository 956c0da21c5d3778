"""Publishing the notes, announced by email to those who went or sent apologies: once when first published, and
for an update when the organiser asks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import or_, select

from ... import timefmt
from ...extensions import db
from ...models import (
    Answer,
    Meeting,
    MeetingNotes,
    Member,
    MessageKind,
    NotesStatus,
    Rsvp,
    utcnow,
)
from ...text import without_controls
from ...urls import external_url
from ...wording import plural
from .. import feedback
from ..follows import links_for
from ..locking import lock_meeting
from ..outbox import queue_email
from .common import NotesError
from .editing import prompts_left


def recipients(meeting: Meeting) -> list[Member]:
    """Everyone who went (attended, or answered Going) or sent apologies, once each, active members only."""
    went_or_apologised = or_(Rsvp.attended.is_(True), Rsvp.answer.in_([Answer.GOING, Answer.DECLINED]))
    query = (
        select(Member)
        .join(Rsvp, Rsvp.member_id == Member.id)
        .where(Rsvp.meeting_id == meeting.id, Member.active.is_(True), went_or_apologised)
        .order_by(Member.name, Member.id)
    )
    return list(db.session.scalars(query))


def why_not_ready(notes: MeetingNotes, *, now: dt.datetime | None = None) -> list[str]:
    """What to ask the organiser about before publishing: the outline's prompts still in the saved notes, and a
    meeting that has not started yet. Empty when the notes look ready."""
    reasons: list[str] = []
    revision, meeting = notes.current_revision, notes.meeting
    if notes.is_published or revision is None:
        return reasons
    left = prompts_left(revision.body_markdown) if revision is not None else []
    if left:
        first = left[0].replace("**", "")
        reasons.append(
            f"The notes still contain {plural(len(left), 'prompt')} from the outline, such as “{first}” "
            "Replace each with what was said, or delete it."
        )
    if meeting.starts_at > (now or utcnow()):
        when = timefmt.when(meeting.starts_at, meeting.ends_at, meeting.timezone)
        reasons.append(f"The meeting has not started yet: it is on {when}.")
    return reasons


@dataclass(frozen=True)
class Published:
    """The emails publishing queued: the notes to those who went or sent apologies, the feedback request to those
    who came."""

    emailed: int = 0
    feedback_asked: int = 0


def publish(notes: MeetingNotes, *, email_members: bool, not_ready_confirmed: bool = False) -> Published:
    """Publish the notes; the first time with email_members, queue one email per recipient, and ask those who came
    for feedback. Notes that are not ready (why_not_ready) are published only once the organiser has confirmed."""
    meeting = lock_meeting(notes.meeting_id)
    if notes.current_revision is None:
        raise NotesError("Save the notes before publishing them.")
    if meeting.is_draft:
        raise NotesError("Publish the meeting before its notes.")
    if notes.is_published:
        raise NotesError("These notes are already published.")
    if not not_ready_confirmed and (reasons := why_not_ready(notes)):
        raise NotesError(" ".join(reasons))
    notes.status = NotesStatus.PUBLISHED
    if notes.published_at is None:
        notes.published_at = utcnow()
    db.session.flush()
    if not email_members or notes.notified_at is not None:
        return Published()
    queued = _announce(notes, kind=MessageKind.NOTES_PUBLISHED, key_suffix="")
    if queued:
        notes.notified_at = utcnow()
        db.session.flush()
    # Those who came are asked for feedback with the notes, not a day after the meeting on their own.
    return Published(emailed=queued, feedback_asked=feedback.ask(meeting))


def announce_update(notes: MeetingNotes) -> int:
    """Email the recipients that the published notes have changed: once per revision at most."""
    if not notes.is_published or notes.current_revision is None:
        raise NotesError("Only published notes can be announced.")
    return _announce(notes, kind=MessageKind.NOTES_UPDATED, key_suffix=f":r{notes.current_revision.number}")


def _announce(notes: MeetingNotes, *, kind: MessageKind, key_suffix: str) -> int:
    meeting, revision = notes.meeting, notes.current_revision
    assert revision is not None
    context = {
        "meeting": meeting,
        "revision": revision,
        "notes": notes,
        "notes_url": external_url("notes.show", ref=meeting.slug),
        "members_only": notes.is_members_only,
        "meeting_day": timefmt.day(meeting.local_start),
    }
    title = without_controls(revision.title)
    subject = f"{'Updated notes' if kind == MessageKind.NOTES_UPDATED else 'Notes'}: {title}"
    queued = 0
    members = recipients(meeting)
    series = links_for(meeting, members)
    for member in members:
        links = series.get(member.id)
        row = queue_email(
            kind=kind,
            to=member,
            subject=subject,
            context=dict(context, series=links),
            dedup_key=f"notes:{notes.id}:{member.id}:notes_published{key_suffix}",
            meeting_id=meeting.id,
            list_unsubscribe=links.list_unsubscribe if links else "",
        )
        queued += row is not None
    return queued


def unpublish(notes: MeetingNotes) -> None:
    lock_meeting(notes.meeting_id)
    if not notes.is_published:
        raise NotesError("These notes are not published.")
    notes.status = NotesStatus.DRAFT
    db.session.flush()
