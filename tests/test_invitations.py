"""Every notice of a meeting's life, delivered through a real SMTP server and read back as mail and calendar
clients read it: MIME layout, iTIP method, the one attendee, UID and SEQUENCE, times, and privacy."""

from __future__ import annotations

import collections
import datetime as dt

import pytest
import vobject
from flask import current_app
from hypothesis import given
from hypothesis import strategies as st
from icalendar import Event, vCalAddress
from sqlalchemy import select

from kxn_meetings import ical
from kxn_meetings.extensions import db
from kxn_meetings.mail import deliver_due
from kxn_meetings.models import Answer, Member, OutboxMessage, utcnow
from kxn_meetings.services import invitations, notices
from kxn_meetings.services import meetings as meeting_service
from kxn_meetings.services import rsvps as rsvp_service

from .dates import BST_START, GMT_START, JUNE_DAY, MARCH_DAY, YEAR
from .html_forms import form_values
from .invitation_checks import Received, icaljs, take_apart, tsics, utc, vobject_instants
from .meeting_helpers import record_answer

CALENDAR = "calendar@kxn.test"
JOIN = "https://meet.example.org/kxn-three-room"

PARTSTAT = {"going": "ACCEPTED", "maybe": "TENTATIVE", "declined": "DECLINED", None: "NEEDS-ACTION"}


def deliver(smtp_server) -> list[Received]:
    """Deliver what is due and return what this pass delivered, taken apart."""
    before = len(smtp_server.messages)
    report = deliver_due()
    assert report.failed == report.retrying == 0, report.errors
    return [take_apart(m) for m in smtp_server.wait_for(before + report.sent)[before:]]


def edit(client, meeting, **changes):
    values = form_values(client.get(f"/meetings/{meeting.slug}/edit").get_data(as_text=True))
    values.update(changes)
    response = client.post(f"/meetings/{meeting.slug}/edit", data=values)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def check_common(
    received: Received, members: dict[str, object], meeting_uid: str, others: tuple[str, ...] = ("olive@example.org",)
) -> None:
    """What every message owes, whatever its kind. `others`: addresses no member's message may carry."""
    message = received.message
    [sender] = message["From"].addresses
    if not current_app.config["REPLIES_TOKEN_ADDRESSES"]:
        assert sender.addr_spec == CALENDAR
    assert len(message["To"].addresses) == 1
    assert "Cc" not in message and "Bcc" not in message
    recipient = received.to
    for other in [m.email for m in members.values()] + list(others):
        if other != recipient:
            assert other not in received.everything, (received.kind, recipient, other)
    if received.calendar is None:
        return
    assert b"\r\n" in received.calendar and b"\n" not in received.calendar.replace(b"\r\n", b"")
    event = received.vevent()
    text = received.calendar.decode()
    assert f"METHOD:{received.mime_method}\r\n" in text
    assert text.count("METHOD:") == 1
    assert event.uid.value == meeting_uid
    assert event.organizer.value.lower() == f"mailto:{sender.addr_spec}"
    attendees = event.contents.get("attendee", [])
    assert len(attendees) == 1, [a.value for a in attendees]
    [attendee] = attendees
    assert attendee.value.lower() == f"mailto:{recipient}"
    member = next(m for m in members.values() if m.email == recipient)
    assert attendee.params["CN"] == [member.name]
    assert attendee.params["ROLE"] == ["REQ-PARTICIPANT"]
    if received.mime_method == "REQUEST":
        assert attendee.params["RSVP"] == ["TRUE"]


# The whole life of a meeting in winter --------------------------------------------------------------


