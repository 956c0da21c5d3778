"""Calendar replies become RSVPs: a corpus shaped like each client's replies, processed end to end, and every
way a message can fail to count (spoofed, stale, malformed, not a reply) changing nothing."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import email.utils
import mailbox
import os
import quopri
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from icalendar import Calendar
from sqlalchemy import func, select

from kxn_meetings.extensions import db
from kxn_meetings.models import (
    Answer,
    CalendarReply,
    Invitation,
    OutboxMessage,
    ReplyOutcome,
    Rsvp,
    RsvpSource,
    utcnow,
)
from kxn_meetings.services import invitations, notices, replies, reply_addresses, rsvps
from kxn_meetings.text import TEXT_AREA_BREAKS, first_control

from .meeting_helpers import record_answer

FIXTURES = Path(__file__).parent / "fixtures" / "replies"
CALENDAR_ADDRESS = "calendar@kxn.test"
SECRET = "inbound-secret-0123456789abcdef"


def ical_stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def render(name: str, **values: str) -> bytes:
    """A corpus message with its placeholders filled in: {uid} {email} {from} {to} {dtstamp} {date} {msgid}.

    Placeholders inside base64 and quoted-printable text and calendar parts are filled too: such a part is decoded,
    filled and encoded again the same way, so the message keeps the shape its client gives it.
    """
    now = utcnow()
    values = {
        "msgid": f"{uuid.uuid4().hex}@mail.example.org",
        "to": CALENDAR_ADDRESS,
        "dtstamp": ical_stamp(now),
        "date": email.utils.format_datetime(now),
        "uid": "no-such-meeting@example.org",
        "email": "nobody@example.org",
        **values,
    }
    values.setdefault("from", values["email"])
    message = email.message_from_bytes((FIXTURES / name).read_bytes(), policy=email.policy.compat32)
    for part in message.walk():
        encoding = str(part.get("Content-Transfer-Encoding", "")).lower()
        if part.is_multipart() or encoding not in ("base64", "quoted-printable"):
            continue
        charset = part.get_content_charset() or "utf-8"
        if part.get_content_maintype() not in ("text", "application") or part.get_content_subtype() == "ms-tnef":
            continue  # binary: nothing to fill in
        data = _fill(part.get_payload(decode=True).decode(charset), values).encode(charset)
        part.set_payload(
            base64.encodebytes(data).decode("ascii")
            if encoding == "base64"
            else quopri.encodestring(data).decode("ascii")
        )
    return _fill(message.as_bytes().decode("utf-8", "surrogateescape"), values).encode("utf-8", "surrogateescape")


def all_replies() -> list[CalendarReply]:
    db.session.rollback()
    return list(db.session.scalars(select(CalendarReply).order_by(CalendarReply.id)))


def rsvp_of(meeting, member) -> Rsvp | None:
    db.session.rollback()
    return db.session.scalar(select(Rsvp).where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == member.id))


def outbox(member, kind: str) -> list[OutboxMessage]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.member_id == member.id, OutboxMessage.kind == kind)
            .order_by(OutboxMessage.id)
        )
    )


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count(model.id))) or 0


def invite(meeting, *members) -> None:
    invitations.invite(meeting, list(members))
    db.session.commit()


def process(raw: bytes) -> CalendarReply:
    reply = replies.process(raw).reply
    db.session.commit()
    return reply


def ingest(runner, tmp_path, raw: bytes, name: str = "reply.eml"):
    path = tmp_path / name
    path.write_bytes(raw)
    result = runner.invoke(args=["kxn", "replies", "ingest", str(path)])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def invited(make_meeting, make_member):
    """A meeting and an invited member with the given address."""

    def make(email: str, name: str = "Invited Member", **meeting_values):
        meeting = make_meeting(**meeting_values)
        person = make_member(email=email, name=name)
        invite(meeting, person)
        return meeting, person

    return make


# The corpus, end to end ------------------------------------------------------------------------------

CORPUS = [
    # fixture, member's address, how the reply writes it, answer, comment
    ("outlook_desktop_accepted.eml", "aoife.walsh@tvp.example.org", None, Answer.GOING, "Looking forward to it."),
    (
        "outlook_web_declined.eml",
        "ben.okafor@nhs.example.org",
        None,
        Answer.DECLINED,
        "Sorry, I'm on a course that week.",
    ),
    ("gmail_accepted.eml", "Priya.Shah@gmail.example.com", "PRIYA.SHAH@GMAIL.EXAMPLE.COM", Answer.GOING, ""),
    # Gmail's note is the attendee's X-RESPONSE-COMMENT parameter, with \; and \, and HTML character references.
    (
        "gmail_declined_comment.eml",
        "amira.haddad@gmail.example.com",
        None,
        Answer.DECLINED,
        "Sorry, I can't make it: I'm on leave that week.",
    ),
    ("apple_accepted.eml", "tom.reid@icloud.example.com", None, Answer.GOING, ""),
    ("thunderbird_tentative.eml", "stephen.walcott@lancs.example.org", None, Answer.MAYBE, ""),
    (
        "declined_comment.eml",
        "dana.hughes@vru.example.org",
        None,
        Answer.DECLINED,
        "Clashes with a custody review; sorry. Please send the notes, though.",
    ),
    (
        "windows1252_declined.eml",
        "ciara.oneill@psni.example.org",
        None,
        Answer.DECLINED,
        "I\u2019m on leave that week \u2013 sorry.",
    ),
    ("no_method_accepted.eml", "lee.morgan@outlook.example.com", "Lee.Morgan@Outlook.Example.com", Answer.GOING, ""),
]


@pytest.mark.parametrize(
    ("fixture", "address", "written", "expected", "comment"), CORPUS, ids=[c[0].removesuffix(".eml") for c in CORPUS]
)
def test_each_client_reply_becomes_the_members_answer_and_its_notice(
    invited, runner, tmp_path, fixture, address, written, expected, comment
):
    meeting, person = invited(address)
    result = ingest(runner, tmp_path, render(fixture, uid=meeting.uid, email=written or address))
    assert "1 applied" in result.output
    rsvp = rsvp_of(meeting, person)
    assert rsvp is not None and rsvp.answer == expected
    assert rsvp.comment == comment
    assert rsvp.source == RsvpSource.CALENDAR_REPLY
    assert rsvp.waitlist_position is None
    [reply] = all_replies()
    assert (reply.outcome, reply.meeting_id, reply.member_id) == (ReplyOutcome.APPLIED, meeting.id, person.id)
    assert (
        reply.partstat == {Answer.GOING: "ACCEPTED", Answer.MAYBE: "TENTATIVE", Answer.DECLINED: "DECLINED"}[expected]
    )
    # The answer flows on as any other: a confirmation with the join link, or a CANCEL of their copy, written by the
    # outbox worker before it sends them.
    notices.render_answer_notices()
    db.session.commit()
    confirmations, declines = outbox(person, "confirmation"), outbox(person, "decline")
    if expected == Answer.GOING:
        assert [m.calendar_method for m in confirmations] == ["REQUEST"] and not declines
        assert meeting.join_url in confirmations[0].text_body
    elif expected == Answer.DECLINED:
        assert [m.calendar_method for m in declines] == ["CANCEL"] and not confirmations
    else:
        assert not confirmations and not declines


UNMATCHED_CORPUS = [
    ("not_reply_plain.eml", "No calendar in the message"),
    ("request.eml", "Not a reply: the calendar says METHOD:REQUEST."),
    ("malformed.eml", "could not be read"),
    ("unknown_uid.eml", "No meeting has the calendar UID 040000008200E00074C5B7101A82E008"),
    # A bounce carries the invitation that could not be delivered: it is reported as a bounce, to whom, and never read
    # as anything the member sent.
    ("bounce_dsn.eml", "A delivery report (bounce) about the message to dana.hughes@vru.example.org (failed)"),
    ("outlook_tnef_accepted.eml", "Outlook sent it as winmail.dat (TNEF)"),
]


@pytest.mark.parametrize(
    ("fixture", "reason"), UNMATCHED_CORPUS, ids=[c[0].removesuffix(".eml") for c in UNMATCHED_CORPUS]
)
def test_what_is_not_a_usable_reply_is_kept_as_unmatched_and_changes_nothing(
    invited, runner, tmp_path, fixture, reason
):
    meeting, person = invited("dana.hughes@vru.example.org")
    queued = count(OutboxMessage)
    result = ingest(runner, tmp_path, render(fixture, uid=meeting.uid, email=person.email))
    assert "1 unmatched" in result.output and reason in result.output
    [reply] = all_replies()
    assert reply.outcome == ReplyOutcome.UNMATCHED and reason in reply.reason
    assert rsvp_of(meeting, person) is None
    assert count(OutboxMessage) == queued


def test_a_counter_proposal_is_recorded_with_its_times_and_never_applied(invited):
    meeting, person = invited("dana.hughes@vru.example.org")
    queued = count(OutboxMessage)
    reply = process(render("counter.eml", uid=meeting.uid, email=person.email))
    assert reply.outcome == ReplyOutcome.COUNTER
    assert (reply.meeting_id, reply.member_id) == (meeting.id, person.id)
    # 17:00 "GMT Standard Time" on 9 March is 17:00 UTC.
    assert reply.proposed_start == dt.datetime(2027, 3, 9, 17, 0, tzinfo=dt.UTC)
    assert reply.proposed_end == dt.datetime(2027, 3, 9, 19, 0, tzinfo=dt.UTC)
    assert reply.comment == "Could we start two hours later? Night shift ends at 4."
    assert rsvp_of(meeting, person) is None
    assert count(OutboxMessage) == queued


# Rules of the answer --------------------------------------------------------------------------------


def test_an_acceptance_when_the_meeting_is_full_joins_the_waiting_list(invited, make_member):
    meeting, person = invited("aoife.walsh@tvp.example.org", capacity=1)
    record_answer(meeting.id, make_member(), Answer.GOING)
    db.session.commit()
    reply = process(render("outlook_desktop_accepted.eml", uid=meeting.uid, email=person.email))
    assert reply.outcome == ReplyOutcome.APPLIED and "waiting list (place 1)" in reply.reason
    rsvp = rsvp_of(meeting, person)
    assert rsvp.is_waiting and rsvp.source == RsvpSource.CALENDAR_REPLY
    assert not outbox(person, "confirmation")


def test_a_reply_older_than_the_stored_answer_changes_nothing(invited):
    meeting, person = invited("ben.okafor@nhs.example.org")
    record_answer(meeting.id, person, Answer.GOING, source=RsvpSource.WEB)
    db.session.commit()
    written = utcnow() - dt.timedelta(hours=1)
    reply = process(
        render("outlook_web_declined.eml", uid=meeting.uid, email=person.email, dtstamp=ical_stamp(written))
    )
    assert reply.outcome == ReplyOutcome.UNCHANGED and reply.reason.startswith("Stale")
    rsvp = rsvp_of(meeting, person)
    assert (rsvp.answer, rsvp.source, rsvp.comment) == (Answer.GOING, RsvpSource.WEB, "")
    assert not outbox(person, "decline")


def test_a_newer_reply_changes_an_earlier_answer_and_frees_the_place(invited, make_member):
    meeting, person = invited("ben.okafor@nhs.example.org", capacity=1)
    record_answer(meeting.id, person, Answer.GOING)
    waiting = make_member(name="Wendy Waiting")
    record_answer(meeting.id, waiting, Answer.GOING)
    db.session.commit()
    reply = process(
        render(
            "outlook_web_declined.eml",
            uid=meeting.uid,
            email=person.email,
            dtstamp=ical_stamp(utcnow() + dt.timedelta(seconds=5)),
        )
    )
    assert reply.outcome == ReplyOutcome.APPLIED
    assert rsvp_of(meeting, person).answer == Answer.DECLINED
    assert [m.calendar_method for m in outbox(person, "decline")] == ["CANCEL"]
    assert rsvp_of(meeting, waiting).is_going
    assert len(outbox(waiting, "waitlist_promoted")) == 1


def test_the_same_answer_again_is_recorded_as_unchanged(invited):
    meeting, person = invited("tom.reid@icloud.example.com")
    process(render("apple_accepted.eml", uid=meeting.uid, email=person.email))
    again = process(
        render(
            "apple_accepted.eml",
            uid=meeting.uid,
            email=person.email,
            dtstamp=ical_stamp(utcnow() + dt.timedelta(seconds=5)),
        )
    )
    assert again.outcome == ReplyOutcome.UNCHANGED and "already recorded" in again.reason
    assert len(outbox(person, "confirmation")) == 1


def test_a_reply_to_a_cancelled_meeting_changes_nothing(invited):
    from kxn_meetings.models import MeetingStatus

    meeting, person = invited("tom.reid@icloud.example.com")
    meeting.status = MeetingStatus.CANCELLED
    db.session.commit()
    reply = process(render("apple_accepted.eml", uid=meeting.uid, email=person.email))
    assert reply.outcome == ReplyOutcome.UNCHANGED and "cancelled" in reply.reason
    assert rsvp_of(meeting, person) is None


# Notes: COMMENT (Outlook, Apple) or the attendee's X-RESPONSE-COMMENT parameter (Gmail) ----------------------


def _without_comment_property(raw: bytes) -> bytes:
    raw = b"\n".join(line for line in raw.split(b"\n") if not line.startswith(b"COMMENT"))
    assert b"COMMENT" not in raw
    return raw


def _with_attendee_parameter(raw: bytes, value: bytes) -> bytes:
    return raw.replace(b"ATTENDEE;PARTSTAT=DECLINED:", b"ATTENDEE;PARTSTAT=DECLINED;X-RESPONSE-COMMENT=" + value + b":")


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        (b'"On leave; back 20 March: sorry, all"', "On leave; back 20 March: sorry, all"),
        (b"On leave, sorry", "On leave, sorry"),  # unquoted, its comma splits it into values; joined again
        (b"\"First line^nsecond ^'quoted^' 5^^2\"", 'First line\nsecond "quoted" 5^2'),  # RFC 6868
        (b'"it&#39\\;s outside working hours"', "it's outside working hours"),
        (b'"\xc3\xa9t\xc3\xa9 \xe2\x80\x93 d\xc3\xa9sol\xc3\xa9"', "\u00e9t\u00e9 \u2013 d\u00e9sol\u00e9"),
    ],
)
def test_a_note_in_the_attendees_parameter_is_decoded_into_the_comment(invited, written, kept):
    meeting, person = invited("dana.hughes@vru.example.org")
    raw = _without_comment_property(render("declined_comment.eml", uid=meeting.uid, email=person.email))
    reply = process(_with_attendee_parameter(raw, written))
    assert reply.outcome == ReplyOutcome.APPLIED
    assert rsvp_of(meeting, person).comment == kept
    assert reply.comment == kept


def test_a_note_is_cleaned_and_cut_as_a_comment_typed_on_the_site(invited):
    meeting, person = invited("dana.hughes@vru.example.org")
    note = "Line one\\nline two\twith a tab" + "\x01\x07\x1b" + " and more" + "x" * 2500
    raw = render("declined_comment.eml", uid=meeting.uid, email=person.email).replace(
        b"Clashes with a custody review\\; sorry. Please send the notes\\, though.", note.encode()
    )
    process(raw)
    comment = rsvp_of(meeting, person).comment
    assert comment.startswith("Line one\nline two\twith a tab and morexxx")
    assert len(comment) == rsvps.COMMENT_MAX_LENGTH
    assert first_control(comment, allow=TEXT_AREA_BREAKS) is None


def test_only_the_answering_attendees_note_is_kept(invited, make_member):
    meeting, person = invited("dana.hughes@vru.example.org")
    make_member(email="other@example.org")
    raw = _without_comment_property(render("declined_comment.eml", uid=meeting.uid, email=person.email))
    raw = _with_attendee_parameter(raw, b'"Mine"').replace(
        b"ATTENDEE;PARTSTAT=DECLINED;",
        b'ATTENDEE;PARTSTAT=ACCEPTED;X-RESPONSE-COMMENT="Not mine":mailto:'
        b"other@example.org\r\nATTENDEE;PARTSTAT=DECLINED;",
    )
    reply = process(raw)
    assert reply.member_id == person.id and rsvp_of(meeting, person).comment == "Mine"


# Which answer is newer: DTSTAMPs, whatever the calendar's clock -------------------------------------------

ACCEPT, DECLINE = "outlook_desktop_accepted.eml", "outlook_web_declined.eml"


def written_at(fixture: str, meeting, person, when: dt.datetime) -> CalendarReply:
    """Process the member's reply whose calendar gives `when` as its DTSTAMP."""
    return process(render(fixture, uid=meeting.uid, email=person.email, dtstamp=ical_stamp(when)))


