"""The invitation is the meeting: invitation, update and reminder emails, delivered through a real SMTP server and
read back part by part, carry the description, the agenda in the meeting's zone with each speaker's role and
organisation, the answer-by date, the places left and the contact, after the three answer buttons."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from markupsafe import escape
from sqlalchemy import select

from kxn_meetings.extensions import db
from kxn_meetings.models import AgendaItem, Answer, Meeting, Member
from kxn_meetings.services import invitations, notices
from kxn_meetings.services import meetings as meeting_service

from .dates import BST_START
from .invitation_checks import Received
from .meeting_helpers import record_answer
from .test_invitations import deliver
from .test_query_counts import counting_statements

HOSTILE = '<script>alert("x")</script> & Co'


@pytest.fixture
def people(make_member):
    return {
        "contact": make_member(name="Stephen Walcott", email="stephen@police-foundation.example", is_organiser=True),
        "sam": make_member(name="Sam Member", email="sam@example.org"),
        "dana": make_member(name="Dana Going", email="dana@example.org"),
    }


@pytest.fixture
def meeting(make_meeting, people, smtp_server) -> Meeting:
    meeting = make_meeting(
        title="Youth engagement",
        theme="Including the new children and young adult strategy",
        description="The network turns to **youth engagement**: how to involve young adults.\n\n" + "More words " * 60,
        start=BST_START,
        capacity=2,
        rsvp_deadline=BST_START - dt.timedelta(days=2),
        contact_id=people["contact"].id,
    )
    speaker = {"speaker_name": "Imran Hussain", "speaker_role": "Partnerships manager"}
    rows = [(15, 0, "Welcome and introductions", {}), (15, 10, "Listening to young people", speaker)]
    meeting.agenda_items = [
        AgendaItem(position=n, start_time=dt.time(h, m), title=title, speaker_organisation=HOSTILE, **who)
        if who
        else AgendaItem(position=n, start_time=dt.time(h, m), title=title)
        for n, (h, m, title, who) in enumerate(rows)
    ]
    db.session.commit()
    record_answer(meeting.id, people["dana"], Answer.GOING)
    db.session.commit()
    deliver(smtp_server)
    return meeting


def words(text: str) -> str:
    return " ".join(text.split())


def html_words(html: str) -> str:
    return words(re.sub(r"<[^>]+>", " ", re.sub(r"</?(strong|span)\b[^>]*>", "", html)))


def check_carries_the_meeting(received: Received, *, places: str, going: bool = False) -> None:
    """`going`: the recipient is going, so is neither asked to answer by a date nor told about places."""
    text, html = words(received.text), html_words(received.html)
    for part in (text, html):
        assert "Agenda, times in BST (London time):" in part or "Times are BST (London time)." in part
        assert "15:10" in part and "Listening to young people" in part
        assert "The network turns to youth engagement: how to involve young adults." in part
        assert "**" not in part and "More words More words" in part and "More words " * 40 not in part
        assert "More words\u2026 (The meeting page has the rest.)" in part
        assert (places in part) is not going
        assert "Stephen Walcott" in part and "stephen@police-foundation.example" in part
    deadline = f"Please answer by 7 Jun {BST_START.year}, 3pm BST."
    assert (deadline in text) is (deadline in html) is not going
    speaker = f"Imran Hussain, Partnerships manager, {HOSTILE}"
    assert speaker in text
    assert str(escape(speaker)) in words(received.html) and "<script>" not in received.html
    for body in (received.text, received.html):
        buttons = body.index("answer=going")
        assert buttons < body.index("answer=maybe") < body.index("answer=declined") < body.index("15:10")


def test_the_invitation_carries_the_agenda_speakers_answer_by_date_places_and_contact(smtp_server, meeting, people):
    invitations.invite(meeting, [people["sam"]])
    db.session.commit()
    [received] = deliver(smtp_server)
    assert received.kind == "invitation"
    check_carries_the_meeting(received, places="1 place left")


def test_a_full_meeting_says_going_joins_the_waiting_list(smtp_server, meeting, people, make_member):
    record_answer(meeting.id, make_member(name="Last Place"), Answer.GOING)
    db.session.commit()
    deliver(smtp_server)
    invitations.invite(meeting, [people["sam"]])
    db.session.commit()
    [received] = deliver(smtp_server)
    check_carries_the_meeting(received, places="Full: answering Going puts you on the waiting list")


def test_updates_and_reminders_carry_the_meeting_too(smtp_server, meeting, people):
    invitations.invite(meeting, [people["sam"]])
    db.session.commit()
    deliver(smtp_server)

    before = invitations.snapshot(meeting)
    meeting.location = "Police Foundation, London"
    notices.record_changes(meeting, before, notify=True)
    notices.send_pending_update_now(meeting)
    db.session.commit()
    updates = deliver(smtp_server)
    assert {r.kind for r in updates} == {"update"}
    assert sorted(r.to for r in updates) == ["dana@example.org", "sam@example.org"]
    for received in updates:
        check_carries_the_meeting(received, places="1 place left", going=received.to == "dana@example.org")

    notices.queue_reminders(now=BST_START - dt.timedelta(hours=3))
    db.session.commit()
    reminders = deliver(smtp_server)
    assert [(r.kind, r.to) for r in reminders] == [("reminder", "dana@example.org")]
    check_carries_the_meeting(reminders[0], places="1 place left", going=True)


def test_a_cancellation_has_no_answer_buttons_places_or_agenda(smtp_server, meeting, people):
    invitations.invite(meeting, [people["sam"]])
    db.session.commit()
    deliver(smtp_server)
    meeting_service.cancel(meeting, "The speakers are unwell.")
    db.session.commit()
    cancellations = deliver(smtp_server)
    assert cancellations and {r.kind for r in cancellations} == {"cancellation"}
    for received in cancellations:
        for body in (received.text, received.html):
            assert "answer=going" not in body
            assert "place left" not in body and "waiting list" not in body
            assert "15:10" not in body and "Please answer by" not in body


def test_an_invitation_round_reads_the_agenda_and_the_places_once(app, meeting, make_member):
    invited = [make_member().id for _ in range(30)]

    def statements_to_invite(how_many: int) -> int:
        db.session.rollback()
        db.session.expire_all()
        again = db.session.get(Meeting, meeting.id)
        # Members made for this round only, none of them the contact: whether the contact is in the batch would
        # decide whether reading her costs a statement.
        chosen = select(Member).where(Member.id.in_(invited)).order_by(Member.id).limit(how_many)
        members = db.session.scalars(chosen).all()
        with counting_statements() as statements:
            invitations.invite(again, members)
        return len(statements)

    assert statements_to_invite(3) == statements_to_invite(30)


def test_a_description_shown_whole_sends_nobody_to_the_page_for_the_rest(make_meeting):
    from kxn_meetings.services.meeting_summary import summary

    short = summary(make_meeting(description="Two hours with **practitioners**."))
    assert short.description == "Two hours with practitioners." and not short.description_cut
    assert summary(make_meeting(description="Words " * 200)).description_cut


def test_links_in_the_description_keep_their_address_in_both_parts(smtp_server, make_meeting, people):
    """A member reading on her phone can open the papers the description points to from the email itself."""
    meeting = make_meeting(
        description=(
            "Read the [briefing paper](https://example.org/briefing?id=7&v=2) first, ask "
            "[Stephen](mailto:stephen@police-foundation.example) for the data, see https://example.org/data "
            "and the [notes archive](/notes)."
        )
    )
    invitations.invite(meeting, [people["sam"]])
    db.session.commit()
    [received] = deliver(smtp_server)
    expected = (
        "Read the briefing paper (https://example.org/briefing?id=7&v=2) first, ask Stephen "
        "(stephen@police-foundation.example) for the data, see https://example.org/data and the notes archive."
    )
    assert expected in words(received.text)
    assert expected in html_words(received.html.replace("&amp;", "&"))