@pytest.mark.app_config(UPDATE_WINDOW_SECONDS=0)
def test_every_notice_of_a_meeting_reaches_each_member_as_their_own_calendar_invitation(
    app, organiser_client, smtp_server, make_member, make_meeting
):
    members = {
        "alice": make_member(name="Alice Going", email="alice@example.org"),
        "bob": make_member(name="Bob Silent", email="bob@example.org"),
        "carol": make_member(name="Carol Declines", email="carol@example.org"),
    }
    meeting = make_meeting(start=GMT_START, title="Meeting three: young adults in custody", join_url=JOIN)
    uid = meeting.uid
    by_address = {m.email: name for name, m in members.items()}
    everything: list[Received] = []

    assert invitations.invite(meeting, members.values()) == 3
    db.session.commit()
    sent = deliver(smtp_server)
    assert sorted((r.kind, by_address[r.to]) for r in sent) == [
        ("invitation", "alice"),
        ("invitation", "bob"),
        ("invitation", "carol"),
    ]
    everything += sent

    record_answer(meeting.id, members["alice"], Answer.GOING)
    db.session.commit()
    record_answer(meeting.id, members["carol"], Answer.DECLINED)
    db.session.commit()
    sent = deliver(smtp_server)
    assert sorted((r.kind, by_address[r.to]) for r in sent) == [("confirmation", "alice"), ("decline", "carol")]
    everything += sent

    edit(organiser_client, meeting, start_time="16:00", end_time="18:00")
    sent = deliver(smtp_server)
    assert sorted((r.kind, by_address[r.to]) for r in sent) == [("update", "alice"), ("update", "bob")]
    everything += sent

    organiser_client.post(f"/meetings/{meeting.slug}/invite/nudge")
    sent = deliver(smtp_server)
    assert [(r.kind, by_address[r.to]) for r in sent] == [("nudge", "bob")]
    everything += sent

    edit(organiser_client, meeting, location="Police Foundation, London")
    sent = deliver(smtp_server)
    assert sorted((r.kind, by_address[r.to]) for r in sent) == [("update", "alice"), ("update", "bob")]
    everything += sent

    response = organiser_client.post(f"/meetings/{meeting.slug}/cancel", data={"reason": "The speakers are unwell."})
    assert response.status_code == 302
    sent = deliver(smtp_server)
    assert sorted((r.kind, by_address[r.to]) for r in sent) == [("cancellation", "alice"), ("cancellation", "bob")]
    everything += sent

    for received in everything:
        check_common(received, members, uid)

    def life(name: str) -> list[tuple[str, str, int, str]]:
        rows = []
        for r in everything:
            if by_address[r.to] == name:
                event = r.vevent()
                rows.append((r.kind, r.mime_method, int(event.sequence.value), event.attendee.params["PARTSTAT"][0]))
        return rows

    assert life("alice") == [
        ("invitation", "REQUEST", 0, "NEEDS-ACTION"),
        ("confirmation", "REQUEST", 0, "ACCEPTED"),
        ("update", "REQUEST", 1, "ACCEPTED"),
        ("update", "REQUEST", 2, "ACCEPTED"),
        ("cancellation", "CANCEL", 3, "ACCEPTED"),
    ]
    assert life("bob") == [
        ("invitation", "REQUEST", 0, "NEEDS-ACTION"),
        ("update", "REQUEST", 1, "NEEDS-ACTION"),
        ("nudge", "REQUEST", 1, "NEEDS-ACTION"),
        ("update", "REQUEST", 2, "NEEDS-ACTION"),
        ("cancellation", "CANCEL", 3, "NEEDS-ACTION"),
    ]
    assert life("carol") == [
        ("invitation", "REQUEST", 0, "NEEDS-ACTION"),
        ("decline", "CANCEL", 0, "DECLINED"),
    ]

    # The join link only reaches someone who is going, and never a cancellation.
    for r in everything:
        carries_link = JOIN in r.everything
        assert carries_link == (by_address[r.to] == "alice" and r.kind in ("confirmation", "update")), (r.kind, r.to)

    for r in everything:
        status = r.vevent().status.value
        assert status == ("CANCELLED" if r.mime_method == "CANCEL" else "CONFIRMED"), (r.kind, status)

    # Times: read independently by vobject, ical.js (Thunderbird) and ts-ics, from the file's own VTIMEZONE.
    moved = GMT_START + dt.timedelta(hours=1)
    expected = [(GMT_START if r.kind in ("invitation", "confirmation", "decline") else moved) for r in everything]
    for r, start in zip(everything, expected, strict=True):
        assert vobject_instants(r.calendar) == (start, start + dt.timedelta(hours=2)), r.kind
    parsed = icaljs([r.calendar for r in everything])
    for calendar, r, start in zip(parsed, everything, expected, strict=True):
        [event] = calendar["events"]
        assert calendar["method"] == r.mime_method
        assert calendar["timezones"] == ["Europe/London"]
        assert event["start_zone"] == "Europe/London"
        assert (utc(event["start"]), utc(event["end"])) == (start, start + dt.timedelta(hours=2)), r.kind
        assert event["uid"] == uid
        assert [a["value"].lower() for a in event["attendees"]] == [f"mailto:{r.to}"]
        assert event["organizer"]["value"].lower() == f"mailto:{CALENDAR}"
    for calendar, r, start in zip(tsics([r.calendar for r in everything]), everything, expected, strict=True):
        [event] = calendar["events"]  # ts-ics, reading the same files: the zone from the file, the same instants
        assert calendar["method"] == r.mime_method
        assert event["start_tzid"] == event["start_zone"] == "Europe/London", r.kind
        assert (utc(event["start"]), utc(event["end"])) == (start, start + dt.timedelta(hours=2)), r.kind
        assert [a["value"].lower() for a in event["attendees"]] == [f"mailto:{r.to}"]

    first_update = next(r for r in everything if r.kind == "update")
    change = f"Time: {MARCH_DAY}, 3\u20135pm GMT \u2192 {MARCH_DAY}, 4\u20136pm GMT"
    assert change in first_update.text
    assert change in first_update.html
    assert "Changed: " + change in first_update.vevent().description.value
    second_update = [r for r in everything if r.kind == "update"][-1]
    assert "Place: online only \u2192 Police Foundation, London" in second_update.text
    assert "Time:" not in second_update.text

    cancellation = everything[-1]
    assert "The speakers are unwell." in cancellation.text
    assert "The speakers are unwell." in cancellation.html
    assert cancellation.message["Subject"].startswith("Cancelled: Meeting three")
    decline = next(r for r in everything if r.kind == "decline")
    assert "can't come" in decline.text


