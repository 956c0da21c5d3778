"""Every form refuses the same way: the page again, status 422, and the message next to the field.

A name or title with a line break is refused with "Please keep this on one line."; a tab, NUL or other control
character with "This contains characters that cannot be used." Text areas take line breaks and tabs, but refuse
other control characters the same way.
"""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, Meeting, Member, OutboxMessage, Rsvp
from kxn_meetings.services import invitations as invitation_service
from kxn_meetings.views.form_pages import REFUSED

from .html_forms import field_error
from .meeting_helpers import future_day, meeting_form

ONE_LINE = "Please keep this on one line."
UNUSABLE = "This contains characters that cannot be used."
LINE_BREAKS = ["\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x85", "\u2028", "\u2029"]
CONTROLS = ["\x00", "\x07", "\x1b", "\x7f", "\x9b"]


@pytest.fixture
def world(make_meeting, make_member, member):
    meeting = make_meeting(title="Meeting with a form", slug="with-a-form")
    other = make_member(name="Edited Member", email="edited@example.org")
    token = invitation_service.personal_link(meeting, member).token
    db.session.add(Rsvp(meeting_id=meeting.id, member_id=other.id, answer=Answer.GOING))  # someone to message
    db.session.commit()
    return {"slug": meeting.slug, "other": other.id, "token": token}


# (form, who, path, valid data, field posted, field as named in the page)
LINE_FIELDS = [
    ("sign-in", None, "/sign-in", {"email": "ann@example.org"}, "email"),
    ("code entry", None, "/sign-in/code", {"email": "ann@example.org", "code": "123456"}, "email"),
    (
        "password sign-in",
        None,
        "/sign-in/password",
        {"password-email": "ann@example.org", "password-password": "a password"},
        "password-email",
    ),
    ("profile", "member", "/profile", {"name": "Ann Lee", "organisation": "", "job_title": ""}, "name"),
    (
        "profile organisation",
        "member",
        "/profile",
        {"name": "Ann Lee", "organisation": "VRU", "job_title": ""},
        "organisation",
    ),
    ("new member", "organiser", "/members/new", {"name": "Ann Lee", "email": "ann@example.org", "active": "y"}, "name"),
    (
        "edit member",
        "organiser",
        "/members/{other}/edit",
        {"name": "Ann Lee", "email": "edited@example.org", "active": "y"},
        "name",
    ),
    ("new meeting", "organiser", "/meetings/new", meeting_form(), "title"),
    ("new meeting agenda item", "organiser", "/meetings/new", meeting_form(), "agenda-1-speaker_name"),
    ("new meeting room", "organiser", "/meetings/new", meeting_form(), "rooms-0-name"),
    ("edit meeting", "organiser", "/meetings/{slug}/edit", meeting_form(), "title"),
    ("notes", "organiser", "/meetings/{slug}/notes/edit", {"title": "Notes", "body": "Text"}, "title"),
    (
        "notes action",
        "organiser",
        "/meetings/{slug}/notes/edit",
        {"title": "Notes", "actions-0-text": "Write up", "actions-0-owner": "Ann"},
        "actions-0-owner",
    ),
]
MESSAGE = {"audience": "going", "subject": "Pre-reading", "body": "Please read the strategy."}
LINE_FIELDS.append(("message to members", "organiser", "/meetings/{slug}/message", MESSAGE, "subject"))
TEXT_FIELDS = [
    ("message to members body", "organiser", "/meetings/{slug}/message", MESSAGE, "body"),
    ("cancel meeting", "organiser", "/meetings/{slug}/cancel", {"reason": "Speakers unwell"}, "reason"),
    ("rsvp", "member", "/meetings/{slug}/rsvp", {"answer": "going", "comment": "See you"}, "comment"),
    (
        "personal answer",
        None,
        "/meetings/{slug}/answer/{token}",
        {"answer": "going", "access_needs": "Ramp"},
        "access_needs",
    ),
    (
        "invitations",
        "organiser",
        "/meetings/{slug}/invite",
        {"recipients": "addresses", "addresses": "ann@example.org", "action": "preview"},
        "addresses",
    ),
    ("notes body", "organiser", "/meetings/{slug}/notes/edit", {"title": "Notes", "body": "Text"}, "body"),
    ("meeting description", "organiser", "/meetings/new", meeting_form(), "description"),
]


