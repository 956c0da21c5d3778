"""Subjects and names in mail headers read back exactly as typed: by Python's email package (the default policy
and the compat32 decode_header/make_header path) and by npm mailparser."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from email.header import decode_header, make_header

import pytest
from flask import current_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kxn_meetings.extensions import db
from kxn_meetings.mail import message_bytes
from kxn_meetings.models import Member, MessageKind
from kxn_meetings.services import invitations
from kxn_meetings.services.outbox import queue_email
from kxn_meetings.views.form_pages import REFUSED

from .invitation_checks import mailparser

SUBJECT = "naïve café Zoë Ångström 日本語"
NAMES = [
    'O\'Brien, "Jo" (Met)',
    "Zoë Ó Briain-Łukasiewicz",
    "back\\slash \\N; semi, comma",
    "a@b <c> d",
    "=?utf-8?q?not_an_encoded_word?=",
    "e\u0301\u0301 combining",
    "emoji 👩\u200d👩\u200d👧 family",
    "日本語 テスト",
    "Ελληνικά и русский עברית العربية",
    "\u00a0no-break\u00a0spaces\u00a0",
    "J. Smith",
    "Dr Asha Patel",
    "x" * 90,
    "Ünïcödé " * 24,
    "The Right Honourable Professor Dame Asha Patel of Salford and of Manchester",
    "Dr Zoë Ó Briain, PhD (Thames Valley Police) and the Ångström Institute for Policing Research",
    "(" * 10 + ")" * 10,
    '"',
    "\\",
    "'",
    "_ = ? _",
]
# Subjects up to 400 characters, as the outbox stores them (a meeting title has at most 300).
SUBJECTS = [
    SUBJECT,
    "A" * 200,
    "Meeting three: policing young adults, what works " * 4,
    "Zoë " * 99,
    "word " * 79,
    "=?utf-8?b?SGVsbG8=?= is not a greeting",
    "two  spaces   inside",
    "tab-free; \\N",
    "日本語テスト " * 56,
]


ONE_WORD_OF_A_NAME = re.compile(rb"(From: |To: |Reply-To: | )[^ ]+( <[^ ]+>)?")


def _spaces_squeezed(text: str) -> str:
    """A name as it goes into a header: each run of white space one space, none at either end."""
    return " ".join(text.split())


def build(subject: str, name: str, sender_name: str, reply_to: str | None = None) -> bytes:
    """The bytes of a message with this subject to a member of this name, from the network of this name, built as
    invitations are (calendar_sender() writes the From; the member's name becomes the To)."""
    db.session.rollback()
    current_app.config["NETWORK_NAME"] = sender_name
    member = Member(name=name, email="member@example.org")
    row = queue_email(
        kind=MessageKind.SIGN_IN,
        to=member,
        subject=subject,
        template="sign_in",
        context={"token": "t", "code": "000000", "minutes": 15},
        sender=invitations.calendar_sender(),
        reply_to=reply_to,
    )
    data = message_bytes(row)
    db.session.rollback()
    return data


def python_reads(data: bytes) -> dict:
    """Subject and names as the email package reads them, both ways; asserts the two ways agree."""
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    # Over 78 characters only where one word of a display name is longer (an encoded-word may be: see
    # mail.headers._phrase()).
    long = [line for line in lines if len(line) > 78 and not ONE_WORD_OF_A_NAME.fullmatch(line)]
    assert not long, long
    modern = email.message_from_bytes(data, policy=email.policy.default)
    assert not modern["Subject"].defects and not modern["To"].defects and not modern["From"].defects
    [to], [sender] = modern["To"].addresses, modern["From"].addresses
    seen = {
        "subject": str(modern["Subject"]),
        "to": (to.display_name, to.addr_spec),
        "from": (sender.display_name, sender.addr_spec),
    }

    old = email.message_from_bytes(data)  # compat32, as most scripts and older libraries read mail
    subject = str(make_header(decode_header(old["Subject"])))
    to_name, to_address = email.utils.parseaddr(old["To"])
    from_name, from_address = email.utils.parseaddr(old["From"])
    assert {
        "subject": subject,
        "to": (str(make_header(decode_header(to_name))), to_address),
        "from": (str(make_header(decode_header(from_name))), from_address),
    } == seen
    return seen


def node_reads(result: dict) -> dict:
    [to], [sender] = result["to"], result["from"]
    return {
        "subject": result["subject"],
        "to": (to["name"], to["address"]),
        "from": (sender["name"], sender["address"]),
    }


def expected(subject: str, name: str, sender_name: str) -> dict:
    return {
        "subject": subject,
        "to": (_spaces_squeezed(name), "member@example.org"),
        "from": (_spaces_squeezed(sender_name), "calendar@kxn.test"),
    }


def test_the_issue_examples_read_back_as_typed(app):
    cases = [
        (SUBJECT, "Zoë Ångström", "Knowledge Exchange Network"),
        ("B" * 200, 'O\'Brien, "Jo" (Met)', 'KXN, "the" network (UK)'),
        ("Invitation: " + "policing young adults " * 10, "日本語 テスト", "Réseau d'échange"),
    ]
    raws = [build(*case) for case in cases]
    assert raws[0].split(b"\r\n")[0] == b"Subject: =?utf-8?b?bmHDr3ZlIGNhZsOpIFpvw6sgw4VuZ3N0csO2bSDml6XmnKzoqp4=?="
    for data in raws:
        head = data.split(b"\r\n\r\n")[0]
        assert b"?==?" not in head and b"=?utf-8?q??=" not in head and b"=?utf-8?b??=" not in head
        assert not re.search(rb"^(Subject|From|To):\r\n", head, re.MULTILINE), "folded straight after the colon"
    for data, case, parsed in zip(raws, cases, mailparser(raws), strict=True):
        assert python_reads(data) == expected(*case)
        assert node_reads(parsed) == expected(*case)


def test_every_listed_name_and_subject_reads_back_as_typed(app):
    cases = [
        (subject, name, NAMES[(n + 3) % len(NAMES)])
        for n, (subject, name) in enumerate(zip(SUBJECTS * 3, NAMES, strict=False))
    ]
    cases += [(SUBJECTS[n % len(SUBJECTS)], name, name) for n, name in enumerate(NAMES)]
    raws = [build(*case) for case in cases]
    for data, case, parsed in zip(raws, cases, mailparser(raws), strict=True):
        assert python_reads(data) == expected(*case), case
        assert node_reads(parsed) == expected(*case), case


def test_a_subject_over_998_octets_is_folded_and_read_back_whole(app):
    subject = "日本語テスト " * 56  # 392 characters, 1,064 octets in UTF-8
    data = build(subject, "Sam", "KXN")
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    assert python_reads(data)["subject"] == subject
    assert node_reads(mailparser([data])[0])["subject"] == subject


def test_reply_to_reads_back_as_typed(app):
    data = build("Hello", "Sam", "KXN", reply_to='"Équipe \\"KXN\\", (replies)" <team@kxn.test>')
    message = email.message_from_bytes(data, policy=email.policy.default)
    [reply_to] = message["Reply-To"].addresses
    assert (reply_to.display_name, reply_to.addr_spec) == ('Équipe "KXN", (replies)', "team@kxn.test")
    [parsed] = mailparser([data])
    assert parsed["reply_to"] == [{"name": 'Équipe "KXN", (replies)', "address": "team@kxn.test"}]


text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=120)
awkward = st.text(st.sampled_from(list(" \\N;,\"'()<>@:.[]=?_ é日😀\u0301\u00a0\u200d")), min_size=1, max_size=60)
names = (text | awkward).filter(lambda name: _spaces_squeezed(name) != "")