# A meeting in summer with a waiting list and a reminder -----------------------------------------------


def test_summer_meeting_promotion_and_reminder_arrive_with_the_right_instant(
    app, smtp_server, make_member, make_meeting, runner
):
    members = {
        "dave": make_member(name="Dave First", email="dave@example.org"),
        "erin": make_member(name="Erin Waiting", email="erin@example.org"),
        "fay": make_member(name="Fay Maybe", email="fay@example.org"),
    }
    meeting = make_meeting(start=BST_START, title="Meeting four", join_url=JOIN, capacity=1)
    by_address = {m.email: name for name, m in members.items()}
    invitations.invite(meeting, members.values())
    db.session.commit()
    for name, answer in (("dave", Answer.GOING), ("erin", Answer.GOING), ("fay", Answer.MAYBE)):
        record_answer(meeting.id, members[name], answer)
        db.session.commit()
    received = deliver(smtp_server)
    assert sorted((r.kind, by_address[r.to]) for r in received) == [
        ("confirmation", "dave"),
        ("invitation", "dave"),
        ("invitation", "erin"),
        ("invitation", "fay"),
    ]

    assert notices.queue_reminders(now=BST_START - dt.timedelta(hours=3)) == 2
    db.session.commit()
    reminders = deliver(smtp_server)
    assert sorted(by_address[r.to] for r in reminders) == ["dave", "fay"]
    for reminder in reminders:
        assert reminder.kind == "reminder"
        assert reminder.calendar is None
        assert not any(
            part.get_content_type() in ("text/calendar", "application/ics") for part in reminder.message.walk()
        )
        assert f"{JUNE_DAY}, 3\u20135pm BST" in reminder.text
        check_common(reminder, members, meeting.uid)
    # The meeting is full: the link goes to Dave, who has the place, not to Fay's maybe, while Erin waits for it.
    going, maybe = sorted(reminders, key=lambda r: by_address[r.to])
    assert JOIN in going.text and JOIN in going.html
    assert JOIN not in maybe.text and JOIN not in maybe.html
    assert "the joining link is sent when you answer Going" in maybe.text

    record_answer(meeting.id, members["dave"], Answer.DECLINED)
    db.session.commit()
    promoted_and_declined = deliver(smtp_server)
    assert sorted((r.kind, by_address[r.to]) for r in promoted_and_declined) == [
        ("decline", "dave"),
        ("waitlist_promoted", "erin"),
    ]
    received += promoted_and_declined

    for r in received:
        check_common(r, members, meeting.uid)
        assert vobject_instants(r.calendar) == (BST_START, BST_START + dt.timedelta(hours=2))
        assert (JOIN in r.everything) == (r.kind in ("confirmation", "waitlist_promoted")), r.kind
    promoted = next(r for r in received if r.kind == "waitlist_promoted")
    assert promoted.mime_method == "REQUEST"
    assert promoted.vevent().attendee.params["PARTSTAT"] == ["ACCEPTED"]
    assert "a place has come free" in promoted.text
    [parsed] = list(icaljs([promoted.calendar]))
    [event] = parsed["events"]
    assert (utc(event["start"]), utc(event["end"])) == (BST_START, BST_START + dt.timedelta(hours=2))
    assert event["attendees"][0]["partstat"] == "ACCEPTED"
    assert f"{JUNE_DAY}, 3\u20135pm BST" in promoted.text

    counts = collections.Counter(r.kind for r in received)
    assert counts == {"invitation": 3, "confirmation": 1, "decline": 1, "waitlist_promoted": 1}


