"""Messages from the organisers to one group of a meeting's members (those going, maybe, waiting, not replied, or
who attended): pre-reading, a changed speaker, a reminder to bring an example. Sent through the outbox with the
meeting's contact as Reply-To, each member once, and kept on the meeting as its log."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, exists, func, select

from ..extensions import db
from ..models import Answer, Audience, Invitation, Meeting, MeetingMessage, Member, MessageKind, Rsvp, utcnow
from ..text import TEXT_AREA_BREAKS, first_control, without_controls
from ..wording import plural
from .errors import ServiceError
from .invitations import _Notice
from .locking import lock_meeting

SUBJECT_MAX = 200
BODY_MAX = 5000


class MessageError(ServiceError):
    pass


def _in_audience(meeting: Meeting, audience: Audience) -> ColumnElement[bool]:
    """Members of `audience` for this meeting, as a condition on Member."""
    answered = exists().where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == Member.id)
    if audience is Audience.NOT_REPLIED:
        invited = exists().where(
            Invitation.meeting_id == meeting.id, Invitation.member_id == Member.id, Invitation.sent_at.is_not(None)
        )
        return invited & ~answered
    rule = {
        Audience.GOING: (Rsvp.answer == Answer.GOING) & Rsvp.waitlist_position.is_(None),
        Audience.MAYBE: Rsvp.answer == Answer.MAYBE,
        Audience.WAITING: (Rsvp.answer == Answer.GOING) & Rsvp.waitlist_position.is_not(None),
        Audience.ATTENDED: Rsvp.attended.is_(True),
    }[audience]
    return exists().where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == Member.id, rule)


def members_in(meeting: Meeting, audience: Audience) -> list[Member]:
    return list(
        db.session.scalars(
            select(Member)
            .where(Member.active.is_(True), _in_audience(meeting, audience))
            .order_by(Member.name, Member.id)
        )
    )


def audience_sizes(meeting: Meeting) -> dict[Audience, int]:
    """How many active members each group holds, in one query."""
    columns = [
        func.count(Member.id).filter(_in_audience(meeting, audience)).label(audience.value) for audience in Audience
    ]
    row = db.session.execute(select(*columns).where(Member.active.is_(True))).one()
    return {audience: int(getattr(row, audience.value) or 0) for audience in Audience}


def why_not_message(meeting: Meeting, audience: Audience | None = None) -> str | None:
    """Why a message cannot go to `audience` (or to anyone, when None), or None when it can."""
    if meeting.is_draft:
        return "Publish the meeting before messaging its members: nobody has been invited yet."
    if meeting.is_cancelled:
        return "This meeting was cancelled; members were told when it was. Send news of another meeting from its page."
    if audience is Audience.ATTENDED and meeting.starts_at > utcnow():
        return "Nobody has attended yet: attendance is recorded once the meeting has started."
    return None


@dataclass(frozen=True)
class Draft:
    """A message as the organiser wrote it, checked: what the preview shows and Send sends."""

    audience: Audience
    subject: str
    body: str


def check(meeting: Meeting, audience: Audience, subject: str, body: str) -> Draft:
    problems = []
    subject = " ".join((subject or "").split())
    body = without_controls((body or "").replace("\r\n", "\n"), allow=TEXT_AREA_BREAKS).strip()
    if reason := why_not_message(meeting, audience):
        problems.append(MessageError(reason, "audience"))
    if not subject:
        problems.append(MessageError("Write a subject.", "subject"))
    elif len(subject) > SUBJECT_MAX:
        problems.append(MessageError(f"Keep the subject to {SUBJECT_MAX} characters.", "subject"))
    elif first_control(subject) is not None:
        problems.append(MessageError("The subject holds a character that cannot go in an email.", "subject"))
    if not body:
        problems.append(MessageError("Write the message.", "body"))
    elif len(body) > BODY_MAX:
        problems.append(MessageError(f"Keep the message to {BODY_MAX} characters.", "body"))
    if problems:
        raise (
            problems[0]
            if len(problems) == 1
            else MessageError(problems[0].message, problems[0].field, also=problems[1:])
        )
    return Draft(audience, subject, body)


def nobody_in(audience: Audience) -> str:
    return f"Nobody is in “{audience.label}” for this meeting, so there is nobody to send to."


def sent_already(send_key: str) -> MeetingMessage | None:
    return db.session.scalar(select(MeetingMessage).where(MeetingMessage.send_key == send_key))


def send(meeting: Meeting, draft: Draft, *, sender: Member, send_key: str) -> MeetingMessage:
    """Queue the message to every active member of the group, once each, and log it on the meeting. The same
    `send_key` (the preview's) sends nothing again and returns the message already logged."""
    lock_meeting(meeting.id)
    if (earlier := sent_already(send_key)) is not None:
        return earlier
    draft = check(meeting, draft.audience, draft.subject, draft.body)
    members = members_in(meeting, draft.audience)
    if not members:
        raise MessageError(nobody_in(draft.audience), "audience")
    logged = MeetingMessage(
        meeting_id=meeting.id,
        sent_by_id=sender.id,
        audience=draft.audience,
        subject=draft.subject,
        body=draft.body,
        send_key=send_key,
    )
    db.session.add(logged)
    db.session.flush()
    contact = meeting.contact or sender
    notice = _Notice.of(
        MessageKind.MESSAGE,
        meeting,
        subject=draft.subject,
        method=None,
        context={"body": draft.body, "sent_by": signature(sender)},
        reply_to=contact.email,
    )
    logged.recipient_count = notice.send(members, lambda m: f"message:{logged.id}:{m.id}")
    db.session.flush()
    return logged


def signature(member: Member) -> str:
    return ", ".join(part for part in (member.name, member.organisation) if part)


def sent_to(meeting: Meeting) -> list[MeetingMessage]:
    """The meeting's log: every message sent to its members, newest first."""
    return list(
        db.session.scalars(
            select(MeetingMessage).where(MeetingMessage.meeting_id == meeting.id).order_by(MeetingMessage.id.desc())
        )
    )


def what_happens_next(logged: MeetingMessage) -> str:
    """'12 members who are going will get your message in the next few minutes.'"""
    who = {
        Audience.GOING: "who are going",
        Audience.MAYBE: "who answered Maybe",
        Audience.WAITING: "on the waiting list",
        Audience.NOT_REPLIED: "who have not replied",
        Audience.ATTENDED: "who attended",
    }[logged.audience]
    return f"{plural(logged.recipient_count, 'member')} {who} will get your message in the next few minutes."
