"""Organisers message one group of a meeting's members: delivered through a real SMTP server to exactly that group,
once each however often Send is pressed or delivery retried, with the contact as Reply-To; refused with a reason
when there is nobody to send to or the meeting cannot take messages."""

from __future__ import annotations

import collections
import datetime as dt

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from kxn_meetings.extensions import db
from kxn_meetings.mail import deliver_due
from kxn_meetings.models import Answer, Audience, Invitation, MeetingMessage, OutboxMessage, Rsvp, utcnow
from kxn_meetings.services import messages as message_service

from .invitation_checks import take_apart

BODY = "Please read the strategy before we meet.\n\nBring one example of <b>engagement</b> & what it changed."


@pytest.fixture
def meeting_with_groups(make_meeting, make_member, organiser):
    contact = make_member(name="Stephen Walcott", email="stephen@police-foundation.example")
    meeting = make_meeting(title="Youth engagement", contact_id=contact.id, capacity=2)
    people = {
        name: make_member(name=name.title(), email=f"{name}@example.org")
        for name in ("gina", "gary", "mo", "wendy", "dec", "nora", "olga")
    }
    rows = [
        ("gina", Answer.GOING, None),
        ("gary", Answer.GOING, None),
        ("mo", Answer.MAYBE, None),
        ("wendy", Answer.GOING, 1),
        ("dec", Answer.DECLINED, None),
    ]
    for name, answer, position in rows:
        db.session.add(
            Rsvp(meeting_id=meeting.id, member_id=people[name].id, answer=answer, waitlist_position=position)
        )
    for name in ("nora", "gina", "mo"):
        db.session.add(
            Invitation(meeting_id=meeting.id, member_id=people[name].id, token=f"t-{name}", sent_at=utcnow())
        )
    db.session.commit()
    return meeting, people, organiser


def delivered_to(smtp_server) -> collections.Counter:
    report = deliver_due()
    assert report.failed == report.retrying == 0, report.errors
    smtp_server.wait_for(len(smtp_server.messages))
    return collections.Counter(str(m["To"].addresses[0].addr_spec) for m in smtp_server.messages)


def test_each_group_holds_exactly_its_members(app, meeting_with_groups):
    meeting, _people, _organiser = meeting_with_groups
    names = {audience: [m.name for m in message_service.members_in(meeting, audience)] for audience in Audience}
    assert names[Audience.GOING] == ["Gary", "Gina"]
    assert names[Audience.MAYBE] == ["Mo"]
    assert names[Audience.WAITING] == ["Wendy"]
    assert names[Audience.NOT_REPLIED] == ["Nora"]
    assert names[Audience.ATTENDED] == []
    assert message_service.audience_sizes(meeting) == {a: len(n) for a, n in names.items()}


def test_the_message_reaches_exactly_the_chosen_group_once(app, smtp_server, meeting_with_groups):
    meeting, _people, organiser = meeting_with_groups
    draft = message_service.check(meeting, Audience.GOING, "Pre-reading for Tuesday", BODY)
    logged = message_service.send(meeting, draft, sender=organiser, send_key="key-1")
    db.session.commit()
    assert logged.recipient_count == 2
    assert message_service.send(meeting, draft, sender=organiser, send_key="key-1").id == logged.id  # Send twice
    db.session.commit()
    assert delivered_to(smtp_server) == {"gary@example.org": 1, "gina@example.org": 1}
    assert deliver_due().sent == 0  # a second delivery pass finds nothing left
    assert db.session.scalar(select(func.count(MeetingMessage.id))) == 1

    for message in smtp_server.messages:
        assert message["Reply-To"].addresses[0].addr_spec == "stephen@police-foundation.example"
        assert message["Subject"] == "Pre-reading for Tuesday"
        received = take_apart(message)
        assert received.kind == "message"
        assert "Bring one example of <b>engagement</b> & what it changed." in received.text
        assert str(escape("Bring one example of <b>engagement</b> & what it changed.")) in received.html
        assert "<b>engagement</b>" not in received.html
        assert "/answer/" in received.text and "Youth engagement" in received.text