# Batched updates -----------------------------------------------------------------------------------


def queued(kind: str) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))


def recipient_names(rows: list[OutboxMessage]) -> list[str]:
    return sorted(row.recipient for row in rows)


@pytest.fixture
def invited_three(app, make_member, make_meeting):
    """Alice going, Bob invited without an answer, Carol declined; all three were invited."""
    members = {
        "alice": make_member(name="Alice Going", email="alice@example.org"),
        "bob": make_member(name="Bob Silent", email="bob@example.org"),
        "carol": make_member(name="Carol Declines", email="carol@example.org"),
    }
    meeting = make_meeting(start=GMT_START, title="Meeting three", join_url=JOIN)
    invitations.invite(meeting, members.values())
    db.session.commit()
    record_answer(meeting.id, members["alice"], Answer.GOING)
    db.session.commit()
    record_answer(meeting.id, members["carol"], Answer.DECLINED)
    db.session.commit()
    return meeting, members


@pytest.mark.app_config(UPDATE_WINDOW_SECONDS=300)
def test_edits_in_a_row_become_one_update_once_the_window_closes(organiser_client, invited_three):
    meeting, _members = invited_three
    edit(organiser_client, meeting, start_time="16:00", end_time="18:00")
    edit(organiser_client, meeting, location="Police Foundation, London")
    db.session.expire_all()
    assert queued("update") == []
    assert meeting.sequence == 1
    assert meeting.update_due_at is not None
    assert dt.timedelta(seconds=290) < meeting.update_due_at - utcnow() <= dt.timedelta(seconds=300)

    assert notices.queue_due_updates() == 0  # the window is still open
    db.session.commit()
    assert queued("update") == []

    later = utcnow() + dt.timedelta(minutes=6)
    assert notices.queue_due_updates(now=later) == 2
    db.session.commit()
    updates = queued("update")
    assert recipient_names(updates) == ["Alice Going <alice@example.org>", "Bob Silent <bob@example.org>"]
    for row in updates:
        assert f"Time: {MARCH_DAY}, 3\u20135pm GMT \u2192 {MARCH_DAY}, 4\u20136pm GMT" in row.text_body
        assert "Place: online only \u2192 Police Foundation, London" in row.text_body
        event = vobject.readOne(row.calendar.decode()).vevent
        assert int(event.sequence.value) == 1
        assert event.location.value.startswith("Police Foundation, London")
        assert vobject_instants(row.calendar)[0] == GMT_START + dt.timedelta(hours=1)
    db.session.expire_all()
    assert meeting.update_due_at is None and meeting.sequence == 1

    assert notices.queue_due_updates(now=later) == 0
    assert notices.queue_due_updates(now=later + dt.timedelta(hours=1)) == 0
    db.session.commit()
    assert len(queued("update")) == 2


