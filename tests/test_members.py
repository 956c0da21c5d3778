"""The organisers' member directory (search, add, edit, import, export) and members' own profile."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer
from itsdangerous.encoding import base64_encode
from markupsafe import escape
from playwright.sync_api import expect
from sqlalchemy import func, insert, select

from kxn_meetings.extensions import db
from kxn_meetings.mail import deliver_due
from kxn_meetings.models import Answer, Member, MemberSession, OutboxMessage, OutboxStatus, Region, Rsvp, Sector
from kxn_meetings.services import invitations
from kxn_meetings.services import members as member_service
from kxn_meetings.services.members import MemberError

from .browser_fixtures import audit, sign_in_browser, visit
from .conftest import TEST_SECRET
from .meeting_helpers import record_answer

INJECTION = "=cmd|' /C calc'!A0"


def member_count() -> int:
    return db.session.scalar(select(func.count(Member.id)))


def by_email(email: str) -> Member | None:
    db.session.expire_all()
    return db.session.scalar(select(Member).where(func.lower(Member.email) == email.lower()))


def csv_bytes(rows, *, header=("name", "email", "organisation", "job title"), delimiter=",", bom=False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return (("\ufeff" if bom else "") + buffer.getvalue()).encode()


def upload(client, data: bytes, filename: str = "members.csv"):
    return client.post(
        "/members/import", data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data"
    )


def payload_of(response) -> str:
    match = re.search(r'name="payload"[^>]*value="([^"]*)"', response.get_data(as_text=True))
    assert match, "the preview has no confirm form"
    return html.unescape(match.group(1))


def rejected_rows(response) -> dict[int, str]:
    """Line number -> reasons, from the table of rows that cannot be imported."""
    page = response.get_data(as_text=True)
    rows = re.findall(
        r'<tr class="row-bad">\s*<td[^>]*>(\d+)</td>\s*<td[^>]*>.*?</td>\s*<td[^>]*>.*?</td>\s*<td[^>]*>(.*?)</td>',
        page,
        flags=re.S,
    )
    return {int(line): html.unescape(reasons) for line, reasons in rows}


def field_error(response, field_id: str) -> str:
    match = re.search(
        rf'<p class="error-message" id="{field_id}-error">(.*?)</p>', response.get_data(as_text=True), flags=re.S
    )
    return html.unescape(match.group(1)).strip() if match else ""


@pytest.fixture
def as_organiser(client, organiser, sign_in):
    sign_in(client, organiser)
    return client


# --- Who may open what ------------------------------------------------------------------------------


# A form with none of the expected fields: Flask-WTF would take an empty POST as "no form data".
FORM = {"unrelated": "1"}


def organiser_urls(target_id: int):
    """(method, path, status an organiser gets when posting FORM)."""
    return [
        ("GET", "/members", 200),
        ("GET", "/members?q=sam&status=active&page=2", 200),
        ("GET", "/members/new", 200),
        ("POST", "/members/new", 422),
        ("GET", f"/members/{target_id}/edit", 200),
        ("POST", f"/members/{target_id}/edit", 422),
        ("POST", f"/members/{target_id}/deactivate", 302),
        ("POST", f"/members/{target_id}/reactivate", 302),
        ("GET", "/members/import", 200),
        ("POST", "/members/import", 422),
        ("POST", "/members/import/confirm", 400),
        ("GET", "/members/export.csv", 200),
    ]


def test_anonymous_visitors_are_sent_to_sign_in(client, member):
    for method, path, _ in [
        *organiser_urls(member.id),
        ("GET", "/profile", 0),
        ("POST", "/profile", 0),
        ("GET", "/profile/data.json", 0),
        ("POST", "/profile/delete", 0),
    ]:
        response = client.open(path, method=method, data=FORM if method == "POST" else None)
        assert response.status_code == 302, (method, path)
        location = urlsplit(response.headers["Location"])
        assert location.path == "/sign-in", (method, path)
        assert parse_qs(location.query)["next"][0] == path, (method, path)
    assert member_count() == 1


def test_members_without_the_organiser_role_get_403(client, member, make_member, sign_in):
    target = make_member(name="Someone Else")
    sign_in(client, member)
    for method, path, _ in organiser_urls(target.id):
        assert client.open(path, method=method, data=FORM if method == "POST" else None).status_code == 403, (
            method,
            path,
        )
    assert by_email(target.email).active


def test_organisers_reach_every_member_page(as_organiser, member):
    for method, path, expected in organiser_urls(member.id):
        response = as_organiser.open(path, method=method, data=FORM if method == "POST" else None)
        assert response.status_code == expected, (method, path)
        if expected == 302:
            assert not response.headers["Location"].startswith("/sign-in")


def test_members_and_organisers_reach_their_own_profile(client, member, organiser, sign_in):
    for who in (member, organiser):
        sign_in(client, who)
        assert client.get("/profile").status_code == 200
        assert client.get("/profile/data.json").status_code == 200
        assert client.post("/profile/delete", data=FORM).status_code == 422  # the form again, nothing deleted
    assert member_count() == 2


def test_a_role_removed_mid_session_stops_working(client, app, organiser, make_member, sign_in):
    other = make_member(name="Second Organiser", is_organiser=True)
    sign_in(client, other)
    assert client.get("/members").status_code == 200
    other.is_organiser = False
    db.session.commit()
    assert client.get("/members").status_code == 403


# --- Directory ---------------------------------------------------------------------------------------


def test_directory_search_is_case_insensitive_on_name_email_and_organisation(as_organiser, make_member):
    make_member(name="Alice Smith", email="alice@police.example.org", organisation="Lancashire Constabulary")
    make_member(name="Bob Jones", email="bob@nhs.example.org", organisation="NHS England", active=False)

    searches = {
        "q=LANCASHIRE": {"Alice Smith"},
        "q=BOB@NHS": {"Bob Jones"},
        "q=sMiTh": {"Alice Smith"},
        "q=Ali%00ce%0A": {"Alice Smith"},  # control characters are dropped from the search
        "status=inactive": {"Bob Jones"},
        "status=active": {"Alice Smith", "Olive Organiser"},
        "status=organisers": {"Olive Organiser"},
        "q=example&status=inactive": {"Bob Jones"},
        "q=%25": set(),
        "q=_": set(),  # LIKE wildcards are searched as text
    }
    for query, expected in searches.items():
        page = as_organiser.get(f"/members?{query}").get_data(as_text=True)
        table = page.partition("<tbody>")[2]
        shown = {name for name in ("Alice Smith", "Bob Jones", "Olive Organiser") if name in table}
        assert shown == expected, query
        if not expected:
            assert "No members match" in page


def test_directory_pages_through_members(as_organiser):
    db.session.add_all(Member(name=f"Paged {n:02d}", email=f"paged{n}@example.org") for n in range(1, 56))
    db.session.commit()
    first = as_organiser.get("/members").get_data(as_text=True)
    second = as_organiser.get("/members?page=2").get_data(as_text=True)
    # 56 members by name: Olive Organiser, then Paged 01..55; 50 a page.
    assert "Paged 49" in first and "Paged 50" not in first
    assert "Paged 50" in second and "Paged 55" in second and "Paged 49" not in second
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    assert 'href="/members?page=2"' in first
    assert "Paged 5" in as_organiser.get("/members?q=paged&page=2").get_data(as_text=True)
    assert as_organiser.get("/members?page=99").status_code == 200
    assert as_organiser.get("/members?page=abc").status_code == 200


@given(values=st.lists(st.text(max_size=300), min_size=4, max_size=4))
def test_any_text_in_the_member_and_profile_forms_gets_a_page_not_an_error(as_organiser, organiser, values):
    name, email, organisation, job_title = values
    fields = {"name": name, "email": email, "organisation": organisation, "job_title": job_title}
    assert as_organiser.post("/members/new", data={**fields, "active": "y"}).status_code in (302, 422)
    assert as_organiser.post(
        f"/members/{organiser.id}/edit", data={**fields, "active": "y", "is_organiser": "y"}
    ).status_code in (302, 422)
    assert as_organiser.post("/profile", data=fields).status_code in (302, 422)
    assert as_organiser.get("/members", query_string={"q": name, "status": email}).status_code == 200
    assert as_organiser.post("/profile/delete", data={"delete-email": email}).status_code == 422


# --- Adding and editing ------------------------------------------------------------------------------


def test_adding_a_member(as_organiser):
    response = as_organiser.post(
        "/members/new",
        data={
            "name": "  Priya Patel ",
            "email": "priya@example.org",
            "organisation": "West Midlands Police",
            "job_title": "Inspector",
            "active": "y",
            "password_hash": "x",
            "id": "999",
        },
    )
    assert response.status_code == 302
    priya = by_email("priya@example.org")
    assert (priya.name, priya.organisation, priya.job_title, priya.is_organiser, priya.active) == (
        "Priya Patel",
        "West Midlands Police",
        "Inspector",
        False,
        True,
    )
    assert priya.password_hash is None and priya.id != 999
    assert "Priya Patel is added." in as_organiser.get("/members").get_data(as_text=True)


def test_a_duplicate_email_in_another_case_is_refused_next_to_the_field(as_organiser, member, make_member):
    response = as_organiser.post("/members/new", data={"name": "Sam Again", "email": "SAM@Example.ORG", "active": "y"})
    assert response.status_code == 422
    assert field_error(response, "email") == "A member with this email address already exists."
    assert 'class="error-summary"' in response.get_data(as_text=True)
    assert member_count() == 2

    other = make_member(name="Other Person", email="other@example.org")
    response = as_organiser.post(
        f"/members/{other.id}/edit", data={"name": "Other Person", "email": "Sam@EXAMPLE.org", "active": "y"}
    )
    assert response.status_code == 422
    assert field_error(response, "email") == "A member with this email address already exists."
    assert by_email("other@example.org") is not None

    # A member's own address in another case is not a duplicate.
    response = as_organiser.post(
        f"/members/{other.id}/edit", data={"name": "Other Person", "email": "OTHER@example.org", "active": "y"}
    )
    assert response.status_code == 302
    assert by_email("other@example.org").email == "OTHER@example.org"


def test_editing_a_member(as_organiser, member):
    response = as_organiser.post(
        f"/members/{member.id}/edit",
        data={
            "name": "Samantha Member",
            "email": "samantha@example.org",
            "organisation": "Lancashire VRU",
            "job_title": "Analyst",
            "is_organiser": "y",
            "active": "y",
        },
    )
    assert response.status_code == 302
    changed = by_email("samantha@example.org")
    assert (changed.id, changed.name, changed.job_title, changed.is_organiser) == (
        member.id,
        "Samantha Member",
        "Analyst",
        True,
    )


def test_form_errors_are_shown_next_to_the_fields(as_organiser):
    response = as_organiser.post("/members/new", data={"name": "", "email": "not an email", "job_title": "a\x01b"})
    assert response.status_code == 422
    assert field_error(response, "name") == "Enter a name."
    assert "Enter an email address like" in field_error(response, "email")
    assert field_error(response, "job_title")
    assert member_count() == 1


def test_an_organiser_cannot_remove_their_own_role_or_deactivate_themselves(as_organiser, organiser):
    response = as_organiser.post(
        f"/members/{organiser.id}/edit", data={"name": "Olive Organiser", "email": organiser.email, "active": "y"}
    )
    assert response.status_code == 422
    assert "cannot remove your own organiser role" in field_error(response, "is_organiser")
    response = as_organiser.post(
        f"/members/{organiser.id}/edit", data={"name": "Olive Organiser", "email": organiser.email, "is_organiser": "y"}
    )
    assert "cannot deactivate your own account" in field_error(response, "active")

    response = as_organiser.post(f"/members/{organiser.id}/deactivate", follow_redirects=True)
    assert "You cannot deactivate your own account" in response.get_data(as_text=True)
    me = by_email(organiser.email)
    assert me.is_organiser and me.active
    assert as_organiser.get("/members").status_code == 200


def test_deactivating_ends_the_members_sessions_at_once(app, organiser, member, sign_in):
    organiser_client, member_client = app.test_client(), app.test_client()
    sign_in(organiser_client, organiser)
    sign_in(member_client, member)
    assert member_client.get("/profile").status_code == 200

    response = organiser_client.post(f"/members/{member.id}/deactivate", data={"next": "/members?status=active"})
    assert response.status_code == 302 and response.headers["Location"] == "/members?status=active"
    assert member_client.get("/profile").status_code == 302
    assert db.session.scalar(select(func.count(MemberSession.id)).where(MemberSession.member_id == member.id)) == 0
    page = organiser_client.get("/members?status=inactive").get_data(as_text=True)
    assert "Sam Member" in page and "Reactivate" in page

    response = organiser_client.post(f"/members/{member.id}/reactivate", data={"next": "https://evil.example/"})
    assert response.headers["Location"] == "/members"
    assert by_email(member.email).active

    # Unticking "Active" on the edit form has the same effect.
    sign_in(member_client, member)
    assert member_client.get("/profile").status_code == 200
    organiser_client.post(f"/members/{member.id}/edit", data={"name": "Sam Member", "email": member.email})
    assert not by_email(member.email).active
    assert member_client.get("/profile").status_code == 302


@pytest.mark.postgresql_only
def test_an_address_added_concurrently_gives_the_same_message(app):
    """The check before the insert cannot see another transaction's row; the unique index still catches it."""
    with db.engine.connect() as other:
        transaction = other.begin()
        other.execute(insert(Member).values(name="Racer", email="race@example.org"))
        threading.Timer(0.5, transaction.commit).start()
        with pytest.raises(MemberError) as caught:
            member_service.add_member(name="Second", email="RACE@example.org")
    assert (str(caught.value), caught.value.field) == ("A member with this email address already exists.", "email")
    db.session.commit()  # the transaction is still usable after the failed insert
    assert [m.name for m in db.session.scalars(select(Member))] == ["Racer"]


