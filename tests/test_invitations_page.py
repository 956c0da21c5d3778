"""The organisers' invite page and the `kxn invite` command: who is chosen, what the preview shows, what is
queued, and what nobody but an organiser may do."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from kxn_meetings.extensions import db
from kxn_meetings.mail import deliver_due
from kxn_meetings.models import Answer, Invitation, MeetingStatus, Member, OutboxMessage, OutboxStatus, utcnow

from .dates import GMT_START, short_day
from .html_forms import field_error, text
from .meeting_helpers import record_answer


@pytest.fixture
def meeting(make_meeting):
    return make_meeting(start=GMT_START, title="Meeting three: young adults & the courts", slug="meeting-three")


@pytest.fixture
def people(make_member):
    return {
        "ann": make_member(name="Ann Police", email="ann@example.org", organisation="Thames Valley Police"),
        "ben": make_member(name="Ben Health", email="ben@example.org", organisation="NHS England"),
        "cat": make_member(name="Cat Police", email="cat@example.org", organisation="Thames Valley Police"),
        "gone": make_member(name="Gone Member", email="gone@example.org", active=False),
    }


def rows(kind: str | None = None) -> list[OutboxMessage]:
    db.session.expire_all()
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    return list(db.session.scalars(query))


def page_text(response) -> str:
    return text(response.get_data(as_text=True))


def post_invite(client, meeting, **data):
    data.setdefault("recipients", "all")
    return client.post(f"/meetings/{meeting.slug}/invite", data=data)


# Preview and send ----------------------------------------------------------------------------------


def test_the_preview_shows_the_exact_email_and_how_many_receive_it_and_queues_nothing(
    organiser_client, organiser, meeting, people
):
    response = post_invite(organiser_client, meeting, action="preview")
    assert response.status_code == 200
    shown = page_text(response)
    assert "4 members will receive a personal invitation" in shown  # the organiser too, not the inactive one
    assert "Gone Member" not in shown
    subject = f"Invitation: Meeting three: young adults & the courts ({short_day(GMT_START)}, 3\u20135pm GMT)"
    assert f"Subject: {subject}" in shown
    assert "Send 4 invitations" in shown
    page = response.get_data(as_text=True)
    preview_text = re.search(r'<pre class="email-text">(.*?)</pre>', page, re.S).group(1)
    assert rows() == []
    assert db.session.scalar(select(func.count(Invitation.id))) == 0

    frame = organiser_client.get(f"/meetings/{meeting.slug}/invite/preview.html")
    assert frame.status_code == 200
    assert "sandbox" in frame.headers["Content-Security-Policy"]
    assert "Meeting three: young adults &amp; the courts" in frame.get_data(as_text=True)
    assert rows() == []

    response = post_invite(organiser_client, meeting, action="send")
    assert response.status_code == 302
    assert "4 invitations are on their way." in page_text(organiser_client.get(response.headers["Location"]))
    invited = rows("invitation")
    assert sorted(r.recipient for r in invited) == sorted(
        f"{m.name} <{m.email}>" for m in (organiser, people["ann"], people["ben"], people["cat"])
    )
    mine = next(r for r in invited if r.member_id == organiser.id)
    token = db.session.scalar(select(Invitation.token).where(Invitation.member_id == organiser.id))
    assert mine.subject == subject
    assert mine.text_body == html.unescape(preview_text).replace("your-personal-link", token)


def test_the_preview_counts_only_those_not_invited_before(organiser_client, meeting, people):
    assert (
        post_invite(
            organiser_client, meeting, recipients="organisations", organisations="NHS England", action="send"
        ).status_code
        == 302
    )

    shown = page_text(post_invite(organiser_client, meeting, action="preview"))
    assert "3 members will receive a personal invitation" in shown
    assert "1 member was invited before and is not sent it again." in shown
    assert "Send 3 invitations" in shown

    post_invite(organiser_client, meeting, action="send")
    shown = page_text(post_invite(organiser_client, meeting, action="preview"))
    assert "0 members will receive a personal invitation" in shown
    assert "4 members were invited before and are not sent it again." in shown
    assert "Nothing to send: everyone chosen has been invited already." in shown
    assert "Send 0" not in shown and "Send 4" not in shown


def test_pasted_addresses_that_are_not_members_are_listed_and_invited_only_when_added(
    organiser_client, meeting, people
):
    pasted = "ann@example.org, New Person <new.person@example.org>; not-an-address\nNEW.PERSON@example.org"
    response = post_invite(organiser_client, meeting, recipients="addresses", addresses=pasted, action="preview")
    shown = page_text(response)
    assert "1 member will receive a personal invitation: Ann Police." in shown
    assert "Not members yet (1): New Person <new.person@example.org>" in shown
    assert "Not email addresses, left out: not-an-address" in shown

    response = post_invite(organiser_client, meeting, recipients="addresses", addresses=pasted, action="send")
    assert "1 invitation is on its way. 1 address was not invited because it is not a member yet." in page_text(
        organiser_client.get(response.headers["Location"])
    )
    assert db.session.scalar(select(Member).where(Member.email == "new.person@example.org")) is None
    assert [r.recipient for r in rows("invitation")] == ["Ann Police <ann@example.org>"]

    response = post_invite(
        organiser_client, meeting, recipients="addresses", addresses=pasted, create_members="y", action="send"
    )
    assert (
        "1 invitation is on its way. 1 had already been invited. 1 new member was added to the members list."
        in page_text(organiser_client.get(response.headers["Location"]))
    )
    new = db.session.scalar(select(Member).where(Member.email == "new.person@example.org"))
    assert new is not None and new.name == "New Person" and new.active
    assert [r.recipient for r in rows("invitation")] == [
        "Ann Police <ann@example.org>",
        "New Person <new.person@example.org>",
    ]


def test_members_of_chosen_organisations_only(organiser_client, meeting, people):
    response = post_invite(organiser_client, meeting, recipients="organisations", action="preview")
    assert response.status_code == 422
    assert "Choose at least one organisation." in page_text(response)
    response = post_invite(
        organiser_client,
        meeting,
        recipients="organisations",
        organisations=["Thames Valley Police", "No such organisation\x00"],
        action="send",
    )
    assert response.status_code == 302
    assert sorted(r.recipient for r in rows("invitation")) == [
        "Ann Police <ann@example.org>",
        "Cat Police <cat@example.org>",
    ]


def test_the_page_follows_the_outbox_and_who_has_not_replied_and_nudges_them_once_a_day(
    organiser_client, meeting, people, smtp_server
):
    post_invite(
        organiser_client, meeting, recipients="organisations", organisations=["Thames Valley Police"], action="send"
    )
    post_invite(organiser_client, meeting, recipients="addresses", addresses="ben@example.org", action="send")
    page = page_text(organiser_client.get(f"/meetings/{meeting.slug}/invite"))
    assert "3 on their way ( see the outbox ) 0 sent 0 failed" in page
    assert "Invited, no reply yet (3) Ann Police, Thames Valley Police Ben Health, NHS England Cat Police" in page

    smtp_server.refuse(1, "550 5.1.1 No such mailbox")
    report = deliver_due()
    assert (report.sent, report.failed) == (2, 1)
    record_answer(meeting.id, people["ann"], Answer.GOING)
    db.session.commit()
    page = page_text(organiser_client.get(f"/meetings/{meeting.slug}/invite"))
    assert "0 on their way 2 sent 1 failed" in page
    assert "Invited, no reply yet (2) Ben Health, NHS England Cat Police, Thames Valley Police" in page

    response = organiser_client.post(f"/meetings/{meeting.slug}/invite/nudge", follow_redirects=True)
    assert "2 nudges queued to members who have not replied." in page_text(response)
    nudges = rows("nudge")
    assert sorted(r.recipient for r in nudges) == ["Ben Health <ben@example.org>", "Cat Police <cat@example.org>"]
    assert all(r.calendar_method == "REQUEST" and "We have not heard from you yet" in r.text_body for r in nudges)
    response = organiser_client.post(f"/meetings/{meeting.slug}/invite/nudge", follow_redirects=True)
    assert "Nobody to nudge" in page_text(response)
    assert len(rows("nudge")) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": MeetingStatus.DRAFT}, "Publish the meeting before inviting members."),
        ({"status": MeetingStatus.CANCELLED}, "A cancelled meeting cannot be invited to."),
        (
            {"starts_at": utcnow() - dt.timedelta(days=2), "ends_at": utcnow() - dt.timedelta(days=2, hours=-2)},
            "This meeting has already taken place.",
        ),
    ],
)
def test_a_draft_cancelled_or_past_meeting_cannot_be_invited_to(
    organiser_client, meeting, people, runner, change, message
):
    for name, value in change.items():
        setattr(meeting, name, value)
    db.session.commit()
    page = organiser_client.get(f"/meetings/{meeting.slug}/invite")
    assert page.status_code == 200
    assert message in page_text(page)
    response = post_invite(organiser_client, meeting, action="send")
    assert response.status_code == 422
    assert message in page_text(response)
    assert organiser_client.get(f"/meetings/{meeting.slug}/invite/preview.html").status_code == 404
    response = organiser_client.post(f"/meetings/{meeting.slug}/invite/nudge", follow_redirects=True)
    assert message in page_text(response)
    result = runner.invoke(args=["kxn", "invite", meeting.slug, "--all"])
    assert result.exit_code != 0 and message in result.output
    assert rows() == []


def test_only_organisers_may_invite(app, client, sign_in, member, meeting):
    urls = [
        ("get", f"/meetings/{meeting.slug}/invite"),
        ("post", f"/meetings/{meeting.slug}/invite"),
        ("get", f"/meetings/{meeting.slug}/invite/preview.html"),
        ("post", f"/meetings/{meeting.slug}/invite/nudge"),
    ]
    for method, url in urls:
        response = getattr(client, method)(url, data={"recipients": "all", "action": "send"})
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/sign-in"), url
    sign_in(client, member)
    for method, url in urls:
        assert getattr(client, method)(url, data={"recipients": "all", "action": "send"}).status_code == 403, url
    assert rows() == []


def test_an_unknown_meeting_is_404_for_organisers(organiser_client):
    assert organiser_client.get("/meetings/no-such-meeting/invite").status_code == 404
    assert organiser_client.post("/meetings/999999/invite/nudge").status_code == 404


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_sending_without_the_form_token_is_refused_and_queues_nothing(organiser_client, meeting, people):
    response = post_invite(organiser_client, meeting, action="send")
    assert response.status_code == 400
    assert organiser_client.post(f"/meetings/{meeting.slug}/invite/nudge").status_code == 400
    assert rows() == []


@given(
    recipients=st.sampled_from(["all", "organisations", "addresses", "", "nobody"]),
    addresses=st.text(max_size=300),
    organisation=st.text(max_size=40),
    action=st.sampled_from(["preview", "send", "other"]),
    create=st.booleans(),
)
def test_any_input_on_the_invite_form_never_gives_a_server_error(
    organiser_client, meeting, people, recipients, addresses, organisation, action, create
):
    data = {"recipients": recipients, "addresses": addresses, "organisations": [organisation], "action": action}
    if create:
        data["create_members"] = "y"
    response = organiser_client.post(f"/meetings/{meeting.slug}/invite", data=data)
    assert response.status_code in (200, 302, 422)
    db.session.rollback()


def test_a_bad_address_choice_is_shown_next_to_the_field(organiser_client, meeting, people):
    response = post_invite(organiser_client, meeting, recipients="addresses", addresses="  ", action="send")
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "addresses") == "Paste at least one email address."
    response = post_invite(organiser_client, meeting, recipients="everyone", action="send")
    assert response.status_code == 422
    assert "Choose who to invite" in page_text(response)
    assert rows() == []


# The command line ----------------------------------------------------------------------------------


def test_kxn_invite_by_slug_or_id_queues_one_per_active_member_once(runner, meeting, people, organiser):
    result = runner.invoke(args=["kxn", "invite", meeting.slug, "--all"])
    assert result.exit_code == 0, result.output
    assert "Queued 4 invitation(s)" in result.output
    assert sorted(r.member_id for r in rows("invitation")) == sorted(
        m.id for m in (organiser, people["ann"], people["ben"], people["cat"])
    )
    result = runner.invoke(args=["kxn", "invite", str(meeting.id), "--all"])
    assert result.exit_code == 0, result.output
    assert "Queued 0 invitation(s)" in result.output and "4 already invited" in result.output
    assert len(rows("invitation")) == 4
    assert all(r.status == OutboxStatus.PENDING for r in rows())


def test_kxn_invite_by_organisation_or_address(runner, meeting, people):
    result = runner.invoke(
        args=[
            "kxn",
            "invite",
            meeting.slug,
            "--organisation",
            "NHS England",
            "--email",
            "cat@example.org",
            "--email",
            "stranger@example.org",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "Not a member, skipped: stranger@example.org" in result.output
    assert sorted(r.recipient for r in rows("invitation")) == [
        "Ben Health <ben@example.org>",
        "Cat Police <cat@example.org>",
    ]


def test_kxn_invite_says_why_each_name_and_address_found_nobody(runner, meeting, people):
    args = ["kxn", "invite", meeting.slug, "--organisation", "NHS Englnd", "--email", "not-an-address"]
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert "No active member of the organisation NHS Englnd, skipped" in result.output
    assert "Not an email address, skipped: not-an-address" in result.output
    assert "Not a member" not in result.output
    assert "Error: nobody to invite" in result.output
    assert rows() == []


@pytest.mark.parametrize("ref", ["no-such-meeting", "424242", "\x00", ""])
def test_kxn_invite_of_an_unknown_meeting_fails_clearly(runner, people, ref):
    result = runner.invoke(args=["kxn", "invite", ref, "--all"])
    assert result.exit_code != 0
    assert "no meeting with slug or id" in result.output
    assert rows() == []


def test_kxn_invite_says_who_to_invite(runner, meeting):
    result = runner.invoke(args=["kxn", "invite", meeting.slug])
    assert result.exit_code != 0
    assert "say who to invite" in result.output


# Addresses no email can go to ----------------------------------------------------------------------------------


def test_addresses_with_letters_such_as_e_acute_are_refused_where_they_are_typed(organiser_client, meeting):
    """The outbox writes plain addresses only (no SMTPUTF8): such an address is refused with a message that says so,
    in the new member form, listed as left out among pasted addresses, and nobody is added."""
    members_before = db.session.scalar(select(func.count(Member.id)))
    pasted = "élodie@example.org, ÜÜ@example.org"
    shown = page_text(
        post_invite(organiser_client, meeting, recipients="addresses", addresses=pasted, action="preview")
    )
    assert "Not email addresses, left out: élodie@example.org, ÜÜ@example.org" in shown
    post_invite(organiser_client, meeting, recipients="addresses", addresses=pasted, create_members="y", action="send")
    response = organiser_client.post(
        "/members/new", data={"name": "Élodie Martin", "email": "élodie@example.org", "organisation": "NHS"}
    )
    assert response.status_code == 422
    assert "letters such as é cannot be sent" in field_error(response.get_data(as_text=True), "email")
    assert db.session.scalar(select(func.count(Member.id))) == members_before


def test_a_member_stored_with_such_an_address_is_left_out_and_everyone_else_is_invited(
    organiser_client, client, meeting, people, make_member
):
    """An address stored before they were refused: her invitation, her sign-in link and her answer's notice are not
    queued (a warning goes to the log), and nothing else fails with them."""
    stored = make_member(name="Élodie Martin")
    db.session.execute(Member.__table__.update().where(Member.id == stored.id).values(email="élodie@example.org"))
    db.session.commit()
    response = post_invite(organiser_client, meeting, action="send")
    assert response.status_code == 302
    invited = {row.member_id for row in rows("invitation")}
    assert stored.id not in invited and {p.id for p in people.values() if p.active} <= invited
    assert client.post("/sign-in", data={"email": "élodie@example.org"}).status_code in (200, 422)
    token = db.session.scalar(select(Invitation.token).where(Invitation.member_id == stored.id))
    if token is None:
        from kxn_meetings.services import invitations as invitation_service

        token = invitation_service.personal_link(meeting, stored).token
        db.session.commit()
    assert client.post(f"/meetings/{meeting.slug}/answer/{token}", data={"answer": "going"}).status_code == 302
    assert not [row for row in rows() if row.member_id == stored.id]