@pytest.mark.app_config(UPDATE_WINDOW_SECONDS=300)
def test_a_minor_correction_sends_nothing_and_is_not_announced_later(organiser_client, invited_three):
    meeting, _members = invited_three
    edit(organiser_client, meeting, title="Meeting three (corrected typo)", minor_correction="y")
    db.session.expire_all()
    assert meeting.title == "Meeting three (corrected typo)"
    assert (meeting.sequence, meeting.update_due_at) == (0, None)
    assert notices.queue_due_updates(now=utcnow() + dt.timedelta(hours=1)) == 0
    db.session.commit()
    assert queued("update") == []

    edit(organiser_client, meeting, start_time="16:00", end_time="18:00")
    assert notices.queue_due_updates(now=utcnow() + dt.timedelta(minutes=6)) == 2
    db.session.commit()
    for row in queued("update"):
        assert "Time:" in row.text_body
        assert "Title:" not in row.text_body  # told only of what the organiser meant to announce
        assert "SUMMARY:Meeting three (corrected typo)" in row.calendar.decode()


@pytest.mark.app_config(UPDATE_WINDOW_SECONDS=300)
def test_the_outbox_command_announces_due_updates_before_delivering(
    organiser_client, runner, smtp_server, invited_three
):
    meeting, members = invited_three
    deliver_due()  # the invitations, confirmation and decline
    before = len(smtp_server.messages)
    edit(organiser_client, meeting, start_time="16:00", end_time="18:00")
    result = runner.invoke(args=["kxn", "outbox", "send"])
    assert result.exit_code == 0, result.output
    assert len(smtp_server.messages) == before  # still inside the window

    db.session.expire_all()
    meeting.update_due_at = utcnow() - dt.timedelta(seconds=1)
    db.session.commit()
    result = runner.invoke(args=["kxn", "outbox", "send"])
    assert result.exit_code == 0, result.output
    assert "Queued 2 meeting update(s)" in result.output
    received = [take_apart(m) for m in smtp_server.wait_for(before + 2)[before:]]
    assert sorted(r.to for r in received) == [members["alice"].email, members["bob"].email]
    assert all(r.kind == "update" and int(r.vevent().sequence.value) == 1 for r in received)
    result = runner.invoke(args=["kxn", "outbox", "send"])
    assert "Nothing to send." in result.output


# Reminders -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [None, 3])
def test_a_reminder_gives_the_join_link_to_maybe_while_the_meeting_has_places(app, make_member, make_meeting, capacity):
    meeting = make_meeting(
        start=utcnow().replace(microsecond=0) + dt.timedelta(hours=5), capacity=capacity, join_url=JOIN
    )
    for name, answer in (("going", Answer.GOING), ("maybe", Answer.MAYBE)):
        record_answer(meeting.id, make_member(name=name.title(), email=f"{name}@example.org"), answer)
        db.session.commit()
    assert notices.queue_reminders() == 2
    db.session.commit()
    notices.render_answer_notices()
    reminders = queued("reminder")
    assert recipient_names(reminders) == ["Going <going@example.org>", "Maybe <maybe@example.org>"]
    assert all(JOIN in row.text_body and JOIN in row.html_body for row in reminders)