# --- Import ------------------------------------------------------------------------------------------


def test_importing_500_rows_with_20_bad_ones(as_organiser, make_member):
    for n in range(1, 6):
        make_member(name=f"Existing {n}", email=f"existing{n}@example.org")
    bad_rows = (
        [
            (f"Bad Email {n}", email, "", "")
            for n, email in enumerate(
                ["not-an-email", "a@b", "two@@example.org", "space in@example.org", "bad@example"], 1
            )
        ]
        + [(f"Twin {n}", f"PERSON{n}@EXAMPLE.ORG", "", "") for n in range(5)]
        + [(f"Existing Again {n}", f"Existing{n}@Example.org", "", "") for n in range(1, 6)]
        + [("", f"noname{n}@example.org", "Somewhere", "") for n in range(5)]
    )
    expected_reasons = (
        ["email address is not valid"] * 5
        + ["email address is already on line"] * 5
        + ["already a member"] * 5
        + ["name is missing"] * 5
    )
    rows, expected = [], {}
    bad = iter(zip(bad_rows, expected_reasons, strict=True))
    for n in range(480):
        rows.append((f"Person {n}", f"person{n}@example.org", "Metropolitan Police", "Sergeant"))
        if n % 24 == 23:
            row, reason = next(bad)
            rows.append(row)
            expected[len(rows) + 1] = reason  # the header is line 1
    before = member_count()

    preview = upload(as_organiser, csv_bytes(rows))
    assert preview.status_code == 200
    page = preview.get_data(as_text=True)
    assert "480 rows can be imported." in page and "20 rows cannot be imported" in page
    found = rejected_rows(preview)
    assert sorted(found) == sorted(expected)
    for line, reason in expected.items():
        assert reason in found[line], (line, found[line])
    assert member_count() == before

    done = as_organiser.post("/members/import/confirm", data={"payload": payload_of(preview)})
    assert done.status_code == 200
    assert "480 members added." in done.get_data(as_text=True)
    assert member_count() == before + 480
    person = by_email("person7@example.org")
    assert (person.name, person.organisation, person.job_title, person.active, person.is_organiser) == (
        "Person 7",
        "Metropolitan Police",
        "Sergeant",
        True,
        False,
    )
    assert by_email("noname0@example.org") is None

    # Confirming the same list again adds nobody: every row is a member by now.
    again = as_organiser.post("/members/import/confirm", data={"payload": payload_of(preview)})
    assert "0 members added." in again.get_data(as_text=True)
    assert member_count() == before + 480