def test_replies_from_a_fast_clock_arriving_out_of_order_keep_the_newer_answer(invited):
    """Both written by a calendar whose clock runs ten minutes fast; the newer one arrives first."""
    meeting, person = invited("ben.okafor@nhs.example.org")
    ahead = utcnow() + dt.timedelta(minutes=10)
    newer = written_at(DECLINE, meeting, person, ahead + dt.timedelta(minutes=1))
    assert newer.outcome == ReplyOutcome.APPLIED
    older = written_at(ACCEPT, meeting, person, ahead)
    assert older.outcome == ReplyOutcome.UNCHANGED
    assert older.reason.startswith("Stale: written") and "before the calendar reply already applied" in older.reason
    rsvp = rsvp_of(meeting, person)
    assert (rsvp.answer, rsvp.comment) == (Answer.DECLINED, "Sorry, I'm on a course that week.")
    assert rsvp.reply_dtstamp == (ahead + dt.timedelta(minutes=1)).replace(microsecond=0)
    assert not outbox(person, "confirmation")


def test_replies_from_a_fast_clock_in_order_each_apply(invited):
    meeting, person = invited("ben.okafor@nhs.example.org")
    ahead = utcnow() + dt.timedelta(minutes=10)
    written_at(ACCEPT, meeting, person, ahead)
    # Processed a moment later, but still written before the first one was processed by this server's clock.
    later = written_at(DECLINE, meeting, person, ahead + dt.timedelta(seconds=1))
    assert later.outcome == ReplyOutcome.APPLIED
    assert rsvp_of(meeting, person).answer == Answer.DECLINED


