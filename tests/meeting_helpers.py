"""Shared by the meeting and RSVP tests: what an organiser types into the meeting form."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, Meeting, Member, OutboxMessage, OutboxStatus, Rsvp
from kxn_meetings.services import notices, rsvps


def future_day(days: int = 60) -> dt.date:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).date()


def meeting_form(**overrides) -> dict[str, str]:
    """A complete, valid meeting form as the browser posts it; keyword arguments replace fields."""
    data = {
        "title": "Policing young adults: what works",
        "theme": "Trauma-informed practice with 18-25 year olds",
        "description": "Two hours with **practitioners** from police and health.",
        "date": future_day().isoformat(),
        "start_time": "15:00",
        "end_time": "17:00",
        "timezone": "Europe/London",
        "join_url": "https://meet.example.org/kxn-three",
        "location": "",
        "capacity": "",
        "rsvp_deadline_date": "",
        "rsvp_deadline_time": "",
        "visibility": "public",
        "contact_id": "0",
        "agenda-0-start_time": "15:00",
        "agenda-0-title": "Welcome and introductions",
        "agenda-0-speaker_name": "",
        "agenda-0-speaker_role": "",
        "agenda-0-speaker_organisation": "",
        "agenda-1-start_time": "15:15",
        "agenda-1-title": "Lessons from the Manchester pilot",
        "agenda-1-speaker_name": "Dr Asha Patel",
        "agenda-1-speaker_role": "Research lead",
        "agenda-1-speaker_organisation": "University of Salford",
        "rooms-0-name": "Custody and diversion",
        "rooms-0-questions": "What helps at the point of arrest?\nWho else should be in the room?",
    }
    data.update(overrides)
    return data


def meeting_count() -> int:
    return db.session.scalar(select(func.count(Meeting.id))) or 0


def rsvp_count() -> int:
    return db.session.scalar(select(func.count(Rsvp.id))) or 0


def only_meeting() -> Meeting:
    db.session.expire_all()
    return db.session.scalars(select(Meeting)).one()


def record_answer(meeting_id: int, member: Member, choice: Answer, **details) -> rsvps.AnswerResult:
    """An answer as the site records it: the RSVP rules, then the notices they call for."""
    result = rsvps.answer(meeting_id, member, choice, **details)
    notices.queue_answer_notices(result)
    return result


def failed_message(tag: str) -> OutboxMessage:
    """A message set aside after its eighth refusal, added to the session: what the Outbox page offers to retry."""
    message = OutboxMessage(
        kind="test",
        message_id=f"<{tag}@kxn.test>",
        sender="meetings@kxn.test",
        recipient="someone@example.org",
        subject="Hello",
        text_body="Hello",
        html_body="<p>Hello</p>",
        status=OutboxStatus.FAILED,
        attempts=8,
    )
    db.session.add(message)
    return message