def test_rows_that_became_members_since_the_preview_are_skipped_and_reported(as_organiser, make_member):
    preview = upload(
        as_organiser,
        csv_bytes(
            [("Ann", "ann@example.org", "", ""), ("Ben", "ben@example.org", "", ""), ("Cat", "cat@example.org", "", "")]
        ),
    )
    make_member(name="Ben Meanwhile", email="BEN@example.org")
    done = as_organiser.post("/members/import/confirm", data={"payload": payload_of(preview)})
    assert "2 members added." in done.get_data(as_text=True)
    assert rejected_rows(done) == {3: "already a member"}
    assert by_email("ben@example.org").name == "Ben Meanwhile"
    assert by_email("cat@example.org").name == "Cat"


def test_a_tampered_or_foreign_payload_is_refused(as_organiser):
    preview = upload(as_organiser, csv_bytes([("Ann", "ann@example.org", "", "")]))
    payload = payload_of(preview)
    before = member_count()
    eve = [[2, "Eve", "eve@example.org", "", ""]]
    # The rows swapped for others under the original signature.
    tampered = base64_encode(json.dumps(eve, separators=(",", ":"))).decode() + "." + payload.rsplit(".", 1)[1]
    forged_salt = URLSafeSerializer(TEST_SECRET, salt="something-else").dumps(eve)
    forged_key = URLSafeSerializer("another-secret", salt="members-import").dumps(eve)
    wrong_shape = URLSafeSerializer(TEST_SECRET, salt="members-import").dumps({"rows": 1})
    for bad in (tampered, forged_salt, forged_key, wrong_shape, "not-a-payload", "x" * 5000):
        response = as_organiser.post("/members/import/confirm", data={"payload": bad})
        assert response.status_code == 400
        assert "Nothing was imported" in response.get_data(as_text=True)
    assert member_count() == before
    assert by_email("eve@example.org") is None


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_every_change_needs_the_csrf_token(client, organiser, member, sign_in):
    sign_in(client, organiser)
    preview_page = client.get("/members/import").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', preview_page).group(1)
    preview = client.post(
        "/members/import",
        content_type="multipart/form-data",
        data={"csrf_token": token, "file": (io.BytesIO(csv_bytes([("Ann", "ann@example.org", "", "")])), "m.csv")},
    )
    posts = [
        ("/members/new", {"name": "New", "email": "new@example.org", "active": "y"}),
        (f"/members/{member.id}/edit", {"name": "Changed", "email": member.email, "active": "y"}),
        (f"/members/{member.id}/deactivate", {}),
        ("/members/import", {"file": "a file"}),
        ("/members/import/confirm", {"payload": payload_of(preview)}),
        ("/profile", {"name": "Changed"}),
        ("/profile/delete", {"delete-email": organiser.email}),
    ]
    for path, data in posts:
        for bad_token in ({}, {"csrf_token": "forged"}):
            fields = {**data, **bad_token}
            if "file" in fields:
                fields["file"] = (io.BytesIO(csv_bytes([("Ann", "ann@example.org", "", "")])), "m.csv")
            response = client.post(path, data=fields, content_type="multipart/form-data")
            assert response.status_code == 400, path
    assert member_count() == 2
    assert by_email(member.email).name == "Sam Member" and by_email(member.email).active
    assert by_email(organiser.email).name == "Olive Organiser"

    # With the token from the page, the same kind of request goes through.
    profile = client.get("/profile").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', profile).group(1)
    response = client.post("/profile", data={"csrf_token": token, "name": "Olive O."})
    assert response.status_code == 302 and by_email(organiser.email).name == "Olive O."