def test_an_answer_on_the_site_wins_over_an_older_reply_arriving_after_it(invited):
    meeting, person = invited("ben.okafor@nhs.example.org")
    ahead = utcnow() + dt.timedelta(minutes=10)
    written_at(ACCEPT, meeting, person, ahead + dt.timedelta(minutes=1))
    record_answer(meeting.id, person, Answer.MAYBE, source=RsvpSource.WEB)
    db.session.commit()
    # Written by the calendar before the reply applied above, so before the answer on the site too.
    late = written_at(DECLINE, meeting, person, ahead)
    assert late.outcome == ReplyOutcome.UNCHANGED and late.reason.startswith("Stale")
    assert (rsvp_of(meeting, person).answer, rsvp_of(meeting, person).source) == (Answer.MAYBE, RsvpSource.WEB)
    # A reply the calendar wrote after its last one applies over the answer on the site.
    newest = written_at(DECLINE, meeting, person, ahead + dt.timedelta(minutes=2))
    assert newest.outcome == ReplyOutcome.APPLIED
    assert rsvp_of(meeting, person).answer == Answer.DECLINED


def test_a_reply_without_dtstamp_counts_as_written_when_it_is_read(invited):
    meeting, person = invited("dana.hughes@vru.example.org")
    record_answer(meeting.id, person, Answer.GOING, source=RsvpSource.WEB)
    db.session.commit()
    before = utcnow()
    raw = render("declined_comment.eml", uid=meeting.uid, email=person.email)
    raw = b"\n".join(line for line in raw.split(b"\n") if not line.startswith(b"DTSTAMP"))
    assert b"DTSTAMP" not in raw
    reply = process(raw)
    assert reply.outcome == ReplyOutcome.APPLIED
    rsvp = rsvp_of(meeting, person)
    assert rsvp.answer == Answer.DECLINED and before <= rsvp.reply_dtstamp <= utcnow()