def test_reminders_go_once_to_members_going_or_maybe_for_meetings_starting_soon(app, runner, make_member, make_meeting):
    soon = make_meeting(start=utcnow().replace(microsecond=0) + dt.timedelta(hours=5), capacity=2, join_url=JOIN)
    later = make_meeting(start=utcnow().replace(microsecond=0) + dt.timedelta(days=3), join_url=JOIN)
    people = {
        name: make_member(name=name.title(), email=f"{name}@example.org")
        for name in ("going", "maybe", "declined", "waiting", "silent", "later", "inactive")
    }
    invitations.invite(soon, [p for n, p in people.items() if n != "later"])
    db.session.commit()
    for name, answer in (
        ("going", Answer.GOING),
        ("inactive", Answer.GOING),
        ("maybe", Answer.MAYBE),
        ("declined", Answer.DECLINED),
        ("waiting", Answer.GOING),
    ):
        record_answer(soon.id, people[name], answer)
        db.session.commit()
    record_answer(later.id, people["later"], Answer.GOING)
    db.session.commit()
    people["inactive"].active = False
    db.session.commit()
    assert rsvp_service.counts(soon).waiting == 1

    result = runner.invoke(args=["kxn", "reminders", "send"])
    assert result.exit_code == 0, result.output
    assert "Queued 2 reminder(s)." in result.output
    reminders = queued("reminder")
    assert recipient_names(reminders) == ["Going <going@example.org>", "Maybe <maybe@example.org>"]
    for row in reminders:
        assert row.calendar is None and row.calendar_method is None
        assert row.meeting_id == soon.id
        assert row.subject.startswith(f"Reminder: {soon.title}")
    # Both places are taken (one by a member since made inactive) and someone waits: the link is for those with one.
    assert [JOIN in row.text_body for row in reminders] == [True, False]

    result = runner.invoke(args=["kxn", "reminders", "send"])
    assert result.exit_code == 0
    assert "No reminders due." in result.output
    assert len(queued("reminder")) == 2


@pytest.mark.app_config(REPLIES_TOKEN_ADDRESSES=True)
def test_with_personal_reply_addresses_each_invitation_names_only_its_own_as_organiser(
    app, smtp_server, make_member, make_meeting
):
    members = {name: make_member(name=name.title(), email=f"{name}@example.org") for name in ("ann", "ben", "cat")}
    meeting = make_meeting(start=GMT_START, join_url=JOIN)
    assert invitations.invite(meeting, members.values()) == 3
    db.session.commit()
    received = deliver(smtp_server)
    organisers = {}
    for r in received:
        [sender] = r.message["From"].addresses
        organiser = r.vevent().organizer.value.lower().removeprefix("mailto:")
        assert organiser == sender.addr_spec.lower()
        assert organiser.startswith("calendar+") and organiser.endswith("@kxn.test")
        organisers[r.to] = organiser
    assert len(set(organisers.values())) == 3
    for r in received:
        others = tuple(address for to, address in organisers.items() if to != r.to)
        check_common(r, members, meeting.uid, others=others)


@given(
    name=st.text(max_size=120)
    | st.text(alphabet="ab ^\\\"',;:\u2019\r\n\u00e9\u20ac\U0001f600", max_size=160)
    | st.text(alphabet="a^\\", min_size=60, max_size=200),  # escapes where the line is folded
    email=st.from_regex(r"[a-z0-9.^\\+-]{1,60}@[a-z0-9.-]{1,40}", fullmatch=True),
    state=st.sampled_from(sorted(set(PARTSTAT.values()))),
    rsvp=st.booleans(),
)
def test_the_attendee_line_is_the_one_icalendar_writes(name, email, state, rsvp):
    parameters = {"CN": ical.display_name(name), "ROLE": "REQ-PARTICIPANT", "PARTSTAT": state, "CUTYPE": "INDIVIDUAL"}
    if rsvp:
        parameters["RSVP"] = "TRUE"
    event = Event()
    event.add("attendee", vCalAddress(f"mailto:{email}"), parameters=parameters)
    written = event.to_ical().removeprefix(b"BEGIN:VEVENT\r\n").removesuffix(b"END:VEVENT\r\n")
    member = Member(name=name, email=email)
    assert invitations._attendee_lines(member, state, rsvp=rsvp) == written


# Typed names, and how every calendar parser reads them back from the invitation's CN parameters.
READ_AS = {
    'Bob "Bobby" O\'Neil': "Bob 'Bobby' O'Neil",
    "Asha Patel; MD": "Asha Patel, MD",
    "Sam ^n Lee": "Sam \u02c6n Lee",
    "Ana\\nBo": "Ana\u29f5nBo",
    "Zoë Ünal": "Zoë Ünal",
}