def test_semicolons_bom_and_header_spelling_are_accepted(as_organiser):
    data = csv_bytes(
        [
            ("Zoë Ångström", "zoe@example.org", "Politie Nederland", "Agent"),
            ("Smith, John", "john@example.org", "", ""),
        ],
        header=("Name", "E-mail", "Organisation", "Job_Title"),
        delimiter=";",
        bom=True,
    )
    preview = upload(as_organiser, data, filename="LIST.CSV")
    assert "2 rows can be imported." in preview.get_data(as_text=True)
    as_organiser.post("/members/import/confirm", data={"payload": payload_of(preview)})
    zoe = by_email("zoe@example.org")
    assert (zoe.name, zoe.job_title) == ("Zoë Ångström", "Agent")
    assert by_email("john@example.org").name == "Smith, John"


def test_lines_too_long_or_with_control_characters_are_reported(as_organiser):
    data = csv_bytes(
        [
            ("A" * 201, "long@example.org", "", ""),
            ("Tab\there", "tab@example.org", "", ""),
            ("Two\nlines", "multi@example.org", "", ""),
            ("Fine", "fine@example.org", "", ""),
            ("Line\u2028separator", "separator@example.org", "", ""),
        ]
    )
    preview = upload(as_organiser, data)
    found = rejected_rows(preview)
    assert found[2] == "name is longer than 200 characters"
    assert found[3] == "contains a tab: remove it"
    assert found[4] == "contains a line break: remove it"
    assert "contains a line separator: remove it" in found.values(), found
    assert "1 row can be imported." in preview.get_data(as_text=True)


