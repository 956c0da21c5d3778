"""Feedback after a meeting: asked once of those who came, by a link that opens a form for them alone."""

from __future__ import annotations

import collections
import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from kxn_meetings.extensions import db
from kxn_meetings.mail import deliver_due
from kxn_meetings.models import Answer, MeetingFeedback, MessageKind, OutboxMessage, Rsvp
from kxn_meetings.services import feedback
from kxn_meetings.services import meetings as meeting_service
from kxn_meetings.services.invitations import personal_link

from .html_forms import text


def text_of(response) -> str:
    return text(response.get_data(as_text=True))


LINK = re.compile(r"https://kxn\.test/meetings/[^/\s]+/feedback/[A-Za-z0-9_-]+")


@pytest.fixture
def past_meeting(make_meeting, make_member):
    """A meeting that ended two days ago: Ann and Bo came, Cy said Going and did not, Di only said Maybe."""
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=2, hours=3)
    meeting = make_meeting(title="Meeting five", slug="meeting-five", start=start)
    people = {name: make_member(name=name.title(), email=f"{name}@example.org") for name in ("ann", "bo", "cy", "di")}
    for name, answer, came in (
        ("ann", Answer.GOING, True),
        ("bo", Answer.GOING, True),
        ("cy", Answer.GOING, False),
        ("di", Answer.MAYBE, None),
    ):
        db.session.add(Rsvp(meeting_id=meeting.id, member_id=people[name].id, answer=answer, attended=came))
    db.session.commit()
    return meeting, people


def delivered(smtp_server) -> collections.Counter:
    report = deliver_due()
    assert report.failed == report.retrying == 0, report.errors
    smtp_server.wait_for(len(smtp_server.messages))
    return collections.Counter(str(m["To"].addresses[0].addr_spec) for m in smtp_server.messages)


def link_in(smtp_server, address: str) -> str:
    (message,) = smtp_server.to(address)
    text = message.get_body(("plain",)).get_content()
    assert "How useful was this meeting for your work?" in text
    return LINK.search(text).group(0).removeprefix("https://kxn.test")


def feedback_rows() -> list[tuple[str, int, str, str]]:
    db.session.expire_all()
    return [
        (row.member.name, row.score, row.do_differently, row.future_topics)
        for row in db.session.scalars(select(MeetingFeedback).order_by(MeetingFeedback.id))
    ]


