"""Every route in the app, with hand-typed nonsense in each part of its URL, query string and form: never a 5xx.

The rules are read from app.url_map, so a route added later is covered without touching this file. PostgreSQL
is where it matters most: a number past a 32-bit id column is an error there ("integer out of range"), not a miss.
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote, urlencode

import pytest

from kxn_meetings.extensions import db
from kxn_meetings.models import MAX_ID, parse_id
from kxn_meetings.services import notes as notes_service
from kxn_meetings.urls import IdConverter
from kxn_meetings.views.paging import MAX_PAGE

from .meeting_helpers import failed_message
from .notes_helpers import PDF, past_meeting, write_notes

ABSURD = ["0", "-1", "2147483648", "9223372036854775808", "1" * 30, "abc", "1e9", "\u0663", "caf\u00e9 \u2603", "\x00"]
QUERY_NAMES = [
    "page",
    "per_page",
    "limit",
    "count",
    "offset",
    "from",
    "to",
    "year",
    "status",
    "show",
    "answer",
    "start",
    "q",
    "next",
    "email",
    "id",
]
FORM_NAMES = [
    "id",
    "member_id",
    "attended",
    "contact_id",
    "capacity",
    "status",
    "answer",
    "email",
    "name",
    "title",
    "reason",
    "payload",
    "code",
    "password",
    "next",
    "recipients",
    "action",
    "date",
    "start_time",
    "end_time",
    "timezone",
    "visibility",
    "agenda-0-title",
    "agenda-0-start_time",
    "rooms-0-name",
    "actions-0-id",
    "actions-0-text",
    "actions-0-due_date",
    "organisations",
    "addresses",
    "page",
    "delete-email",
    "password-email",
    "password-password",
    "comment",
    "access_needs",
    "description",
    "theme",
    "location",
    "join_url",
    "organisation",
    "job_title",
    "summary",
    "body",
    "q",
    "preview",
    "rsvp_deadline_date",
    "end_date",
    "create_members",
]
# Signing out or deleting the account would leave the rest of the walk anonymous; the walk signs in again after.
SIGNS_OUT = {"auth.sign_out", "members.delete_account"}
PLACEHOLDER = re.compile(r"<(?:[^<>]*:)?(\w+)>")


@pytest.fixture
def world(make_meeting, organiser, member):
    """A past meeting with published notes, an open action and an attachment, and a message in the outbox: a real
    meeting in the URL takes the walk past the meeting's 404 into the routes' own ids."""
    meeting = past_meeting(make_meeting, slug="past-meeting")
    notes = write_notes(meeting, organiser, actions=[notes_service.ActionRow(text="Write to the speakers")])
    notes_service.attach(notes, "slides.pdf", PDF, organiser)
    failed_message("walk")
    db.session.commit()
    return {"slug": meeting.slug, "id": str(meeting.id)}


def _paths(rule, world: dict):
    """(path, absurd value) for one rule: every placeholder absurd; then a real meeting with the rest absurd."""
    names = PLACEHOLDER.findall(rule.rule)
    for ref in [None] + ([world["slug"]] if "ref" in names else []):
        for value in ABSURD:
            values = dict.fromkeys(names, value) | ({"ref": ref} if ref else {})
            path = PLACEHOLDER.sub(lambda m, values=values: quote(values[m.group(1)], safe="") or "x", rule.rule)
            yield path, value


def _walk(app, client, world: dict, sign_in_again) -> tuple[list[str], int]:
    failures, requests = [], 0
    for rule in app.url_map.iter_rules():
        methods = sorted(rule.methods & {"GET", "POST"})
        for path, value in _paths(rule, world):
            query = urlencode(dict.fromkeys(QUERY_NAMES, value))
            for method in methods:
                data = dict.fromkeys(FORM_NAMES, value) if method == "POST" else None
                response = client.open(f"{path}?{query}", method=method, data=data)
                response.close()
                requests += 1
                if response.status_code >= 500:
                    failures.append(f"{method} {path}?{query[:60]}... -> {response.status_code}")
                if method == "POST" and rule.endpoint in SIGNS_OUT:
                    sign_in_again()
    return failures, requests


@pytest.mark.slow
@pytest.mark.app_config(LOGIN_RATE_LIMIT_PER_CLIENT=100_000, LOGIN_RATE_LIMIT=100_000)
@pytest.mark.parametrize("role", ["anonymous", "member", "organiser"])
def test_no_route_answers_5xx_to_hand_typed_values(app, client, sign_in, member, organiser, world, role):
    who = {"member": member, "organiser": organiser}.get(role)

    def sign_in_again():
        if who is not None:
            sign_in(client, who)

    sign_in_again()
    started = time.perf_counter()
    failures, requests = _walk(app, client, world, sign_in_again)
    assert not failures, "\n".join(failures[:40])
    assert requests > 800
    assert time.perf_counter() - started < 120


@pytest.mark.parametrize(
    "path",
    [
        "/members?page=" + "9" * 30,
        "/meetings/2147483648/notes",
        "/meetings/2147483648/calendar.ics",
        "/outbox/" + "1" * 20,
        "/members/2147483648/edit",
        "/meetings/past-meeting/notes/attachments/2147483648",
        "/outbox/" + "9" * 5000,
        "/meetings/" + "9" * 5000,
        "/members?page=" + "9" * 5000,
        "/notes?page=1e9",
        "/outbox/?page=-1",
        "/replies/?page=" + "9" * 30,
    ],
)
def test_the_reported_urls_are_404_or_a_page(organiser_client, world, path):
    assert organiser_client.get(path).status_code in (200, 404)


def test_every_number_in_a_route_is_a_bounded_id(app):
    """`<int:...>` would hand any number to the database; routes use `<id:...>`, bounded to the id columns."""
    for rule in app.url_map.iter_rules():
        for name, converter in rule._converters.items():
            if converter.regex == r"\d+" or hasattr(converter, "num_convert"):
                assert isinstance(converter, IdConverter), f"{rule.rule}: <{name}> is not an <id:...>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1),
        (" 42 ", 42),
        (str(MAX_ID), MAX_ID),
        (str(MAX_ID + 1), None),
        ("0", None),
        ("-1", None),
        ("1e9", None),
        ("\u0663", None),
        ("\u00b2", None),
        ("", None),
        (None, None),
        ("9" * 5000, None),
    ],
)
def test_ids_typed_by_people_fit_the_id_columns(value, expected):
    assert parse_id(value) == expected


def test_a_page_number_past_the_end_shows_the_last_page(organiser_client, make_member):
    for n in range(3):
        make_member(name=f"Paged {n}")
    for page in ("0", "-1", "abc", "1e9", "9" * 30, str(MAX_PAGE * 10)):
        response = organiser_client.get(f"/members?page={quote(page)}")
        assert response.status_code == 200, page
        assert "Paged 2" in response.text