def _state() -> tuple:
    db.session.expire_all()
    return (
        db.session.execute(select(Member.name, Member.organisation).order_by(Member.id)).all(),
        db.session.execute(select(Meeting.title, Meeting.status).order_by(Meeting.id)).all(),
        db.session.scalar(select(func.count(Rsvp.id))),
        db.session.scalar(select(func.count(OutboxMessage.id))),
    )


def _post(client, sign_in, who, path, data, world):
    if who is not None:
        sign_in(client, who)
    before = _state()
    response = client.post(path.format(**world), data=data)
    assert _state() == before, "a refused form changed something"
    return response


def _bad(value: str, inside: str) -> str:
    """The bad characters in the middle of a good value, where stripping cannot remove them."""
    middle = len(inside) // 2 or 1
    return inside[:middle] + value + inside[middle:]


@pytest.mark.parametrize("character", LINE_BREAKS + CONTROLS, ids=repr)
@pytest.mark.parametrize(("form", "role", "path", "data", "field"), LINE_FIELDS, ids=[f[0] for f in LINE_FIELDS])
def test_line_fields_refuse_line_breaks_and_control_characters(
    client, sign_in, member, organiser, world, form, role, path, data, field, character
):
    who = {"member": member, "organiser": organiser}.get(role)
    response = _post(client, sign_in, who, path, {**data, field: _bad(character, data[field] or "Ann Lee")}, world)
    assert response.status_code == REFUSED
    assert (ONE_LINE if character in LINE_BREAKS else UNUSABLE) in response.text
    assert 'aria-invalid="true"' in response.text or "error" in response.text


# A tab is white space: names and titles are single-spaced (see test_mail_headers), and an address holds none.
TAB_REFUSED = {"sign-in", "code entry", "password sign-in"}


@pytest.mark.parametrize(("form", "role", "path", "data", "field"), LINE_FIELDS, ids=[f[0] for f in LINE_FIELDS])
def test_a_tab_in_a_line_field_is_one_space_or_refused_where_no_space_belongs(
    client, sign_in, member, organiser, world, form, role, path, data, field
):
    who = {"member": member, "organiser": organiser}.get(role)
    if who is not None:
        sign_in(client, who)
    response = client.post(path.format(**world), data={**data, field: _bad("\t", data[field] or "Ann Lee")})
    if form in TAB_REFUSED:
        assert response.status_code == REFUSED
        assert UNUSABLE in response.text
    else:
        assert response.status_code in (200, 302)
        assert UNUSABLE not in response.text


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\x7f", "\x9b", "\v"], ids=repr)
@pytest.mark.parametrize(("form", "role", "path", "data", "field"), TEXT_FIELDS, ids=[f[0] for f in TEXT_FIELDS])
def test_text_areas_refuse_control_characters_but_take_line_breaks(
    client, sign_in, member, organiser, world, form, role, path, data, field, character
):
    who = {"member": member, "organiser": organiser}.get(role)
    response = _post(client, sign_in, who, path, {**data, field: _bad(character, data[field])}, world)
    assert response.status_code == REFUSED
    assert UNUSABLE in response.text


