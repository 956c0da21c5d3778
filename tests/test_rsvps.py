"""Answering a meeting: on its page, through the personal link in an email, and the waiting list."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, Meeting, Member, OutboxMessage, Rsvp, RsvpSource
from kxn_meetings.services import invitations as invitation_service
from kxn_meetings.services import rsvps as rsvp_service

from .html_forms import form_values, text
from .meeting_helpers import record_answer, rsvp_count


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def rsvp_of(meeting: Meeting, member: Member) -> Rsvp | None:
    db.session.expire_all()
    return db.session.scalar(select(Rsvp).where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == member.id))


def post_answer(client, meeting: Meeting, answer: str, **extra):
    return client.post(f"/meetings/{meeting.slug}/rsvp", data={"answer": answer, **extra}, follow_redirects=True)


def promotion_emails() -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "waitlist_promoted").order_by(OutboxMessage.id)
        )
    )


def answered(meeting: Meeting, member: Member, answer: Answer = Answer.GOING) -> Rsvp:
    result = record_answer(meeting.id, member, answer)
    db.session.commit()
    return result.rsvp


# On the meeting page -------------------------------------------------------------------------------


def test_a_member_answers_and_changes_their_answer_until_the_deadline(member_client, make_meeting, member):
    meeting = make_meeting(rsvp_deadline=now() + dt.timedelta(days=2))
    page = member_client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert "Send my answer" in page

    response = post_answer(member_client, meeting, "going", access_needs="Step-free access", comment="Looking forward")
    assert "Thank you. Your answer is “Going”" in response.get_data(as_text=True)
    rsvp = rsvp_of(meeting, member)
    assert (rsvp.answer, rsvp.access_needs, rsvp.comment, rsvp.source) == (
        Answer.GOING,
        "Step-free access",
        "Looking forward",
        RsvpSource.WEB,
    )
    assert "You’re going" in text(response.get_data(as_text=True))

    page = response.get_data(as_text=True)
    values = form_values(page, with_field="answer")
    assert (values["answer"], values["access_needs"], values["comment"]) == (
        "going",
        "Step-free access",
        "Looking forward",
    )

    for choice, label in (("maybe", "Maybe"), ("declined", "Can't go"), ("going", "Going")):
        response = post_answer(member_client, meeting, choice)
        assert f"Your answer is “{label}”" in text(response.get_data(as_text=True))
        assert rsvp_of(meeting, member).answer == Answer(choice)
    assert rsvp_count() == 1


def test_after_the_deadline_the_page_says_so_and_answers_change_nothing(member_client, make_meeting, member):
    meeting = make_meeting(rsvp_deadline=now() + dt.timedelta(days=2))
    post_answer(member_client, meeting, "going")
    meeting.rsvp_deadline = now() - dt.timedelta(minutes=5)
    db.session.commit()

    page = text(member_client.get(f"/meetings/{meeting.slug}").get_data(as_text=True))
    assert "Answers closed on" in page
    assert "Please contact the organisers if your plans have changed." in page
    assert "Change my answer" not in page

    response = post_answer(member_client, meeting, "declined")
    assert "Answers closed on" in text(response.get_data(as_text=True))
    assert rsvp_of(meeting, member).answer == Answer.GOING


def test_a_meeting_that_has_happened_takes_no_answers(member_client, make_meeting, member):
    meeting = make_meeting(start=now() - dt.timedelta(days=1))
    response = post_answer(member_client, meeting, "going")
    assert "This meeting has already taken place." in text(response.get_data(as_text=True))
    assert rsvp_count() == 0


def test_a_meeting_that_is_over_offers_no_calendar_nor_join_link(client, member_client, make_meeting, member):
    """Once it has ended: no Add to calendar, and the join link neither on her page nor on her personal link's, nor
    the promise of it; an organiser still sees the link. While it runs, she has both."""
    join = "https://meet.example.org/kxn-over"
    meeting = make_meeting(start=now() - dt.timedelta(hours=1), join_url=join)
    record_answer(meeting.id, member, Answer.GOING)
    db.session.commit()
    personal = f"/meetings/{meeting.slug}/answer/{invitation_service.personal_link(meeting, member).token}"
    db.session.commit()

    def pages() -> list[str]:
        return [
            member_client.get(f"/meetings/{meeting.slug}").get_data(as_text=True),
            client.get(personal).get_data(as_text=True),
        ]

    for page in pages():
        assert join in page and "calendar.google.com" in page
    meeting.starts_at, meeting.ends_at = now() - dt.timedelta(hours=3), now() - dt.timedelta(minutes=1)
    db.session.commit()
    for page in [*pages(), client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)]:
        assert join not in page
        assert "calendar.google.com" not in page and "calendar.ics" not in page
        assert "The joining link is shown here" not in page


def test_answering_needs_a_choice(member_client, make_meeting):
    meeting = make_meeting()
    response = member_client.post(f"/meetings/{meeting.slug}/rsvp", data={"answer": "perhaps"})
    assert response.status_code == 422
    assert 'id="answer-error"' in response.get_data(as_text=True)
    assert rsvp_count() == 0


def test_anonymous_visitors_are_sent_to_sign_in_to_answer(client, make_meeting):
    meeting = make_meeting()
    response = client.post(f"/meetings/{meeting.slug}/rsvp", data={"answer": "going"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in?next=")
    assert rsvp_count() == 0


def test_the_same_answer_twice_keeps_one_row_and_says_already(member_client, make_meeting, member):
    meeting = make_meeting()
    post_answer(member_client, meeting, "maybe", comment="If my shift allows")
    first = rsvp_of(meeting, member).answered_at
    response = post_answer(member_client, meeting, "maybe", comment="If my shift allows")
    assert "already “Maybe”" in text(response.get_data(as_text=True))
    assert rsvp_count() == 1
    assert rsvp_of(meeting, member).answered_at == first


def test_the_same_going_twice_on_a_full_meeting_says_already_on_the_waiting_list(
    member_client, make_meeting, make_member, member
):
    meeting = make_meeting(capacity=1)
    answered(meeting, make_member())
    post_answer(member_client, meeting, "going")
    response = post_answer(member_client, meeting, "going")
    page = text(response.get_data(as_text=True))
    assert "already on the waiting list at position 1" in page
    assert rsvp_count() == 2


def test_extra_form_fields_change_nothing_else(member_client, make_meeting, make_member, member):
    meeting = make_meeting(capacity=1)
    other = make_member()
    post_answer(
        member_client,
        meeting,
        "going",
        member_id=str(other.id),
        capacity="999",
        source="organiser",
        meeting_id="999",
        waitlist_position="",
        attended="y",
    )
    rsvp = rsvp_of(meeting, member)
    assert rsvp.source == RsvpSource.WEB
    assert rsvp.attended is None
    assert rsvp_of(meeting, other) is None
    assert db.session.get(Meeting, meeting.id).capacity == 1
    assert rsvp_count() == 1


# The waiting list ----------------------------------------------------------------------------------


def test_a_full_meeting_puts_going_on_the_waiting_list_with_a_position(app, make_meeting, make_member, sign_in):
    meeting = make_meeting(capacity=2)
    people = [make_member() for _ in range(4)]
    clients = []
    for person in people:
        c = app.test_client()
        sign_in(c, person)
        clients.append(c)
        post_answer(c, meeting, "going")
    assert [rsvp_of(meeting, p).is_going for p in people] == [True, True, False, False]

    page = text(clients[3].get(f"/meetings/{meeting.slug}").get_data(as_text=True))
    assert "You’re on the waiting list, position 2" in page
    assert "Full: answering “Going” puts you on the waiting list" in page
    response = post_answer(app.test_client(), meeting, "going")  # anonymous: nothing recorded
    assert rsvp_count() == 4
    flash = text(post_answer(clients[2], meeting, "maybe").get_data(as_text=True))
    assert "Your answer is “Maybe”" in flash
    assert "position 1" in text(clients[3].get(f"/meetings/{meeting.slug}").get_data(as_text=True))
    assert response.status_code == 200
    assert promotion_emails() == []


def test_going_to_cant_go_promotes_exactly_the_first_in_line_and_emails_them(app, make_meeting, make_member, sign_in):
    meeting = make_meeting(capacity=2)
    going, also_going, first, second = (make_member() for _ in range(4))
    for person in (going, also_going, first, second):
        answered(meeting, person)
    assert rsvp_of(meeting, first).is_waiting and rsvp_of(meeting, second).is_waiting

    c = app.test_client()
    sign_in(c, going)
    post_answer(c, meeting, "declined")

    assert rsvp_of(meeting, going).answer == Answer.DECLINED
    assert rsvp_of(meeting, first).is_going
    assert rsvp_of(meeting, second).is_waiting
    assert rsvp_service.waiting_position(rsvp_of(meeting, second)) == 1
    emails = promotion_emails()
    assert len(emails) == 1
    assert first.email in emails[0].recipient
    assert emails[0].member_id == first.id
    assert meeting.title in emails[0].subject

    c2 = app.test_client()
    sign_in(c2, second)
    assert "waiting list, position 1" in text(c2.get(f"/meetings/{meeting.slug}").get_data(as_text=True))


def test_going_to_maybe_also_frees_the_place(make_meeting, make_member):
    meeting = make_meeting(capacity=1)
    going, waiting = make_member(), make_member()
    answered(meeting, going)
    answered(meeting, waiting)
    answered(meeting, going, Answer.MAYBE)
    assert rsvp_of(meeting, waiting).is_going
    assert len(promotion_emails()) == 1


def test_leaving_the_waiting_list_promotes_nobody(make_meeting, make_member):
    meeting = make_meeting(capacity=1)
    going, first, second = make_member(), make_member(), make_member()
    for person in (going, first, second):
        answered(meeting, person)
    answered(meeting, first, Answer.DECLINED)
    assert rsvp_of(meeting, going).is_going
    assert rsvp_of(meeting, second).is_waiting
    assert rsvp_service.waiting_position(rsvp_of(meeting, second)) == 1
    assert promotion_emails() == []


def test_raising_capacity_in_the_edit_form_promotes_from_the_waiting_list(
    app, make_meeting, make_member, organiser, sign_in
):
    meeting = make_meeting(capacity=1)
    going, first, second = make_member(), make_member(), make_member()
    for person in (going, first, second):
        answered(meeting, person)

    c = app.test_client()
    sign_in(c, organiser)
    values = form_values(c.get(f"/meetings/{meeting.slug}/edit").get_data(as_text=True))
    values["capacity"] = "2"
    response = c.post(f"/meetings/{meeting.slug}/edit", data=values, follow_redirects=True)
    assert "1 person from the waiting list now has a place and is told by email." in text(
        response.get_data(as_text=True)
    )
    assert rsvp_of(meeting, first).is_going
    assert rsvp_of(meeting, second).is_waiting
    assert [e.member_id for e in promotion_emails()] == [first.id]

    values["capacity"] = ""
    c.post(f"/meetings/{meeting.slug}/edit", data=values)
    assert rsvp_of(meeting, second).is_going
    assert [e.member_id for e in promotion_emails()] == [first.id, second.id]
    assert db.session.get(Meeting, meeting.id).capacity is None


def test_lowering_capacity_keeps_everyone_who_has_a_place(app, make_meeting, make_member, organiser, sign_in):
    meeting = make_meeting(capacity=3)
    people = [make_member() for _ in range(3)]
    for person in people:
        answered(meeting, person)
    c = app.test_client()
    sign_in(c, organiser)
    values = form_values(c.get(f"/meetings/{meeting.slug}/edit").get_data(as_text=True))
    values["capacity"] = "2"
    assert c.post(f"/meetings/{meeting.slug}/edit", data=values).status_code == 302
    assert all(rsvp_of(meeting, p).is_going for p in people)
    newcomer = make_member()
    answered(meeting, newcomer)
    assert rsvp_of(meeting, newcomer).is_waiting
    answered(meeting, people[0], Answer.DECLINED)
    assert rsvp_of(meeting, newcomer).is_waiting  # still 2 going of 2 places
    assert promotion_emails() == []


# The personal link ---------------------------------------------------------------------------------


def _link(meeting: Meeting, member: Member) -> str:
    token = invitation_service.personal_link(meeting, member).token
    db.session.commit()
    return f"/meetings/{meeting.slug}/answer/{token}"


def test_opening_the_personal_link_preselects_the_answer_and_changes_nothing(client, make_meeting, member):
    meeting = make_meeting()
    link = _link(meeting, member)
    response = client.get(f"{link}?answer=going")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f"Answering as {member.name}" in text(page)
    assert form_values(page, with_field="answer")["answer"] == "going"
    assert "Confirm my answer" in page
    assert client.head(f"{link}?answer=declined").status_code == 200
    assert client.get(f"{link}?answer=nonsense").status_code == 200
    assert rsvp_count() == 0


def test_confirming_on_the_personal_link_records_the_answer_as_from_email(client, make_meeting, member):
    meeting = make_meeting(join_url="https://meet.example.org/kxn-private")
    link = _link(meeting, member)
    response = client.post(link, data={"answer": "going", "access_needs": "Captions please"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Thank you. Your answer is “Going”" in text(page)
    assert "https://meet.example.org/kxn-private" in page
    rsvp = rsvp_of(meeting, member)
    assert (rsvp.answer, rsvp.source, rsvp.access_needs) == (Answer.GOING, RsvpSource.EMAIL_LINK, "Captions please")

    page = client.get(f"{link}?answer=declined").get_data(as_text=True)
    assert "You’re going" in text(page)
    assert form_values(page, with_field="answer")["answer"] == "declined"
    client.post(link, data={"answer": "declined"})
    assert rsvp_of(meeting, member).answer == Answer.DECLINED
    assert "kxn-private" not in client.get(link).get_data(as_text=True)
    assert rsvp_count() == 1


def test_the_personal_link_does_not_sign_anyone_in(client, make_meeting, member):
    meeting = make_meeting()
    client.post(_link(meeting, member), data={"answer": "going"})
    assert member.name not in client.get("/").get_data(as_text=True)
    assert client.get("/members/profile").status_code in (302, 404)


def test_a_token_for_another_meeting_or_a_bogus_token_is_404(client, make_meeting, make_member, member):
    meeting, other_meeting = make_meeting(), make_meeting()
    someone_else = make_member()
    other_token = invitation_service.personal_link(other_meeting, someone_else).token
    own_token_elsewhere = invitation_service.personal_link(other_meeting, member).token
    db.session.commit()
    for token in (other_token, own_token_elsewhere, "x" * 32, "bogus", "A" * 65, "%00" * 20):
        path = f"/meetings/{meeting.slug}/answer/{token}"
        assert client.get(path).status_code == 404, token
        assert client.post(path, data={"answer": "going"}).status_code == 404, token
    assert rsvp_count() == 0


def test_the_personal_link_of_a_deactivated_member_is_404(client, make_meeting, member):
    meeting = make_meeting()
    link = _link(meeting, member)
    member.active = False
    db.session.commit()
    assert client.get(link).status_code == 404
    assert client.post(link, data={"answer": "going"}).status_code == 404
    assert rsvp_count() == 0


def test_the_personal_link_answers_a_members_only_meeting_without_signing_in(client, make_meeting, member):
    from kxn_meetings.models import Visibility

    meeting = make_meeting(visibility=Visibility.MEMBERS)
    link = _link(meeting, member)
    assert client.get(f"{link}?answer=maybe").status_code == 200
    client.post(link, data={"answer": "maybe"})
    assert rsvp_of(meeting, member).answer == Answer.MAYBE


def test_the_personal_link_puts_a_member_on_the_waiting_list_when_full(client, make_meeting, make_member, member):
    meeting = make_meeting(capacity=1)
    answered(meeting, make_member())
    link = _link(meeting, member)
    response = client.post(link, data={"answer": "going"}, follow_redirects=True)
    page = text(response.get_data(as_text=True))
    assert "waiting list at position 1" in page
    assert rsvp_of(meeting, member).is_waiting


# Who sees the join link ----------------------------------------------------------------------------


def test_the_join_link_is_for_organisers_members_going_and_reminders(app, make_meeting, make_member):
    meeting = make_meeting(capacity=1, join_url="https://meet.example.org/kxn-room")
    going, waiting, maybe = make_member(), make_member(), make_member()
    going_rsvp, waiting_rsvp = answered(meeting, going), answered(meeting, waiting)
    maybe_rsvp = answered(meeting, maybe, Answer.MAYBE)
    assert waiting_rsvp.is_waiting
    see = rsvp_service.may_see_join_link
    assert see(meeting, going_rsvp)
    assert not see(meeting, waiting_rsvp) and not see(meeting, maybe_rsvp) and not see(meeting, None)
    assert see(meeting, None, organiser=True) and see(meeting, maybe_rsvp, reminder=True)
    meeting.join_url = ""
    assert not see(meeting, going_rsvp) and not see(meeting, None, organiser=True)
    db.session.rollback()
