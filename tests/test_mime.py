"""The MIME layout of every email, walked part by part as a mail client would read it."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import unicodedata
from email.errors import MessageError
from email.headerregistry import Address

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from icalendar import Calendar, Event, vCalAddress
from sqlalchemy import func, select

from kxn_meetings.extensions import db
from kxn_meetings.mail import build_message
from kxn_meetings.models import OutboxMessage
from kxn_meetings.services.outbox import BadAddress, HeaderInjection, format_address, queue_email


def invitation(summary: str = "Meeting two: young adults & the courts; notes, actions") -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//Knowledge Exchange Network//Meetings//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")
    event = Event()
    event.add("uid", "meeting-2@kxn.test")
    event.add("sequence", 1)
    event.add("dtstamp", dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC))
    event.add("dtstart", dt.datetime(2026, 3, 9, 15, 0, tzinfo=dt.UTC))
    event.add("dtend", dt.datetime(2026, 3, 9, 17, 0, tzinfo=dt.UTC))
    event.add("summary", summary)
    event.add("description", "Agenda: " + "ausführlich, " * 20)
    event.add("organizer", vCalAddress("mailto:calendar@kxn.test"), parameters={"cn": "Knowledge Exchange Network"})
    event.add(
        "attendee",
        vCalAddress("mailto:zoe@example.org"),
        parameters={"cn": "Zoë Ó Briain", "role": "REQ-PARTICIPANT", "partstat": "NEEDS-ACTION", "rsvp": "TRUE"},
    )
    calendar.add_component(event)
    return calendar.to_ical()


def queue(to="Zoë Ó Briain <zoe@example.org>", subject="Invitation: Meeting two — 9 March", **values):
    return queue_email(
        kind="invitation",
        to=to,
        subject=subject,
        template="sign_in",
        context={"token": "t", "code": "000000", "minutes": 15},
        **values,
    )


def parsed(row: OutboxMessage) -> email.message.EmailMessage:
    raw = build_message(row).as_bytes()
    raw.decode("ascii")  # 7-bit clean: no server can mangle it
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    return email.message_from_bytes(raw, policy=email.policy.default)


def layout(part) -> list:
    if part.is_multipart():
        return [part.get_content_type(), [layout(child) for child in part.iter_parts()]]
    return part.get_content_type()


def test_an_invitation_is_mixed_alternative_with_the_calendar_last_and_attached(app, make_member):
    calendar = invitation()
    zoe = make_member(name="Zoë Ó Briain", email="zoe@example.org")
    message = parsed(queue(to=zoe, calendar=calendar, calendar_method="REQUEST"))

    assert layout(message) == [
        "multipart/mixed",
        [
            ["multipart/alternative", ["text/plain", "text/html", "text/calendar"]],
            "application/ics",
        ],
    ]
    alternative, attachment = message.iter_parts()
    text, html, calendar_part = alternative.iter_parts()
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert calendar_part.get_param("method") == "REQUEST"
    assert calendar_part.get_content_charset() == "utf-8"
    assert calendar_part.get_content_disposition() is None  # inline: the part calendars act on
    assert calendar_part.get_payload(decode=True) == calendar  # byte for byte, CRLF line endings included
    assert Calendar.from_ical(calendar_part.get_payload(decode=True))["METHOD"] == "REQUEST"

    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_payload(decode=True) == calendar
    assert "Hello Zoë Ó Briain" in text.get_content()
    assert "Zoë Ó Briain" in html.get_content()


def test_a_message_without_calendar_is_plain_text_and_html(app):
    message = parsed(queue(to="sam@example.org", subject="Your sign-in link"))
    assert layout(message) == ["multipart/alternative", ["text/plain", "text/html"]]
    assert list(message.iter_attachments()) == []
    assert message["Auto-Submitted"] == "auto-generated"


def test_names_and_subjects_outside_ascii_arrive_intact(app, make_member):
    member = make_member(name='Zoë Ó Briain-Łukasiewicz, "DCI"', email="zoe@example.org")
    subject = "Réunion — Zoë’s notes: “café” ☕ " + "and a long subject that has to be folded " * 3
    row = queue(to=member, subject=subject, reply_to="Équipe KXN <team@kxn.test>")
    db.session.commit()
    message = parsed(row)
    assert message["Subject"] == subject
    [to] = message["To"].addresses
    assert (to.display_name, to.addr_spec) == ('Zoë Ó Briain-Łukasiewicz, "DCI"', "zoe@example.org")
    [reply_to] = message["Reply-To"].addresses
    assert (reply_to.display_name, reply_to.addr_spec) == ("Équipe KXN", "team@kxn.test")
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Knowledge Exchange Network", "meetings@kxn.test")
    assert message["Message-ID"] == row.message_id
    assert abs(message["Date"].datetime - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)  # time of sending
    assert not message.defects and not message["To"].defects


def test_a_long_html_line_is_wrapped_safely_and_read_back_whole(app):
    row = queue(to="sam@example.org")
    row.html_body = "<p>" + "Ünïcode words in one very long paragraph " * 100 + "</p>"
    message = parsed(row)
    assert message.get_body(("html",)).get_content().rstrip("\r\n") == row.html_body


@pytest.mark.parametrize(
    "values",
    [
        {"to": "sam@example.org\r\nBcc: everyone@example.org"},
        {"to": "Sam\n <sam@example.org>"},
        {"subject": "Hello\r\nBcc: everyone@example.org"},
        {"subject": "Hello\nthere"},
        {"subject": "Hello\u2028there"},
        {"reply_to": "team@kxn.test\nBcc: x@example.org"},
    ],
)
def test_a_line_break_bound_for_a_header_is_refused_when_queued(app, values):
    with pytest.raises(HeaderInjection):
        queue(**values)
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0


def test_a_member_name_with_a_line_break_is_refused_when_queued(app, make_member):
    member = make_member(name="Sam\r\nBcc: everyone@example.org")
    with pytest.raises(HeaderInjection):
        queue(to=member)


@pytest.mark.parametrize("to", ["two@example.org, people@example.org", "not an address", "a@b@c.org", ""])
def test_anything_but_one_address_is_refused_when_queued(app, to):
    with pytest.raises(BadAddress):
        queue(to=to)


def _as_the_email_package_reads_it(name: str, email: str) -> str:
    try:
        address = Address(display_name=" ".join(name.split()), addr_spec=email.strip())
    except (ValueError, IndexError, MessageError):
        raise BadAddress(email) from None
    if not address.username or not address.domain:
        raise BadAddress(email)
    return str(address)


def _outcome(format_, name: str, email: str) -> str:
    try:
        return format_(name, email)
    except Exception as error:
        return type(error).__name__


@given(
    name=st.text(max_size=30) | st.sampled_from(["Dr Asha Patel", "J. Smith", 'Sam "DCI" Jones', "O'Brien, Pat"]),
    email=st.text(alphabet="aZ09!#$%&'*+/=?^_`{|}~-.@\"()<>,;:[] \t\u00e9", max_size=24)
    | st.from_regex(r"[a-z0-9._+-]{1,20}@[a-z0-9.-]{1,20}", fullmatch=True),
)
def test_an_address_is_written_as_the_email_package_reads_it(name, email):
    assume(all(unicodedata.category(c) not in ("Cc", "Zl", "Zp") for c in name + email))
    assert _outcome(format_address, name, email) == _outcome(_as_the_email_package_reads_it, name, email)


def test_a_calendar_must_say_the_method_the_mime_part_says(app):
    with pytest.raises(ValueError, match="METHOD:CANCEL"):
        queue(calendar=invitation(), calendar_method="CANCEL")
    with pytest.raises(ValueError):
        queue(calendar=invitation())