@pytest.mark.parametrize(
    ("form", "role", "path", "data", "message"),
    [
        ("sign-in without an address", None, "/sign-in", {"email": ""}, "Enter your email address."),
        (
            "a wrong code",
            None,
            "/sign-in/code",
            {"email": "ann@example.org", "code": "123456"},
            "That code is not right or has expired.",
        ),
        ("an email that is not one", None, "/sign-in", {"email": "not an address"}, "Enter an email address like"),
        (
            "new member without a name",
            "organiser",
            "/members/new",
            {"name": "", "email": "ann@example.org"},
            "Enter a name.",
        ),
        (
            "a member's address taken twice",
            "organiser",
            "/members/new",
            {"name": "Twin", "email": "sam@example.org"},
            "sam@example.org",
        ),
        ("import without a file", "organiser", "/members/import", {}, "Choose a CSV file."),
        ("profile without a name", "member", "/profile", {"name": ""}, "Enter a name."),
        (
            "deleting the account with another address",
            "member",
            "/profile/delete",
            {"delete-email": "other@example.org"},
            "That is not the email address of this account.",
        ),
        (
            "a password too short",
            "organiser",
            "/account/password",
            {"password": "short", "confirm": "short"},
            "Use at least 12 characters.",
        ),
        ("a meeting without a title", "organiser", "/meetings/new", meeting_form(title=""), "Enter a title."),
        ("a meeting with capacity zero", "organiser", "/meetings/new", meeting_form(capacity="0"), "Capacity is"),
        (
            "a meeting with a huge capacity",
            "organiser",
            "/meetings/new",
            meeting_form(capacity="9" * 30),
            "Capacity is",
        ),
        (
            "a meeting with a contact that is nobody",
            "organiser",
            "/meetings/new",
            meeting_form(contact_id="2147483648"),
            "Choose a contact from the list",
        ),
        ("cancelling without a reason", "organiser", "/meetings/{slug}/cancel", {"reason": ""}, "Say briefly why"),
        ("an RSVP without an answer", "member", "/meetings/{slug}/rsvp", {"answer": ""}, "Choose Going, Maybe"),
        (
            "an RSVP answer not in the list",
            "member",
            "/meetings/{slug}/rsvp",
            {"answer": "2147483648"},
            "Choose Going, Maybe",
        ),
        (
            "a personal answer without an answer",
            None,
            "/meetings/{slug}/answer/{token}",
            {"answer": ""},
            "Choose Going, Maybe",
        ),
        (
            "inviting chosen addresses without any",
            "organiser",
            "/meetings/{slug}/invite",
            {"recipients": "addresses", "addresses": ""},
            "Paste at least one email address.",
        ),
        (
            "notes without a title",
            "organiser",
            "/meetings/{slug}/notes/edit",
            {"title": "", "body": "x"},
            "Enter a title.",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else None,
)
def test_every_form_refuses_with_422_and_its_message(
    client, sign_in, member, organiser, world, form, role, path, data, message
):
    who = {"member": member, "organiser": organiser}.get(role)
    if form == "import without a file":
        data = {"file": (io.BytesIO(b""), "")}
    response = _post(client, sign_in, who, path, data, world)
    assert response.status_code == REFUSED
    assert message in response.text


@pytest.mark.parametrize("path", ["/meetings/new", "/meetings/{slug}/edit"], ids=["new", "edit"])
def test_a_refused_meeting_form_names_every_problem_at_once(organiser_client, world, path):
    """A field the form refuses does not hide the meeting's own rules: the organiser corrects everything in one go."""
    data = meeting_form(
        capacity="lots",
        end_time="14:00",
        rsvp_deadline_date=future_day(400).isoformat(),
        **{"agenda-1-title": "", "agenda-1-speaker_name": ""},
        **{"agenda-1-speaker_role": "Research lead"},
    )
    response = organiser_client.post(path.format(**world), data=data)
    assert response.status_code == REFUSED
    page = response.get_data(as_text=True)
    assert field_error(page, "capacity")
    assert "The meeting must end after it starts." in (field_error(page, "end_time") or "")
    assert "The answer-by date must be before the meeting starts." in (field_error(page, "rsvp_deadline_date") or "")
    assert "Give this agenda item a title or a speaker." in (field_error(page, "agenda-1-title") or "")


def test_a_meeting_form_with_unreadable_times_is_refused_without_a_server_error(organiser_client):
    data = meeting_form(start_time="25:99", end_time="", capacity="lots", rsvp_deadline_time="99:00")
    response = organiser_client.post("/meetings/new", data=data)
    assert response.status_code == REFUSED
    assert field_error(response.get_data(as_text=True), "capacity")


@pytest.mark.parametrize("path", ["/meetings/new", "/meetings/{slug}/edit"], ids=["new", "edit"])
@pytest.mark.parametrize("missing", ["title", "theme", "join_url", "location", "description", "capacity"])
def test_a_meeting_form_missing_a_field_is_refused_without_a_server_error(organiser_client, world, path, missing):
    """A field left out of the POST altogether (not sent empty) reads as nothing typed, in the meeting's own rules as
    in the form's."""
    refused = {"visibility": "nonsense"} if missing == "capacity" else {"capacity": "lots"}
    data = {name: value for name, value in meeting_form(**refused).items() if name != missing}
    response = organiser_client.post(path.format(**world), data=data)
    assert response.status_code == REFUSED