def test_any_printable_title_and_names_read_back_as_typed(app):
    """Hypothesis writes the titles and names; Python checks each message at once, mailparser reads them all in one
    node run afterwards."""
    built: list[tuple[tuple[str, str, str], bytes]] = []

    @settings(database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(title=text | awkward, name=names, network=names)
    def check(title: str, name: str, network: str) -> None:
        case = (f"Invitation: {title} (Tue 9 Mar, 3–5pm GMT)", name, network)
        data = build(*case)
        assert python_reads(data) == expected(*case)
        built.append((case, data))

    check()
    for (case, _), parsed in zip(built, mailparser([data for _, data in built]), strict=True):
        assert node_reads(parsed) == expected(*case), case


@pytest.mark.parametrize("name", ["Sam\r\nBcc: x@example.org", "Sam\u2028Bcc", "Sam\x85Bcc", "Sam\x0bBcc"])
def test_a_line_break_in_a_name_never_reaches_a_header(app, name):
    from kxn_meetings.services.outbox import HeaderInjection

    with pytest.raises(HeaderInjection):
        build("Hello", name, "KXN")


def test_names_and_titles_are_single_spaced_at_input_and_line_breaks_refused(app, member_client, member):
    response = member_client.post("/profile", data={"name": "  Zoë\u00a0\u00a0Ó \tBriain  ", "organisation": ""})
    assert response.status_code == 302
    db.session.refresh(member)
    assert member.name == "Zoë Ó Briain"
    for broken in ["Sam\u2028Member", "Sam\x85Member", "Sam\x0bMember", "Sam\x7fMember"]:
        response = member_client.post("/profile", data={"name": broken, "organisation": ""})
        assert response.status_code == REFUSED, repr(broken)  # the form again, with its message
        db.session.refresh(member)
        assert member.name == "Zoë Ó Briain"


@given(
    name=text | awkward,
    local=st.from_regex(r"[A-Za-z0-9._%+'-]{1,20}", fullmatch=True),
    domain=st.sampled_from(["example.org", "kxn.example.org", "bücher.example"]),
)
def test_the_envelope_address_is_the_one_the_header_names(app, name, local, domain):
    """The delivery loop reads MAIL FROM and RCPT TO off the stored `Name <address>` without the email package's
    parser; whatever the name holds, it must find the same address the parser does."""
    from kxn_meetings.mail.smtp import _envelope
    from kxn_meetings.services.outbox import format_address

    address = f"{local.strip('.') or 'a'}@{domain}"
    try:
        stored = format_address(name, address)
    except ValueError:
        return
    expected = email.utils.parseaddr(stored)[1]
    if expected.isascii():
        assert _envelope(stored) == expected
    else:
        assert _envelope(stored).endswith("@xn--bcher-kva.example")