@pytest.mark.parametrize(
    "data, message",
    [
        ("name,email\nZoë,zoe@example.org\n".encode("cp1252"), "not UTF-8"),
        (b"name,organisation\nAnn,Somewhere\n", "no \u201cemail\u201d column"),
        (b"email\nann@example.org\n", "no \u201cname\u201d column"),
        (b"", "The file is empty."),
        (b"\n \n", "The file is empty."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
        (b"name,email\n\x00\x00\x00\x01", "does not look like a CSV file"),
        (b"name,email\n" + b"".join(b"P%d,p%d@example.org\n" % (n, n) for n in range(5001)), "more than 5,000"),
    ],
)
def test_unusable_files_get_a_clear_form_error(as_organiser, data, message):
    response = upload(as_organiser, data)
    assert response.status_code == 422
    assert message in field_error(response, "file")
    assert member_count() == 1


def test_only_csv_files_are_accepted(as_organiser):
    response = upload(as_organiser, b"name,email\n", filename="members.xlsx")
    assert field_error(response, "file") == "Choose a .csv file."
    response = as_organiser.post(
        "/members/import", data={"file": (io.BytesIO(b""), "")}, content_type="multipart/form-data"
    )
    assert field_error(response, "file") == "Choose a CSV file."


def test_5000_rows_are_accepted(as_organiser):
    data = b"name,email,organisation,job title\n" + b"".join(
        b"Person Number %d,person.number.%d@example.org,Greater Manchester Police,Detective Sergeant\n" % (n, n)
        for n in range(5000)
    )
    preview = upload(as_organiser, data)
    assert "5000 rows can be imported." in preview.get_data(as_text=True)
    done = as_organiser.post("/members/import/confirm", data={"payload": payload_of(preview)})
    assert "5000 members added." in done.get_data(as_text=True)
    assert member_count() == 5001


@given(
    data=st.one_of(
        st.binary(max_size=400),
        st.text(max_size=400).map(lambda text: ("name,email,job title\n" + text).encode()),
        st.text(alphabet='ab;,"\r\n\t\x00\x0b@. é', max_size=200).map(lambda text: ("Name;E-mail\n" + text).encode()),
    )
)
def test_any_upload_gets_a_page_not_an_error(as_organiser, data):
    response = upload(as_organiser, data)
    assert response.status_code in (200, 422)
    assert member_count() == 1


# --- Export and formula injection --------------------------------------------------------------------


def exported(client) -> list[list[str]]:
    response = client.get("/members/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    return list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))


def test_export_neutralises_formula_cells(as_organiser, make_member):
    make_member(name="=SUM(A1:A9)", email="sum@example.org", organisation="+44 20 7946 0000")
    make_member(name="-2+3", email="minus@example.org", organisation="@SUM(1)", job_title="\tTabbed")
    make_member(name="Plain Name", email="plain@example.org", organisation="Home Office", job_title="Analyst")
    rows = exported(as_organiser)
    assert rows[0] == [
        "Name",
        "Email",
        "Organisation",
        "Job title",
        "Sector",
        "Region",
        "Organiser",
        "Active",
        "Joined",
    ]
    by_mail = {row[1]: row for row in rows[1:]}
    assert by_mail["sum@example.org"][:3] == ["'=SUM(A1:A9)", "sum@example.org", "'+44 20 7946 0000"]
    assert by_mail["minus@example.org"][:4] == ["'-2+3", "minus@example.org", "'@SUM(1)", "'\tTabbed"]
    assert by_mail["plain@example.org"][:8] == [
        "Plain Name",
        "plain@example.org",
        "Home Office",
        "Analyst",
        "",
        "",
        "no",
        "yes",
    ]
    assert by_mail["olive@example.org"][6] == "yes"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", by_mail["plain@example.org"][8])
    for row in rows[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


def test_a_formula_name_is_imported_as_text_and_exported_neutralised(as_organiser):
    preview = upload(as_organiser, csv_bytes([(INJECTION, "calc@example.org", '=HYPERLINK("http://x")', "")]))
    assert str(escape(INJECTION)) in preview.get_data(as_text=True)
    as_organiser.post("/members/import/confirm", data={"payload": payload_of(preview)})
    assert by_email("calc@example.org").name == INJECTION
    page = as_organiser.get("/members").get_data(as_text=True)
    assert str(escape(INJECTION)) in page
    row = next(r for r in exported(as_organiser) if r[1] == "calc@example.org")
    assert row[0] == "'" + INJECTION
    assert row[2] == '\'=HYPERLINK("http://x")'


# --- A member's own profile --------------------------------------------------------------------------


def test_members_edit_their_own_profile_and_nothing_else(client, member, sign_in):
    sign_in(client, member)
    page = client.get("/profile").get_data(as_text=True)
    assert 'value="Sam Member"' in page and "Download my data" in page and "Set your password" not in page
    response = client.post(
        "/profile",
        data={
            "name": "Sam Q. Member",
            "organisation": "Lancashire VRU",
            "job_title": "Navigator",
            "email": "hijack@example.org",
            "is_organiser": "y",
            "active": "y",
        },
    )
    assert response.status_code == 302
    me = by_email("sam@example.org")
    assert (me.name, me.job_title, me.is_organiser) == ("Sam Q. Member", "Navigator", False)
    assert "Your profile is saved." in client.get("/profile").get_data(as_text=True)

    response = client.post("/profile", data={"name": "", "organisation": "x" * 201})
    assert field_error(response, "name") == "Enter a name."
    assert field_error(response, "organisation")


def test_organisers_see_the_password_link(client, organiser, sign_in):
    sign_in(client, organiser)
    assert "Set your password" in client.get("/profile").get_data(as_text=True)


def test_my_data_holds_the_members_own_data_only(client, member, make_member, make_meeting, sign_in):
    other = make_member(name="Other Person", email="other@example.org")
    mine, theirs = make_meeting(title="Knowledge exchange: custody"), make_meeting(title="Secret other meeting")
    db.session.add_all(
        [
            Rsvp(
                meeting_id=mine.id,
                member_id=member.id,
                answer=Answer.GOING,
                comment="Looking forward",
                access_needs="Step-free access",
            ),
            Rsvp(
                meeting_id=theirs.id,
                member_id=other.id,
                answer=Answer.MAYBE,
                comment="other comment",
                access_needs="other needs",
            ),
        ]
    )
    db.session.commit()
    sign_in(client, member)
    response = client.get("/profile/data.json")
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == 'attachment; filename="kxn-my-data.json"'
    data = json.loads(response.get_data(as_text=True))
    assert data["profile"]["email"] == "sam@example.org" and data["profile"]["name"] == "Sam Member"
    assert [(r["meeting"], r["answer"], r["comment"], r["access_needs"]) for r in data["rsvps"]] == [
        ("Knowledge exchange: custody", "going", "Looking forward", "Step-free access")
    ]
    assert data["rsvps"][0]["date"].startswith(mine.local_start.date().isoformat())
    assert data["sessions"] == 1
    body = response.get_data(as_text=True)
    assert "other" not in body.lower()


def test_deleting_an_account_keeps_the_rsvp_anonymised(client, member, organiser, make_meeting, sign_in):
    meeting = make_meeting()
    db.session.add(
        Rsvp(
            meeting_id=meeting.id,
            member_id=member.id,
            answer=Answer.GOING,
            comment="Sam from Kent",
            access_needs="Hearing loop",
        )
    )
    db.session.commit()
    member_id = member.id
    sign_in(client, member)

    response = client.post("/profile/delete", data={"delete-email": "someone@example.org"})
    assert response.status_code == 422
    assert "not the email address of this account" in field_error(response, "delete-email")
    assert by_email("sam@example.org") is not None

    response = client.post("/profile/delete", data={"delete-email": "SAM@example.org"}, follow_redirects=True)
    assert "Your account is deleted" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Member, member_id) is None
    rsvp = db.session.scalar(select(Rsvp).where(Rsvp.meeting_id == meeting.id))
    assert rsvp.member_id is None and rsvp.answer == Answer.GOING
    assert rsvp.comment == "" and rsvp.access_needs == ""  # free text may say who they were
    assert db.session.scalar(select(func.count(MemberSession.id)).where(MemberSession.member_id == member_id)) == 0

    # Signed out, and no way back in: the address is unknown now.
    assert client.get("/profile").status_code == 302
    client.post("/sign-in", data={"email": "sam@example.org"})
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0


def test_deleting_an_account_drops_mail_not_yet_sent_and_the_address_from_mail_sent(
    app, client, member, make_meeting, sign_in, smtp_server
):
    meeting = make_meeting(title="Meeting three")
    invitations.invite(meeting, [member])
    db.session.commit()
    assert deliver_due().sent == 1
    record_answer(meeting.id, member, Answer.GOING)  # a confirmation, still waiting to be sent
    db.session.commit()
    assert [m.status for m in db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))] == [
        OutboxStatus.SENT,
        OutboxStatus.PENDING,
    ]

    sign_in(client, member)
    client.post("/profile/delete", data={"delete-email": member.email})
    db.session.expire_all()
    [kept] = db.session.scalars(select(OutboxMessage)).all()
    assert kept.status == OutboxStatus.SENT and kept.kind == "invitation" and kept.member_id is None
    kept_text = (kept.recipient + kept.text_body + kept.html_body).lower()
    assert not any(said in kept_text for said in ("sam member", "hello sam", "sam@example.org"))
    assert kept.calendar is None
    assert deliver_due().sent == 0
    assert len(smtp_server.wait_for(1)) == 1


