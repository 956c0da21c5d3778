"""Feedback after a meeting: those who came are asked once, by email, how useful it was; each answers (and may
change her answer) through her personal link until FEEDBACK_DAYS after the meeting."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from .. import timefmt
from ..extensions import db
from ..models import (
    SCORES,
    Meeting,
    MeetingFeedback,
    MeetingStatus,
    Member,
    MessageKind,
    OutboxMessage,
    Rsvp,
    utcnow,
)
from ..urls import external_url
from .errors import ServiceError
from .follows import links_for
from .invitations import personal_links
from .locking import lock_meeting
from .outbox import Email, queue_emails

FEEDBACK_DAYS = 30
# Meetings without notes published by then are asked about on their own.
ASK_AFTER = dt.timedelta(days=1)
QUESTION = "How useful was this meeting for your work?"
SCORE_LABELS = {1: "Not useful", 2: "A little useful", 3: "Useful", 4: "Very useful", 5: "Extremely useful"}
TEXT_MAX = 2000


class FeedbackError(ServiceError):
    """A rule about feedback was broken."""


def closes_at(meeting: Meeting) -> dt.datetime:
    return meeting.ends_at + dt.timedelta(days=FEEDBACK_DAYS)


def why_not_open(meeting: Meeting, *, now: dt.datetime | None = None) -> str | None:
    """None while answers are taken (from the meeting's start until FEEDBACK_DAYS after its end), else why not."""
    now = now or utcnow()
    if not meeting.is_scheduled:
        return "This meeting did not take place, so there is nothing to give feedback on."
    if now < meeting.starts_at:
        return "Feedback opens when the meeting starts."
    if now > closes_at(meeting):
        return f"Feedback on this meeting closed on {timefmt.day(closes_at(meeting).astimezone(meeting.zone))}."
    return None


def came(meeting: Meeting, member: Member) -> bool:
    return bool(
        db.session.scalar(
            select(Rsvp.id).where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == member.id, Rsvp.attended.is_(True))
        )
    )


def answer_of(meeting: Meeting, member: Member) -> MeetingFeedback | None:
    return db.session.scalar(
        select(MeetingFeedback).where(MeetingFeedback.meeting_id == meeting.id, MeetingFeedback.member_id == member.id)
    )


def record(
    meeting: Meeting,
    member: Member,
    *,
    score: int,
    do_differently: str = "",
    future_topics: str = "",
    now: dt.datetime | None = None,
) -> MeetingFeedback:
    """The member's one answer about the meeting, written the first time and changed in place after."""
    lock_meeting(meeting.id)
    if reason := why_not_open(meeting, now=now):
        raise FeedbackError(reason)
    if not came(meeting, member):
        raise FeedbackError("Feedback is asked of those recorded as having come to the meeting.")
    if score not in SCORES:
        raise FeedbackError("Choose a score from 1 to 5.", field="score")
    answer = answer_of(meeting, member)
    if answer is None:
        answer = MeetingFeedback(meeting_id=meeting.id, member_id=member.id)
        db.session.add(answer)
    answer.score = score
    answer.do_differently = do_differently.strip()[:TEXT_MAX]
    answer.future_topics = future_topics.strip()[:TEXT_MAX]
    db.session.flush()
    return answer


def answers(meeting: Meeting) -> list[MeetingFeedback]:
    """Every answer about the meeting, for its organisers, the oldest first."""
    return list(
        db.session.scalars(
            select(MeetingFeedback)
            .options(joinedload(MeetingFeedback.member))
            .where(MeetingFeedback.meeting_id == meeting.id)
            .order_by(MeetingFeedback.created_at, MeetingFeedback.id)
        )
    )


def _those_who_came(meeting: Meeting) -> Sequence[Member]:
    return db.session.scalars(
        select(Member)
        .join(Rsvp, Rsvp.member_id == Member.id)
        .where(Rsvp.meeting_id == meeting.id, Rsvp.attended.is_(True), Member.active.is_(True))
        .order_by(Member.id)
    ).all()


def _key(meeting: Meeting, member: Member) -> str:
    return f"feedback:{meeting.id}:{member.id}"


def ask(meeting: Meeting, *, now: dt.datetime | None = None) -> int:
    """Queue the feedback request to each active member recorded as having come and not asked yet: first with the
    notes email or by ask_due, then to those recorded as having come later on (asked_later). Returns how many were
    queued."""
    now = now or utcnow()
    if why_not_open(meeting, now=now):
        return 0
    if meeting.feedback_asked_at is None:
        meeting.feedback_asked_at = now
    came = _those_who_came(meeting)
    asked = set(
        db.session.scalars(
            select(OutboxMessage.dedup_key).where(OutboxMessage.dedup_key.in_([_key(meeting, m) for m in came]))
        )
    )
    members = [m for m in came if _key(meeting, m) not in asked]
    if not members:
        db.session.flush()
        return 0
    links = personal_links(meeting, members)
    context = {
        "meeting": meeting,
        "question": QUESTION,
        "meeting_day": timefmt.day(meeting.local_start),
        "closes_on": timefmt.day(closes_at(meeting).astimezone(meeting.zone)),
    }
    series = links_for(meeting, members)
    queued = queue_emails(
        Email(
            kind=MessageKind.FEEDBACK,
            to=member,
            subject=f"Your feedback: {meeting.title}",
            context=dict(
                context,
                feedback_url=external_url("feedback.give", ref=meeting.slug, token=links[member.id].token),
                series=series.get(member.id),
            ),
            dedup_key=_key(meeting, member),
            meeting_id=meeting.id,
            list_unsubscribe=series[member.id].list_unsubscribe if member.id in series else "",
        )
        for member in members
    )
    db.session.flush()
    return len(queued)


def asked_later(meeting: Meeting) -> int:
    """After attendance changes: once the meeting's members have been asked, those recorded as having come since
    are asked too."""
    return ask(meeting) if meeting.feedback_asked_at is not None else 0


def ask_due(now: dt.datetime | None = None) -> int:
    """Ask about each meeting that ended ASK_AFTER ago or more and has not been asked about (its notes not
    published by then). One query when there is nothing to do, as on most passes of the outbox worker."""
    now = now or utcnow()
    due = db.session.scalars(
        select(Meeting)
        .where(
            Meeting.status == MeetingStatus.SCHEDULED,
            Meeting.feedback_asked_at.is_(None),
            Meeting.ends_at <= now - ASK_AFTER,
            Meeting.ends_at > now - dt.timedelta(days=FEEDBACK_DAYS),
        )
        .order_by(Meeting.ends_at)
    ).all()
    return sum(ask(lock_meeting(meeting.id), now=now) for meeting in due)