@pytest.mark.app_config(NETWORK_NAME='KXN "North"; West')
def test_names_with_quotes_semicolons_and_escapes_read_back_alike_in_every_parser(app, make_member, make_meeting):
    members = [make_member(name=name) for name in READ_AS]
    meeting = make_meeting(start=GMT_START, join_url=JOIN)
    invitations.invite(meeting, members)
    db.session.commit()
    calendars = {row.member_id: bytes(row.calendar) for row in queued("invitation")}
    files = [calendars[m.id] for m in members]
    expected = [READ_AS[m.name] for m in members]
    for ics, name in zip(files, expected, strict=True):
        event = vobject.readOne(ics.decode()).vevent
        assert (event.attendee.params["CN"], event.organizer.params["CN"]) == ([name], ["KXN 'North', West"])
    for reader in (icaljs, tsics):
        for calendar, name in zip(reader(files), expected, strict=True):
            [event] = calendar["events"]
            assert [a["cn"] for a in event["attendees"]] == [name], reader
            assert event["attendees"][0]["partstat"] == "NEEDS-ACTION", reader
            assert event["organizer"]["cn"] == "KXN 'North', West", reader


def test_the_outbox_shows_invitations_without_the_key_of_the_personal_link(organiser_client, make_member, make_meeting):
    member = make_member(name="Alice Going", email="alice@example.org")
    meeting = make_meeting(start=GMT_START, title="Meeting three", join_url=JOIN)
    invitations.invite(meeting, [member])
    db.session.commit()
    row = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "invitation")).one()
    token = invitations.personal_links(meeting, [member])[member.id].token
    assert token in row.text_body and token in row.html_body  # the member's own copy carries the link
    detail = organiser_client.get(f"/outbox/{row.id}").get_data(as_text=True)
    preview = organiser_client.get(f"/outbox/{row.id}/html").get_data(as_text=True)
    assert token not in detail and token not in preview
    assert f"/meetings/{meeting.slug}/answer/personal-link-hidden" in detail
    assert f"/meetings/{meeting.slug}/answer/personal-link-hidden" in preview
    assert "shown without their key" in detail


def test_invitations_for_the_night_the_clocks_go_back_carry_one_instant_every_parser_reads(
    app, smtp_server, make_member, make_meeting
):
    """01:30 on the last Sunday of October happens twice in London: the calendar part gives the instant."""
    day = dt.date(YEAR, 10, 31) - dt.timedelta(days=(dt.date(YEAR, 10, 31).weekday() + 1) % 7)
    second = dt.datetime.combine(day, dt.time(1, 30), tzinfo=dt.UTC)  # 01:30 GMT, the second 01:30
    member = make_member(name="Gil Night", email="gil@example.org")
    meeting = make_meeting(start=second, title="Night shift handover", join_url=JOIN)
    invitations.invite(meeting, [member])
    db.session.commit()
    record_answer(meeting.id, member, Answer.GOING)
    db.session.commit()
    received = deliver(smtp_server)  # the confirmation is written now: a cancelled meeting's would be dropped
    meeting_service.cancel(meeting, "Moved online")
    db.session.commit()
    received += deliver(smtp_server)
    assert sorted(r.kind for r in received) == ["cancellation", "confirmation", "invitation"]
    calendars = [r.calendar for r in received]
    expected = (second, second + dt.timedelta(hours=2))
    for r in received:
        assert b"DTSTART:" + f"{second:%Y%m%dT%H%M%S}Z".encode() in r.calendar, r.kind
        assert vobject_instants(r.calendar) == expected, r.kind
    for reader in (icaljs, tsics):
        for calendar, r in zip(reader(calendars), received, strict=True):
            [event] = calendar["events"]
            assert (utc(event["start"]), utc(event["end"])) == expected, (reader.__name__, r.kind)
            assert calendar["method"] == r.mime_method