def test_a_dtstamp_years_ahead_is_not_believed(invited):
    """Believed, a broken clock would make every later reply from any of the member's calendars stale."""
    meeting, person = invited("ben.okafor@nhs.example.org")
    process(render("outlook_desktop_accepted.eml", uid=meeting.uid, email=person.email, dtstamp="20990101T000000Z"))
    assert rsvp_of(meeting, person).reply_dtstamp < utcnow() + dt.timedelta(minutes=1)
    later = process(
        render(
            "outlook_web_declined.eml",
            uid=meeting.uid,
            email=person.email,
            dtstamp=ical_stamp(utcnow() + dt.timedelta(minutes=1)),
        )
    )
    assert later.outcome == ReplyOutcome.APPLIED


# Idempotence ----------------------------------------------------------------------------------------


def test_the_same_message_twice_is_processed_once(invited):
    meeting, person = invited("tom.reid@icloud.example.com")
    raw = render("apple_accepted.eml", uid=meeting.uid, email=person.email)
    first = process(raw)
    queued = count(OutboxMessage)
    second = replies.process(raw)
    db.session.commit()
    assert second.duplicate and second.reply.id == first.id
    assert count(CalendarReply) == 1 and count(OutboxMessage) == queued


def test_a_message_without_message_id_is_known_by_a_hash_of_its_bytes(invited):
    meeting, person = invited("dana.hughes@vru.example.org")
    raw = render("declined_comment.eml", uid=meeting.uid, email=person.email).replace(b"Message-ID:", b"X-Was-Id:")
    first = process(raw)
    assert first.message_id.startswith("sha256:") and first.outcome == ReplyOutcome.APPLIED
    assert replies.process(raw).duplicate
    assert count(CalendarReply) == 1


# Spoofing and tokens -------------------------------------------------------------------------------


def test_a_reply_naming_one_member_sent_from_another_members_address_changes_nothing(invited, make_member):
    meeting, victim = invited("aoife.walsh@tvp.example.org")
    sender = make_member(email="mallory@example.org", name="Mallory")
    queued = count(OutboxMessage)
    reply = process(render("outlook_web_declined.eml", uid=meeting.uid, email=victim.email, **{"from": sender.email}))
    assert reply.outcome == ReplyOutcome.UNMATCHED
    assert "Sent from mallory@example.org but names aoife.walsh@tvp.example.org" in reply.reason
    assert reply.member_id is None
    assert rsvp_of(meeting, victim) is None and rsvp_of(meeting, sender) is None
    assert count(OutboxMessage) == queued


def test_a_reply_listing_several_attendees_changes_only_the_sender(invited, make_member):
    meeting, person = invited("dana.hughes@vru.example.org")
    other = make_member(email="other@example.org")
    raw = render("declined_comment.eml", uid=meeting.uid, email=person.email).replace(
        b"ATTENDEE;PARTSTAT=DECLINED:mailto:",
        b"ATTENDEE;PARTSTAT=ACCEPTED:mailto:other@example.org\r\nATTENDEE;PARTSTAT=DECLINED:mailto:",
    )
    reply = process(raw)
    assert reply.outcome == ReplyOutcome.APPLIED and reply.member_id == person.id
    assert rsvp_of(meeting, person).answer == Answer.DECLINED
    assert rsvp_of(meeting, other) is None


@pytest.mark.app_config(REPLIES_TOKEN_ADDRESSES=True)
def test_invitations_come_from_a_personal_reply_address_that_matches_replies_from_an_alias(invited):
    meeting, person = invited("aoife.walsh@tvp.example.org")
    invitation = db.session.scalar(select(Invitation).where(Invitation.member_id == person.id))
    address = reply_addresses.reply_address(invitation)
    assert address.startswith("calendar+") and address.endswith("@kxn.test")
    [sent] = outbox(person, "invitation")
    assert address in sent.sender
    organizer = Calendar.from_ical(sent.calendar).walk("VEVENT")[0]["ORGANIZER"]
    assert str(organizer).lower() == f"mailto:{address}"
    # Sent from a personal address the site does not know, naming that address: the token says who.
    reply = process(render("gmail_accepted.eml", uid=meeting.uid, email="aoife.home@gmail.example.com", to=address))
    assert reply.outcome == ReplyOutcome.APPLIED and reply.member_id == person.id
    assert rsvp_of(meeting, person).answer == Answer.GOING