@pytest.mark.usefixtures("past_meeting")
def test_those_who_came_get_one_feedback_email_and_answer_by_its_link(app, client, smtp_server, runner):
    result = runner.invoke(args=["kxn", "outbox", "worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "Queued 2 feedback request(s)." in result.output
    assert runner.invoke(args=["kxn", "outbox", "worker", "--once"]).exit_code == 0  # asked once, however often
    assert delivered(smtp_server) == {"ann@example.org": 1, "bo@example.org": 1}
    assert feedback.ask_due() == 0

    ann, bo = link_in(smtp_server, "ann@example.org"), link_in(smtp_server, "bo@example.org")
    page = client.get(ann)
    assert page.status_code == 200 and "Hello Ann" in text_of(page)
    client.head(ann)
    assert feedback_rows() == []  # opening the link (a mail scanner does) records nothing

    answered = client.post(ann, data={"score": "4", "do_differently": "Ask the VRU for its data", "future_topics": ""})
    assert answered.status_code == 302
    assert feedback_rows() == [("Ann", 4, "Ask the VRU for its data", "")]
    assert "You answered 4 out of 5" in text_of(client.get(ann))

    client.post(ann, data={"score": "5", "do_differently": "", "future_topics": "Youth justice"})
    assert feedback_rows() == [("Ann", 5, "", "Youth justice")]  # edited, not a second answer

    refused = client.post(bo, data={"score": "9"})
    assert refused.status_code == 422 and feedback_rows() == [("Ann", 5, "", "Youth justice")]

    # Another meeting's address with Ann's token, a made-up token: no page at all.
    assert client.get(ann.replace("meeting-five", "meeting-six")).status_code == 404
    assert client.post(re.sub(r"[^/]+$", "x" * 32, ann), data={"score": "1"}).status_code == 404


def test_a_member_who_did_not_come_cannot_answer_with_her_own_link(app, client, past_meeting):
    meeting, people = past_meeting
    token = personal_link(meeting, people["cy"]).token
    db.session.commit()
    response = client.post(f"/meetings/{meeting.slug}/feedback/{token}", data={"score": "3"})
    assert response.status_code == 422
    assert "Feedback is asked of those who came to the meeting." in text_of(response)
    assert feedback_rows() == []


def test_the_notes_email_brings_the_request_and_the_day_after_sends_nothing_more(app, past_meeting):
    meeting, _people = past_meeting
    meeting.starts_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=4)
    meeting.ends_at = meeting.starts_at + dt.timedelta(hours=2)
    db.session.commit()
    assert feedback.ask_due() == 0  # not a day after yet
    assert feedback.ask(meeting) == 2  # what publishing the notes with an email does
    db.session.commit()
    assert feedback.ask_due(now=meeting.ends_at + dt.timedelta(days=2)) == 0
    kinds = db.session.scalar(select(func.count()).where(OutboxMessage.kind == MessageKind.FEEDBACK))
    assert kinds == 2


def test_answers_close_30_days_after_the_meeting(app, past_meeting):
    meeting, people = past_meeting
    late = meeting.ends_at + dt.timedelta(days=30, minutes=1)
    with pytest.raises(feedback.FeedbackError, match="closed"):
        feedback.record(meeting, people["ann"], score=3, now=late)
    feedback.record(meeting, people["ann"], score=3, now=late - dt.timedelta(minutes=2))
    assert feedback_rows() == [("Ann", 3, "", "")]


def test_organisers_see_the_answers_on_the_meeting(app, organiser_client, member_client, past_meeting):
    meeting, people = past_meeting
    feedback.record(meeting, people["ann"], score=4, future_topics="Trauma-informed custody")
    feedback.record(meeting, people["bo"], score=2)
    db.session.commit()
    page = text_of(organiser_client.get(f"/meetings/{meeting.slug}/feedback"))
    assert "2 answers; average usefulness 3.0 out of 5." in page and "Trauma-informed custody" in page
    assert "Feedback" in text_of(organiser_client.get(f"/meetings/{meeting.slug}"))
    assert member_client.get(f"/meetings/{meeting.slug}/feedback").status_code == 403


def test_a_member_recorded_as_having_come_after_the_request_is_asked_too(app, past_meeting, make_member):
    meeting, people = past_meeting
    assert feedback.ask(meeting) == 2
    db.session.commit()
    meeting_service.record_walk_in(meeting, people["di"].id)
    late = make_member(name="Late Entry", email="late@example.org")
    meeting_service.record_walk_in(meeting, late.id)
    db.session.commit()
    asked = db.session.scalars(
        select(OutboxMessage.recipient).where(OutboxMessage.kind == MessageKind.FEEDBACK).order_by(OutboxMessage.id)
    ).all()
    assert asked == [
        "Ann <ann@example.org>",
        "Bo <bo@example.org>",
        "Di <di@example.org>",
        "Late Entry <late@example.org>",
    ]
    assert feedback.ask(meeting) == 0  # once each


def test_the_attendees_page_says_when_recording_who_came_sends_the_feedback_request(
    organiser_client, past_meeting, make_member
):
    meeting, people = past_meeting
    rsvp_ids = {r.member_id: r.id for r in db.session.scalars(select(Rsvp).where(Rsvp.meeting_id == meeting.id))}
    ann_and_bo = [rsvp_ids[people[name].id] for name in ("ann", "bo")]
    attendance, walk_in = f"/meetings/{meeting.slug}/attendance", f"/meetings/{meeting.slug}/walk-in"

    page = text_of(organiser_client.post(attendance, data={"attended": ann_and_bo}, follow_redirects=True))
    assert "Attendance saved: 2 attended." in page and "feedback request" not in page  # nobody asked yet

    assert feedback.ask(meeting) == 2
    db.session.commit()
    ticked = [*ann_and_bo, rsvp_ids[people["cy"].id]]
    page = text_of(organiser_client.post(attendance, data={"attended": ticked}, follow_redirects=True))
    assert "Attendance saved: 3 attended. The feedback request is on its way to 1 member newly recorded" in page
    page = text_of(organiser_client.post(attendance, data={"attended": ticked}, follow_redirects=True))
    assert "Attendance saved: 3 attended." in page and "feedback request" not in page  # once each

    late = make_member(name="Late Entry", email="late@example.org")
    page = text_of(organiser_client.post(walk_in, data={"member_id": late.id}, follow_redirects=True))
    assert "Late Entry is recorded as having come. The feedback request is on its way to them." in page


def test_a_link_answers_for_its_own_member_only_whoever_is_signed_in(app, make_member, sign_in, past_meeting):
    meeting, people = past_meeting
    ann, bo = (personal_link(meeting, people[name]).token for name in ("ann", "bo"))
    db.session.commit()
    signed_in_as_bo = app.test_client()
    sign_in(signed_in_as_bo, people["bo"])
    # Bo, signed in, opens and posts to Ann's link: the answer is Ann's, and Bo's own stays unanswered.
    assert "Hello Ann" in text_of(signed_in_as_bo.get(f"/meetings/{meeting.slug}/feedback/{ann}"))
    signed_in_as_bo.post(f"/meetings/{meeting.slug}/feedback/{ann}", data={"score": "2"})
    assert feedback_rows() == [("Ann", 2, "", "")]
    # A token one character off is no link at all.
    off_by_one = ann[:-1] + ("a" if ann[-1] != "a" else "b")
    assert signed_in_as_bo.get(f"/meetings/{meeting.slug}/feedback/{off_by_one}").status_code == 404
    signed_in_as_bo.post(f"/meetings/{meeting.slug}/feedback/{bo}", data={"score": "5"})
    assert sorted(feedback_rows()) == [("Ann", 2, "", ""), ("Bo", 5, "", "")]