def test_the_outbox_rows_of_one_message_are_one_send(app, meeting_with_groups):
    meeting, _people, organiser = meeting_with_groups
    message_service.send(
        meeting, message_service.check(meeting, Audience.GOING, "One", "Text"), sender=organiser, send_key="a"
    )
    db.session.commit()
    message_service.send(
        meeting, message_service.check(meeting, Audience.MAYBE, "Two", "Text"), sender=organiser, send_key="b"
    )
    db.session.commit()
    sends = db.session.execute(
        select(OutboxMessage.subject, func.count(func.distinct(OutboxMessage.send_id))).group_by(OutboxMessage.subject)
    ).all()
    assert dict(sends) == {"One": 1, "Two": 1}
    assert len(set(db.session.scalars(select(OutboxMessage.send_id)))) == 2


def test_nobody_in_the_group_is_refused_and_sends_nothing(app, meeting_with_groups):
    meeting, _people, organiser = meeting_with_groups
    meeting.starts_at = utcnow() - dt.timedelta(hours=1)
    meeting.ends_at = utcnow() + dt.timedelta(hours=1)
    db.session.commit()
    draft = message_service.check(meeting, Audience.ATTENDED, "Thanks", "Thank you for coming.")
    with pytest.raises(message_service.MessageError, match="Nobody is in “Attended”"):
        message_service.send(meeting, draft, sender=organiser, send_key="k")
    db.session.rollback()
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0


@pytest.mark.parametrize(
    ("subject", "body", "problem"),
    [
        ("", "Text", "Write a subject."),
        ("Line\x00break", "Text", "cannot go in an email"),
        ("x" * 201, "Text", "Keep the subject to 200 characters."),
        ("Subject", "   ", "Write the message."),
        ("Subject", "y" * 5001, "Keep the message to 5000 characters."),
    ],
)
def test_a_bad_subject_or_body_is_refused_with_a_reason(app, meeting_with_groups, subject, body, problem):
    meeting, _people, _organiser = meeting_with_groups
    with pytest.raises(message_service.MessageError, match=problem):
        message_service.check(meeting, Audience.GOING, subject, body)


def test_attended_before_the_start_and_cancelled_meetings_are_refused(app, meeting_with_groups):
    meeting, _people, _organiser = meeting_with_groups
    assert "once the meeting has started" in message_service.why_not_message(meeting, Audience.ATTENDED)
    meeting.status = meeting.status.CANCELLED
    assert "cancelled" in message_service.why_not_message(meeting)


def test_write_preview_send_and_the_log(app, meeting_with_groups, organiser_client):
    meeting, _people, _organiser = meeting_with_groups
    url = f"/meetings/{meeting.slug}/message"
    page = organiser_client.get(url).get_data(as_text=True)
    assert "Going (2)" in page and "Invited, not replied yet (1)" in page and "Attended" not in page
    values = {"audience": "going", "subject": "Pre-reading", "body": BODY}
    preview = organiser_client.post(url, data=values)
    text = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Send to 2 members" in text
    recipients = text.split('<ul class="columns">', 1)[1].split("</ul>", 1)[0]  # the page holds random tokens too
    assert "Gary" in recipients and "Mo" not in recipients
    assert str(escape(BODY.split("\n\n")[1])) in text
    key = text.split('name="send_key" type="hidden" value="', 1)[1].split('"', 1)[0]
    sent = organiser_client.post(f"{url}/send", data={**values, "send_key": key})
    assert sent.status_code == 302
    again = organiser_client.post(f"{url}/send", data={**values, "send_key": key})
    assert again.status_code == 302
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == 2
    shown = organiser_client.get(sent.headers["Location"]).get_data(as_text=True)
    assert "2 members who are going will get your message in the next few minutes." in shown
    assert "Pre-reading</strong> to 2 members (Going)" in shown


def test_an_empty_group_is_refused_on_the_form(app, meeting_with_groups, organiser_client):
    meeting, _people, _organiser = meeting_with_groups
    db.session.execute(Rsvp.__table__.delete().where(Rsvp.answer == Answer.MAYBE))
    db.session.commit()
    response = organiser_client.post(
        f"/meetings/{meeting.slug}/message", data={"audience": "maybe", "subject": "S", "body": "B"}
    )
    assert response.status_code == 422
    assert "Nobody is in “Maybe”" in response.get_data(as_text=True)


def test_members_cannot_message(app, meeting_with_groups, member_client):
    meeting, _people, _organiser = meeting_with_groups
    assert member_client.get(f"/meetings/{meeting.slug}/message").status_code == 403
    response = member_client.post(
        f"/meetings/{meeting.slug}/message/send",
        data={"audience": "going", "subject": "S", "body": "B", "send_key": "k"},
    )
    assert response.status_code == 403
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0