def test_the_only_organiser_cannot_delete_their_account(client, organiser, sign_in):
    sign_in(client, organiser)
    response = client.post("/profile/delete", data={"delete-email": organiser.email})
    assert "only organiser" in field_error(response, "delete-email")
    assert by_email(organiser.email) is not None


# --- In a browser --------------------------------------------------------------------------------------


@pytest.mark.browser
def test_an_organiser_imports_edits_and_exports_in_the_browser(live_server, page, organiser, make_member, tmp_path):
    make_member(name="Already Here", email="here@example.org")
    sign_in_browser(page, live_server, organiser)
    visit(page, "/")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Members")
    audit(page)
    page.get_by_role("link", name="Import from CSV").click()
    audit(page)
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_role("alert")).to_contain_text("Choose a CSV file.")
    audit(page)

    upload_file = tmp_path / "members.csv"
    upload_file.write_bytes(
        csv_bytes(
            [
                ("Ann Example", "ann@example.org", "Home Office", "Analyst"),
                ("Here Again", "HERE@example.org", "", ""),
                ("", "nobody@example.org", "", ""),
            ],
            delimiter=";",
            bom=True,
        )
    )
    page.get_by_label("CSV file").set_input_files(str(upload_file))
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check the import")
    expect(page.get_by_role("main")).to_contain_text("already a member")
    audit(page)
    page.get_by_role("button", name="Import 1 member").click()
    expect(page.get_by_role("main")).to_contain_text("1 member added.")
    audit(page)

    page.get_by_role("link", name="Back to members").click()
    page.get_by_label("Search by name, email or organisation").fill("home office")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Ann Example").click()
    audit(page)
    page.get_by_label("Email address").fill("here@EXAMPLE.org")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#email-error")).to_have_text("A member with this email address already exists.")
    audit(page)

    visit(page, "/profile")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download my data").click()
    assert json.loads(Path(download.value.path()).read_text())["profile"]["email"] == organiser.email