@pytest.mark.app_config(REPLIES_TOKEN_ADDRESSES=True)
def test_a_token_cannot_change_another_member_or_another_meeting(invited, make_member, make_meeting):
    meeting, person = invited("aoife.walsh@tvp.example.org")
    other = make_member(email="ben.okafor@nhs.example.org")
    invitation = db.session.scalar(select(Invitation).where(Invitation.member_id == person.id))
    address = reply_addresses.reply_address(invitation)
    naming_other = process(
        render(
            "gmail_accepted.eml", uid=meeting.uid, email=other.email, **{"from": "anyone@example.net", "to": address}
        )
    )
    assert naming_other.outcome == ReplyOutcome.UNMATCHED and "names ben.okafor@nhs.example.org" in naming_other.reason
    second = make_meeting()
    wrong_meeting = process(
        render(
            "gmail_accepted.eml", uid=second.uid, email=person.email, **{"from": "anyone@example.net", "to": address}
        )
    )
    assert wrong_meeting.outcome == ReplyOutcome.UNMATCHED and "another meeting" in wrong_meeting.reason
    local, _, domain = address.partition("@")
    forged = f"{local[:-3]}aaa@{domain}"
    guessed = process(
        render(
            "gmail_accepted.eml", uid=meeting.uid, email=person.email, **{"from": "anyone@example.net", "to": forged}
        )
    )
    assert guessed.outcome == ReplyOutcome.UNMATCHED and "invalid personal reply address" in guessed.reason
    assert count(Rsvp) == 0


@pytest.mark.parametrize("token", ["\u00b2-abc", "{id}-\u00e9t\u00e9", "\u0661-abc"])
@pytest.mark.parametrize("token_addresses", [False, True])
def test_a_reply_copied_to_an_address_that_only_looks_personal_still_counts_from_the_attendee(
    invited, app, token, token_addresses
):
    """Non-ASCII characters where a token's digits or signature go (a superscript two, an accented letter, an
    Arabic-Indic digit) make no personal reply address; the reply is judged by its sender, as any other."""
    app.config["REPLIES_TOKEN_ADDRESSES"] = token_addresses
    meeting, person = invited("aoife.walsh@tvp.example.org")
    invitation = db.session.scalar(select(Invitation).where(Invitation.member_id == person.id))
    odd = f"calendar+{token.format(id=invitation.id)}@kxn.test"
    reply = process(render("outlook_desktop_accepted.eml", uid=meeting.uid, email=person.email, to=odd))
    assert reply.outcome == ReplyOutcome.APPLIED and reply.member_id == person.id
    assert rsvp_of(meeting, person).answer == Answer.GOING


@pytest.mark.app_config(REPLIES_TOKEN_ADDRESSES=True, REPLIES_REQUIRE_TOKEN=True)
def test_the_strict_setting_counts_only_replies_sent_to_a_personal_address(invited):
    meeting, person = invited("ben.okafor@nhs.example.org")
    plain = process(render("outlook_web_declined.eml", uid=meeting.uid, email=person.email))
    assert plain.outcome == ReplyOutcome.UNMATCHED and "REPLIES_REQUIRE_TOKEN" in plain.reason
    assert rsvp_of(meeting, person) is None
    invitation = db.session.scalar(select(Invitation).where(Invitation.member_id == person.id))
    with_token = process(
        render(
            "outlook_web_declined.eml",
            uid=meeting.uid,
            email=person.email,
            to=reply_addresses.reply_address(invitation),
        )
    )
    assert with_token.outcome == ReplyOutcome.APPLIED
    assert rsvp_of(meeting, person).answer == Answer.DECLINED


def test_the_strict_setting_refuses_to_start_without_personal_addresses(app_config):
    from kxn_meetings import create_app
    from kxn_meetings.config import ConfigError

    with pytest.raises(ConfigError, match="REPLIES_TOKEN_ADDRESSES"):
        create_app({**app_config, "REPLIES_REQUIRE_TOKEN": True})


def test_a_closed_account_cannot_be_answered_for(invited):
    meeting, person = invited("tom.reid@icloud.example.com")
    person.active = False
    db.session.commit()
    reply = process(render("apple_accepted.eml", uid=meeting.uid, email=person.email))
    assert reply.outcome == ReplyOutcome.UNMATCHED and "closed" in reply.reason
    assert rsvp_of(meeting, person) is None


def test_a_reply_that_fails_midway_is_kept_undone_and_never_tried_again(invited, runner, tmp_path, monkeypatch, caplog):
    """A fault while the answer is recorded (here, queuing its confirmation) undoes the answer, keeps the reply as
    unmatched with the reason and logs the error, so the reader does not take the same message up on every run."""
    meeting, person = invited("aoife.walsh@tvp.example.org")
    queued = count(OutboxMessage)

    def broken(result, **_):
        raise RuntimeError("notice could not be queued")

    monkeypatch.setattr(notices, "queue_answer_notices", broken)
    raw = render("outlook_desktop_accepted.eml", uid=meeting.uid, email=person.email)
    first = ingest(runner, tmp_path, raw)
    assert "1 unmatched" in first.output and "could not be processed (RuntimeError)" in first.output
    assert "notice could not be queued" in caplog.text
    [reply] = all_replies()
    assert (reply.outcome, reply.meeting_id, reply.partstat) == (ReplyOutcome.UNMATCHED, meeting.id, "ACCEPTED")
    assert rsvp_of(meeting, person) is None and count(OutboxMessage) == queued
    assert "1 already processed" in ingest(runner, tmp_path, raw).output


# Ingesting from files, folders and standard input -------------------------------------------------------


def test_ingest_reads_an_mbox_a_maildir_a_folder_and_standard_input(invited, make_member, runner, tmp_path):
    meeting, person = invited("dana.hughes@vru.example.org")
    messages = [
        render(
            "declined_comment.eml",
            uid=meeting.uid,
            email=person.email,
            dtstamp=ical_stamp(utcnow() + dt.timedelta(seconds=n)),
        )
        for n in range(4)
    ]
    box = mailbox.mbox(tmp_path / "replies.mbox")
    box.add(messages[0])
    box.add(render("not_reply_plain.eml"))
    box.close()
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    maildir.add(messages[1])
    maildir.flush()
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "one.eml").write_bytes(messages[2])
    (folder / "notes.txt").write_bytes(b"not a message")
    result = runner.invoke(
        args=["kxn", "replies", "ingest", str(tmp_path / "replies.mbox"), str(tmp_path / "Maildir"), str(folder), "-"],
        input=messages[3],
    )
    assert result.exit_code == 0, result.output
    assert "5 message(s): 1 applied, 3 unchanged, 0 counter, 1 unmatched; 0 already processed." in result.output
    assert "No calendar in the message" in result.output
    assert count(CalendarReply) == 5