# --- Sector and region ---------------------------------------------------------------------------------


def test_sector_and_region_are_imported_by_label_or_value_and_bad_ones_are_shown(as_organiser):
    header = ("name", "email", "organisation", "job title", "sector", "region")
    rows = [
        ("Ann Label", "ann@example.org", "LEAD", "", "Third sector", "North West"),
        ("Bo Value", "bo@example.org", "NHS", "", "health", "yorkshire_and_the_humber"),
        ("Cy Blank", "cy@example.org", "", "", "", ""),
        ("Di Bad", "di@example.org", "", "", "Fire service", "Mars"),
    ]
    preview = upload(as_organiser, csv_bytes(rows, header=header))
    page = preview.get_data(as_text=True)
    assert "3 rows can be imported." in page and "1 row cannot be imported" in page
    reasons = html.unescape(rejected_rows(preview)[5])
    assert "sector \u201cFire service\u201d is not one of: Police, Health" in reasons
    assert "region \u201cMars\u201d is not one of: North East" in reasons
    assert '<td data-label="Sector">Third sector</td><td data-label="Region">North West</td>' in page
    as_organiser.post("/members/import/confirm", data={"payload": payload_of(preview)})
    assert (by_email("ann@example.org").sector, by_email("ann@example.org").region) == (
        Sector.THIRD_SECTOR,
        Region.NORTH_WEST,
    )
    assert (by_email("bo@example.org").sector, by_email("bo@example.org").region) == (
        Sector.HEALTH,
        Region.YORKSHIRE_AND_THE_HUMBER,
    )
    assert (by_email("cy@example.org").sector, by_email("cy@example.org").region) == (None, None)
    assert by_email("di@example.org") is None

    exported_rows = {row[1]: row for row in exported(as_organiser)[1:]}
    assert exported_rows["ann@example.org"][4:6] == ["Third sector", "North West"]
    assert exported_rows["cy@example.org"][4:6] == ["", ""]
    directory = as_organiser.get("/members").get_data(as_text=True)
    assert '<td data-label="Sector">Third sector</td>' in directory