def test_ingest_reports_an_unreadable_path_and_carries_on(invited, runner, tmp_path):
    meeting, person = invited("dana.hughes@vru.example.org")
    good = tmp_path / "good.eml"
    good.write_bytes(render("declined_comment.eml", uid=meeting.uid, email=person.email))
    result = runner.invoke(args=["kxn", "replies", "ingest", str(tmp_path / "missing.eml"), str(good)])
    assert result.exit_code == 1
    assert "missing.eml: cannot be read" in result.output
    assert "1 applied" in result.output
    assert rsvp_of(meeting, person).answer == Answer.DECLINED


def test_ingest_reads_a_message_from_a_pipe(invited, runner):
    """As from `kxn replies ingest <(some command)`: a path that cannot seek back."""
    meeting, person = invited("dana.hughes@vru.example.org")
    read_end, write_end = os.pipe()
    os.write(write_end, render("declined_comment.eml", uid=meeting.uid, email=person.email))
    os.close(write_end)
    try:
        result = runner.invoke(args=["kxn", "replies", "ingest", f"/dev/fd/{read_end}"])
    finally:
        os.close(read_end)
    assert result.exit_code == 0, result.output
    assert "1 applied" in result.output


def test_fetch_without_a_mailbox_configured_says_what_to_set(runner):
    result = runner.invoke(args=["kxn", "replies", "fetch"])
    assert result.exit_code == 1 and "KXN_REPLIES_IMAP_HOST" in result.output


# The inbound endpoint ----------------------------------------------------------------------------------


def post(client, raw: bytes, secret: str | None = SECRET, **headers):
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    return client.post("/replies/inbound", data=raw, headers=headers, content_type="message/rfc822")


def test_the_inbound_endpoint_is_off_without_a_secret(client, invited):
    meeting, person = invited("tom.reid@icloud.example.com")
    response = post(client, render("apple_accepted.eml", uid=meeting.uid, email=person.email))
    assert response.status_code == 404
    assert count(CalendarReply) == 0


@pytest.mark.app_config(REPLIES_INBOUND_SECRET=SECRET, REPLIES_MAX_BYTES=20_000, WTF_CSRF_ENABLED=True)
def test_the_inbound_endpoint_applies_a_reply_and_refuses_bad_requests_with_reasons(client, invited):
    meeting, person = invited("tom.reid@icloud.example.com")
    raw = render("apple_accepted.eml", uid=meeting.uid, email=person.email)
    assert post(client, raw, secret=None).status_code == 401
    assert post(client, raw, secret="wrong").status_code == 401
    assert post(client, raw, secret=None, Authorization=f"Basic {SECRET}").status_code == 401
    too_large = post(client, raw + b"x" * 20_000)
    assert too_large.status_code == 413 and "at most 20000 bytes" in too_large.get_data(as_text=True)
    empty = post(client, b"")
    assert empty.status_code == 400 and empty.mimetype == "text/plain" and "empty" in empty.get_data(as_text=True)
    assert post(client, b"\x00\x01 just bytes, no headers").status_code == 400
    assert count(CalendarReply) == 0
    response = post(client, raw)  # no CSRF token: the endpoint is exempt, the secret authenticates it
    assert response.status_code == 200
    assert response.get_json() == {"outcome": "applied", "reason": "Recorded as Going.", "duplicate": False}
    assert rsvp_of(meeting, person).answer == Answer.GOING
    assert post(client, raw).get_json()["duplicate"] is True
    unmatched = post(client, render("not_reply_plain.eml"))
    assert unmatched.status_code == 200 and unmatched.get_json()["outcome"] == "unmatched"
    assert client.get("/replies/inbound").status_code == 405


# Too large or nested too deep: refused on every path, with the reason, changing nothing -----------------------


def nested(levels: int, uid: str, email: str) -> bytes:
    """A decline that would count, its calendar inside `levels` multipart parts, each within the one before."""
    head, _, calendar = render("declined_comment.eml", uid=uid, email=email).partition(b"\n\n")
    head = b"\n".join(line for line in head.split(b"\n") if not line.lower().startswith(b"content-"))
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="level%d"\n\n--level%d\n' % (n, n) for n in range(levels)
    )
    closing = b"".join(b"\n--level%d--\n" % n for n in reversed(range(levels)))
    return (
        head + b"\n" + opening + b"Content-Type: text/calendar; method=REPLY; charset=US-ASCII\n\n" + calendar + closing
    )