def test_members_give_their_sector_and_region_in_their_profile(client, member, sign_in):
    sign_in(client, member)
    page = client.get("/profile").get_data(as_text=True)
    assert '<option selected value="">Not said</option>' in page
    details = {"name": "Sam Member", "sector": "youth_justice", "region": "wales"}
    assert client.post("/profile", data=details).status_code == 302
    me = by_email("sam@example.org")
    assert (me.sector, me.region) == (Sector.YOUTH_JUSTICE, Region.WALES)
    assert '<option selected value="wales">Wales</option>' in client.get("/profile").get_data(as_text=True)

    refused = client.post("/profile", data={**details, "sector": "astronaut"})
    assert refused.status_code == 422
    assert field_error(refused, "sector") == "Choose a sector from the list."
    assert client.post("/profile", data={"name": "Sam Member", "sector": "", "region": ""}).status_code == 302
    me = by_email("sam@example.org")
    assert (me.sector, me.region) == (None, None)


def test_organisers_set_a_members_sector_and_region(as_organiser, member):
    response = as_organiser.post(
        f"/members/{member.id}/edit",
        data={"name": member.name, "email": member.email, "sector": "police", "region": "london", "active": "y"},
    )
    assert response.status_code == 302
    assert (by_email(member.email).sector, by_email(member.email).region) == (Sector.POLICE, Region.LONDON)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give the organiser's name with --name."),
        ("   ", "Give the organiser's name with --name."),
        ("Ann\nLee", "The name contains a line break: remove it."),
        ("A" * 201, "The name is longer than 200 characters."),
    ],
    ids=["empty", "blank", "line break", "too long"],
)
def test_create_organiser_refuses_a_name_the_member_form_would_refuse(runner, name, message):
    result = runner.invoke(args=["kxn", "create-organiser", "ann@example.org", "--name", name])
    assert result.exit_code == 1
    assert f"Error: {message}" in result.output
    assert db.session.scalar(select(func.count(Member.id))) == 0


@pytest.mark.parametrize(
    ("organisation", "message"),
    [
        ("Lancashire\tVRU", "The organisation contains a tab: remove it."),
        ("V" * 201, "The organisation is longer than 200 characters."),
    ],
    ids=["tab", "too long"],
)
def test_create_organiser_refuses_an_organisation_the_member_form_would_refuse(runner, organisation, message):
    args = ["kxn", "create-organiser", "ann@example.org", "--name", "Ann Lee", "--organisation", organisation]
    result = runner.invoke(args=args)
    assert result.exit_code == 1
    assert f"Error: {message}" in result.output
    assert db.session.scalar(select(func.count(Member.id))) == 0


def test_create_organiser_makes_one_or_promotes_a_member_whose_name_stays(runner, make_member):
    result = runner.invoke(args=["kxn", "create-organiser", "ann@example.org", "--name", "  Ann   Lee "])
    assert result.exit_code == 0, result.output
    ann = db.session.scalar(select(Member).where(Member.email == "ann@example.org"))
    assert ann is not None and ann.name == "Ann Lee" and ann.is_organiser
    make_member(name="Bo Reid", email="bo@example.org")
    result = runner.invoke(args=["kxn", "create-organiser", "bo@example.org", "--name", ""])
    assert result.exit_code == 0, result.output
    bo = db.session.scalar(select(Member).where(Member.email == "bo@example.org"))
    assert bo is not None and bo.name == "Bo Reid" and bo.is_organiser