def padded(raw: bytes, size: int) -> bytes:
    """The message with a header long enough to make it `size` bytes or more."""
    lines = b"\n ".join([b"x" * 76] * (size // 77 + 1))
    return raw.replace(b"\n", b"\nX-Padding: " + lines + b"\n", 1)


def test_messages_nested_within_the_limit_are_read(invited):
    meeting, person = invited("dana.hughes@vru.example.org")
    reply = process(nested(replies.MAX_MIME_DEPTH, meeting.uid, person.email))
    assert reply.outcome == ReplyOutcome.APPLIED
    assert rsvp_of(meeting, person).answer == Answer.DECLINED


@pytest.mark.parametrize("levels", [replies.MAX_MIME_DEPTH + 1, 10_000])
def test_a_message_nested_too_deep_is_refused_quickly_and_stores_nothing(invited, levels):
    meeting, person = invited("dana.hughes@vru.example.org")
    raw = nested(levels, meeting.uid, person.email)
    started = time.perf_counter()
    with pytest.raises(replies.Refused, match="Nested too deep: MIME parts inside one another more than 10 levels"):
        replies.process(raw)
    assert time.perf_counter() - started < 2
    assert rsvp_of(meeting, person) is None and count(CalendarReply) == 0


def test_a_message_of_tens_of_thousands_of_parts_is_refused(invited):
    meeting, person = invited("dana.hughes@vru.example.org")
    raw = nested(1, meeting.uid, person.email).replace(
        b"--level0\n", b"--level0\n" + b"Content-Type: text/calendar\n\nX\n--level0\n" * 30_000, 1
    )
    with pytest.raises(replies.Refused, match="Too many parts"):
        replies.process(raw)
    assert rsvp_of(meeting, person) is None


def test_a_huge_header_is_read_only_in_part(invited):
    """Python's email package takes minutes over a megabyte of encoded words in one header."""
    meeting, person = invited("dana.hughes@vru.example.org")
    raw = render("declined_comment.eml", uid=meeting.uid, email=person.email).replace(
        b"Subject: ", b"Subject: " + b"=?utf-8?q?a?= " * 100_000, 1
    )
    started = time.perf_counter()
    reply = process(raw)
    assert time.perf_counter() - started < 10
    assert reply.outcome == ReplyOutcome.APPLIED


def test_ingest_refuses_messages_too_large_or_nested_too_deep_and_carries_on(invited, make_member, runner, tmp_path):
    meeting, person = invited("dana.hughes@vru.example.org")
    record_answer(meeting.id, person, Answer.GOING, source=RsvpSource.WEB)
    other = make_member(email="ben.okafor@nhs.example.org")
    invite(meeting, other)
    limit = 2 * 1024 * 1024
    big = padded(render("declined_comment.eml", uid=meeting.uid, email=person.email), limit + 1)
    (tmp_path / "1-big.eml").write_bytes(big)
    (tmp_path / "2-deep.eml").write_bytes(nested(replies.MAX_MIME_DEPTH + 1, meeting.uid, person.email))
    (tmp_path / "3-deepest.eml").write_bytes(nested(10_000, meeting.uid, person.email))
    (tmp_path / "4-good.eml").write_bytes(nested(replies.MAX_MIME_DEPTH, meeting.uid, other.email))
    queued = count(OutboxMessage)
    result = runner.invoke(args=["kxn", "replies", "ingest", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"1-big.eml: refused: Too large: {len(big)} bytes; a message may be at most {limit} bytes." in result.output
    assert "2-deep.eml: refused: Nested too deep" in result.output
    assert "3-deepest.eml: refused: Nested too deep" in result.output
    assert (
        "4 message(s): 1 applied, 0 unchanged, 0 counter, 0 unmatched; 0 already processed; 3 refused." in result.output
    )
    rsvp = rsvp_of(meeting, person)
    assert (rsvp.answer, rsvp.source) == (Answer.GOING, RsvpSource.WEB)
    assert rsvp_of(meeting, other).answer == Answer.DECLINED
    [reply] = all_replies()
    assert reply.member_id == other.id
    assert count(OutboxMessage) == queued + 1  # the other member's CANCEL only


@pytest.mark.app_config(REPLIES_MAX_BYTES=20_000)
def test_ingest_refuses_a_large_message_from_standard_input_or_a_mailbox_without_reading_it_all(
    invited, runner, tmp_path
):
    meeting, person = invited("dana.hughes@vru.example.org")
    big = padded(render("declined_comment.eml", uid=meeting.uid, email=person.email), 50_000)
    box = mailbox.mbox(tmp_path / "replies.mbox")
    box.add(big)
    box.close()
    result = runner.invoke(args=["kxn", "replies", "ingest", "-", str(tmp_path / "replies.mbox")], input=big)
    assert result.exit_code == 0, result.output
    assert (
        "standard input: refused: Too large: at least 20001 bytes; a message may be at most 20000 bytes."
        in result.output
    )
    assert "replies.mbox: message 1: refused: Too large: at least 20001 bytes" in result.output
    assert (
        "2 message(s): 0 applied, 0 unchanged, 0 counter, 0 unmatched; 0 already processed; 2 refused." in result.output
    )
    assert rsvp_of(meeting, person) is None and count(CalendarReply) == 0


@pytest.mark.app_config(REPLIES_INBOUND_SECRET=SECRET)
def test_the_inbound_endpoint_refuses_messages_too_large_or_nested_too_deep_with_reasons(client, invited):
    meeting, person = invited("dana.hughes@vru.example.org")
    limit = 2 * 1024 * 1024
    big = padded(render("declined_comment.eml", uid=meeting.uid, email=person.email), limit + 1)
    too_large = post(client, big)
    assert too_large.status_code == 413
    assert too_large.get_data(as_text=True) == (
        f"Too large: {len(big)} bytes; a message may be at most {limit} bytes.\n"
    )
    for levels in (replies.MAX_MIME_DEPTH + 1, 10_000):
        refused = post(client, nested(levels, meeting.uid, person.email))
        assert refused.status_code == 422 and refused.mimetype == "text/plain"
        assert refused.get_data(as_text=True).startswith("Nested too deep: MIME parts inside one another")
    many = post(
        client,
        nested(1, meeting.uid, person.email).replace(
            b"--level0\n", b"--level0\n" + b"Content-Type: text/plain\n\nX\n--level0\n" * 1000, 1
        ),
    )
    assert many.status_code == 422 and many.get_data(as_text=True).startswith("Too many parts: more than 200")
    assert rsvp_of(meeting, person) is None and count(CalendarReply) == 0
    accepted = post(client, nested(replies.MAX_MIME_DEPTH, meeting.uid, person.email))
    assert accepted.status_code == 200 and accepted.get_json()["outcome"] == "applied"


# Never harm, whatever arrives ---------------------------------------------------------------------------


def _mutations():
    sample = render("outlook_web_declined.eml", uid="some-uid@kxn-meetings", email="ben@example.org")
    cut = st.integers(min_value=0, max_value=len(sample))
    return st.one_of(
        st.binary(max_size=2000),
        st.builds(
            lambda a, b, junk: sample[: min(a, b)] + junk + sample[max(a, b) :], cut, cut, st.binary(max_size=60)
        ),
        st.builds(
            lambda text: render("declined_comment.eml", uid="u@x", email="a@b.c").replace(
                b"COMMENT:", b"COMMENT:" + text.encode("utf-8", "surrogatepass")
            ),
            st.text(max_size=80),
        ),
    )


@pytest.mark.app_config(REPLIES_INBOUND_SECRET=SECRET)
@given(raw=_mutations())
def test_arbitrary_bytes_never_raise_or_give_a_server_error(client, runner, tmp_path, raw):
    response = post(client, raw)
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    db.session.rollback()
    processed = replies.process(raw + b"\n")  # a different message, so not a duplicate of the one above
    db.session.commit()
    assert processed.reply.outcome in set(ReplyOutcome)
    path = tmp_path / "arbitrary.eml"
    path.write_bytes(raw + b"\n\n")
    result = runner.invoke(args=["kxn", "replies", "ingest", str(path)])
    assert result.exit_code == 0, result.output
    assert "could not be processed" not in result.output


# The organisers' page ------------------------------------------------------------------------------------


def test_organisers_see_unmatched_replies_with_their_reasons(client, sign_in, organiser, invited, make_member):
    meeting, person = invited("aoife.walsh@tvp.example.org")
    process(render("outlook_desktop_accepted.eml", uid=meeting.uid, email=person.email))
    process(render("outlook_web_declined.eml", uid=meeting.uid, email=person.email, **{"from": "mallory@example.org"}))
    process(render("counter.eml", uid=meeting.uid, email=person.email))
    sign_in(client, organiser)
    everything = client.get("/replies/").get_data(as_text=True)
    assert "Calendar replies" in everything and meeting.title in everything
    assert "Applied" in everything and "Unmatched" in everything
    unmatched = client.get("/replies/?show=unmatched").get_data(as_text=True)
    assert "mallory@example.org" in unmatched and "Sent from mallory@example.org but names" in unmatched
    assert "Looking forward to it." not in unmatched
    counter = client.get("/replies/?show=counter").get_data(as_text=True)
    assert "Proposed: Tuesday 9 March 2027" in counter and "mallory" not in counter
    assert client.get("/replies/?show=nonsense").status_code == 200


def test_the_replies_page_pages_and_shows_an_empty_state(client, sign_in, organiser):
    sign_in(client, organiser)
    assert "No calendar replies yet" in client.get("/replies/").get_data(as_text=True)
    for n in range(55):
        db.session.add(
            CalendarReply(
                message_id=f"<{n}@example.org>",
                sender=f"sender{n}@example.org",
                outcome=ReplyOutcome.UNMATCHED,
                reason="Not a reply.",
            )
        )
    db.session.commit()
    first = client.get("/replies/").get_data(as_text=True)
    assert "sender54@example.org" in first and "sender0@example.org" not in first and "Page 1 of 2" in first
    second = client.get("/replies/?page=2").get_data(as_text=True)
    assert "sender0@example.org" in second


def test_only_organisers_may_see_calendar_replies(client, sign_in, member, organiser):
    response = client.get("/replies/")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    sign_in(client, member)
    assert client.get("/replies/").status_code == 403
    assert "Calendar replies" not in client.get("/").get_data(as_text=True)
    sign_in(client, organiser)
    assert client.get("/replies/").status_code == 200
    assert 'href="/replies/"' in client.get("/").get_data(as_text=True)


def test_nul_and_undecodable_bytes_anywhere_are_stored_safely(invited):
    meeting, person = invited("dana.hughes@vru.example.org")
    raw = render("declined_comment.eml", uid=meeting.uid, email=person.email)
    raw = (
        raw.replace(b"Subject: Declined:", b"Subject: \xff\xfe\x00 Declined:")
        .replace(b"Message-ID: <", b"Message-ID: <\xc3\x28\x00")
        .replace(b"COMMENT:Clashes", b"COMMENT:\x00\xe9\xff Clashes")
    )
    reply = process(raw)
    assert reply.outcome == ReplyOutcome.APPLIED
    assert "Declined:" in reply.subject and "\x00" not in reply.subject + reply.message_id
    assert "\x00" not in rsvp_of(meeting, person).comment and "Clashes" in rsvp_of(meeting, person).comment


def _raw_reply(uid: str, address: str, method: str, *event_lines: str) -> bytes:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Hand made//EN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{address}",
        *event_lines,
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    body = "\r\n".join(lines) + "\r\n"
    head = (
        f"From: {address}\r\nTo: {CALENDAR_ADDRESS}\r\nMessage-ID: <{uuid.uuid4().hex}@example.org>\r\n"
        f"Content-Type: text/calendar; method={method}; charset=utf-8\r\n\r\n"
    )
    return (head + body).encode()


@pytest.mark.parametrize(
    "event_lines",
    [
        ("DTSTAMP:20261205T120000Z", "DTSTART:00010101T000000Z", "DTEND:00010101T010000Z"),
        ("DTSTAMP:20261205T120000Z", "DTSTART:20270309T150000Z", "DURATION:P999999999D"),
        ("DTSTAMP:20261205T120000Z", "DTSTART:99991231T230000Z", "DURATION:P2D"),
        ("DTSTAMP:20261205T120000Z", "DTSTART:00010101T000000Z", "DURATION:-P1D"),
        ("DTSTAMP:20261205T120000Z", "DTSTART;TZID=Asia/Tokyo:00010101T000000", "DURATION:PT1H"),
        ("DTSTAMP:20261205T120000Z", "DTSTART;VALUE=DATE:99991231", "DURATION:P2D"),
    ],
)
def test_a_counter_with_times_no_calendar_could_mean_is_kept_without_them(invited, organiser_client, event_lines):
    """Times outside any plausible calendar (year 1, year 9999, a duration of millennia) are left out of the proposal,
    which is still recorded; the organisers' page of replies shows it."""
    meeting, person = invited("dana.hughes@vru.example.org")
    reply = process(_raw_reply(meeting.uid, person.email, "COUNTER", *event_lines))
    assert reply.outcome == ReplyOutcome.COUNTER
    for value in (reply.proposed_start, reply.proposed_end):
        assert value is None or value.year in replies.PLAUSIBLE_YEARS
    for path in ("/replies/", "/replies/?show=counter"):
        assert organiser_client.get(path).status_code == 200


@pytest.mark.parametrize("stamp", ["DTSTAMP:00010101T000000Z", "DTSTAMP:00010101T000000", "DTSTAMP:99991231T235959Z"])
def test_a_reply_stamped_with_an_impossible_time_is_read_as_written_now(invited, organiser_client, stamp):
    meeting, person = invited("ben.okafor@nhs.example.org")
    record_answer(meeting.id, person, Answer.MAYBE, source=RsvpSource.WEB)
    db.session.commit()
    reply = process(_raw_reply(meeting.uid, person.email, "REPLY", stamp))
    assert reply.outcome == ReplyOutcome.APPLIED
    assert rsvp_of(meeting, person).answer == Answer.GOING
    assert organiser_client.get("/replies/").status_code == 200


def test_a_stored_proposal_at_the_end_of_time_still_shows(invited, organiser_client):
    """A row written before such times were left out still shows, in UTC, rather than breaking the page."""
    meeting, person = invited("dana.hughes@vru.example.org")
    reply = process(
        _raw_reply(meeting.uid, person.email, "COUNTER", "DTSTAMP:20261205T120000Z", "DTSTART:20270309T150000Z")
    )
    reply.proposed_start = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    reply.proposed_end = dt.datetime(9999, 12, 31, 23, tzinfo=dt.UTC)
    db.session.commit()
    for path in ("/replies/", "/replies/?show=counter"):
        response = organiser_client.get(path)
        assert response.status_code == 200 and "9999" in response.get_data(as_text=True)
