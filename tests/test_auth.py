"""Signing in and out, and the protections every request gets (see SECURITY.md, "Requests and sessions", "Tokens")."""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, text, update

from kxn_meetings import config as kxn_config
from kxn_meetings import create_app
from kxn_meetings.extensions import db
from kxn_meetings.models import LoginToken, MemberSession, OutboxMessage, RateLimitHit
from kxn_meetings.security import safe_next
from kxn_meetings.services import auth as auth_service

from .conftest import TEST_SECRET

CSRF_ON = pytest.mark.app_config(WTF_CSRF_ENABLED=True)
COOKIE = "kxn_session"
PASSWORD = "correct horse battery staple"


# ---------------------------------------------------------------- helpers


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def outbox_for(email: str) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.recipient.contains(email)).order_by(OutboxMessage.id)
        )
    )


def outbox_count() -> int:
    return db.session.scalar(select(func.count(OutboxMessage.id)))


def request_email(client, email: str, next_path: str | None = None, **post) -> OutboxMessage:
    """Ask for a sign-in email the way the page does; return the message queued for it."""
    data = {"email": email, **post}
    if next_path is not None:
        data["next"] = next_path
    response = client.post("/sign-in", data=data)
    assert response.status_code == 302, response.text
    return outbox_for(email)[-1]


def token_of(message: OutboxMessage) -> str:
    return re.search(r"/sign-in/link/([A-Za-z0-9_-]+)", message.text_body).group(1)


def code_of(message: OutboxMessage) -> str:
    return re.search(r"\b(\d{6})\b", message.text_body).group(1)


def signed_in_name(client) -> str | None:
    """The name in the navigation of a page, or None when the page offers "Sign in"."""
    page = client.get("/sign-in").text
    if "Sign out" not in page:
        return None
    return re.search(r'<a href="/profile"[^>]*>([^<]+)</a>', page).group(1)


def login_row(token: str) -> LoginToken:
    row = db.session.scalar(select(LoginToken).where(LoginToken.token_hash == auth_service._digest(token)))
    db.session.refresh(row)
    return row


def sign_in_by_link(client, email: str, next_path: str | None = None):
    token = token_of(request_email(client, email, next_path))
    assert client.get(f"/sign-in/link/{token}").status_code == 200
    return client.post(f"/sign-in/link/{token}")


def session_cookie(client) -> str | None:
    cookie = client.get_cookie(COOKIE)
    return cookie.value if cookie else None


@pytest.fixture
def organiser_with_password(organiser):
    auth_service.set_password(organiser, PASSWORD)
    db.session.commit()
    return organiser


# ---------------------------------------------------------------- CSRF


@CSRF_ON
def test_forms_carry_a_csrf_token_that_is_accepted(client, member):
    token = csrf_from(client.get("/sign-in").text)
    response = client.post("/sign-in", data={"email": member.email, "csrf_token": token})
    assert response.status_code == 302
    assert len(outbox_for(member.email)) == 1


def _token_for(kind: str, client, other_client) -> dict:
    if kind == "missing":
        return {}
    return {"csrf_token": csrf_from(other_client.get("/sign-in").text)}


@CSRF_ON
@pytest.mark.parametrize("kind", ["missing", "foreign"])
def test_sign_in_request_without_own_csrf_token_is_refused(app, client, member, kind):
    client.get("/sign-in")
    response = client.post("/sign-in", data={"email": member.email, **_token_for(kind, client, app.test_client())})
    assert response.status_code == 400
    assert "Nothing was changed" in response.text
    assert outbox_count() == 0
    assert db.session.scalar(select(func.count(LoginToken.id))) == 0


def _queue_link(member) -> tuple[str, str]:
    """A live sign-in token and code for member, as the sign-in page queues them."""
    auth_service.send_sign_in_link(member.email)
    db.session.commit()
    message = outbox_for(member.email)[-1]
    return token_of(message), code_of(message)


@CSRF_ON
@pytest.mark.parametrize("kind", ["missing", "foreign"])
def test_code_without_own_csrf_token_is_refused(app, client, member, kind):
    token, code = _queue_link(member)
    client.get(f"/sign-in/code?email={member.email}")
    data = {"email": member.email, "code": code, **_token_for(kind, client, app.test_client())}
    assert client.post("/sign-in/code", data=data).status_code == 400
    assert signed_in_name(client) is None
    assert login_row(token).used_at is None


@CSRF_ON
@pytest.mark.parametrize("kind", ["missing", "foreign"])
def test_link_confirmation_without_own_csrf_token_is_refused(app, client, member, kind):
    token, _ = _queue_link(member)
    page = client.get(f"/sign-in/link/{token}")
    assert page.status_code == 200
    data = _token_for(kind, client, app.test_client())
    assert client.post(f"/sign-in/link/{token}", data=data).status_code == 400
    assert signed_in_name(client) is None
    assert login_row(token).used_at is None
    # the page's own token still works
    response = client.post(f"/sign-in/link/{token}", data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 302
    assert signed_in_name(client) == member.name


@CSRF_ON
@pytest.mark.parametrize("kind", ["missing", "foreign"])
def test_password_sign_in_without_own_csrf_token_is_refused(app, client, organiser_with_password, kind):
    client.get("/sign-in")
    data = {
        "password-email": organiser_with_password.email,
        "password-password": PASSWORD,
        **{f"password-{k}": v for k, v in _token_for(kind, client, app.test_client()).items()},
    }
    assert client.post("/sign-in/password", data=data).status_code == 400
    assert signed_in_name(client) is None
    assert db.session.scalar(select(func.count(MemberSession.id))) == 0


@CSRF_ON
@pytest.mark.parametrize("kind", ["missing", "foreign"])
def test_sign_out_without_own_csrf_token_is_refused(app, client, member, sign_in, kind):
    sign_in(client, member)
    assert signed_in_name(client) == member.name
    assert client.post("/sign-out", data=_token_for(kind, client, app.test_client())).status_code == 400
    assert signed_in_name(client) == member.name
    assert db.session.scalar(select(func.count(MemberSession.id))) == 1


# ---------------------------------------------------------------- GET and HEAD


def test_opening_a_link_only_shows_a_button(client, member):
    token = token_of(request_email(client, member.email))
    for _ in range(2):  # mail scanners fetch links, sometimes twice
        page = client.get(f"/sign-in/link/{token}")
        assert page.status_code == 200
        assert re.search(r'<form method="post"[^>]*>.*<button type="submit"[^>]*>Sign in</button>', page.text, re.S)
    assert login_row(token).used_at is None
    assert signed_in_name(client) is None
    assert client.post(f"/sign-in/link/{token}").status_code == 302
    assert signed_in_name(client) == member.name


def test_head_request_leaves_the_link_usable(client, member):
    token = token_of(request_email(client, member.email))
    assert client.head(f"/sign-in/link/{token}").status_code == 200
    assert login_row(token).used_at is None
    assert db.session.scalar(select(func.count(MemberSession.id))) == 0
    assert client.post(f"/sign-in/link/{token}").status_code == 302


# ---------------------------------------------------------------- session cookie


def _set_cookie_header(response) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "=")]
    assert headers, "no session cookie set"
    return headers[-1]


def test_session_cookie_is_httponly_lax_and_secure_over_https(client, member):
    response = sign_in_by_link(client, member.email)
    header = _set_cookie_header(response)
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Secure" in header


@pytest.mark.app_config(BASE_URL="http://127.0.0.1:5000")
def test_session_cookie_is_not_secure_over_plain_http(client, member):
    header = _set_cookie_header(sign_in_by_link(client, member.email))
    assert "HttpOnly" in header and "SameSite=Lax" in header
    assert "Secure" not in header


@CSRF_ON
def test_signing_in_starts_a_new_session(app, client, member):
    client.get("/sign-in")
    anonymous_cookie = session_cookie(client)
    assert anonymous_cookie
    token, _ = _queue_link(member)
    page = client.get(f"/sign-in/link/{token}")
    client.post(f"/sign-in/link/{token}", data={"csrf_token": csrf_from(page.text)})
    first_cookie = session_cookie(client)
    first_id = db.session.scalar(select(MemberSession.id))
    assert first_cookie != anonymous_cookie
    assert signed_in_name(client) == member.name

    token, _ = _queue_link(member)
    page = client.get(f"/sign-in/link/{token}")
    client.post(f"/sign-in/link/{token}", data={"csrf_token": csrf_from(page.text)})
    assert signed_in_name(client) == member.name
    ids = list(db.session.scalars(select(MemberSession.id)))
    assert ids and first_id not in ids
    assert session_cookie(client) not in (first_cookie, anonymous_cookie)

    for old in (anonymous_cookie, first_cookie):
        replay = app.test_client()
        replay.set_cookie(COOKIE, old)
        assert signed_in_name(replay) is None


def test_sign_out_ends_the_session_for_a_replayed_cookie(app, client, member):
    sign_in_by_link(client, member.email)
    old_cookie = session_cookie(client)
    assert signed_in_name(client) == member.name
    response = client.post("/sign-out")
    assert response.status_code == 302
    assert signed_in_name(client) is None
    assert db.session.scalar(select(func.count(MemberSession.id))) == 0

    replay = app.test_client()
    replay.set_cookie(COOKIE, old_cookie)
    assert signed_in_name(replay) is None
    assert replay.get("/profile").status_code == 302


# ---------------------------------------------------------------- next=

HOSTILE_NEXT = [
    "//evil.example",
    "//evil.example/profile",
    "/\\evil.example",
    "\\\\evil.example",
    "https:evil.example",
    "https://evil.example",
    "http://evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "/\t/evil.example",
    "/%09/evil.example",
    " //evil.example",
    "evil.example",
    "",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_safe_next_refuses_other_sites(target):
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/profile", "/meetings/kxn-3?tab=notes", "/search?q=a%20b#results"])
def test_safe_next_keeps_site_paths(target):
    assert safe_next(target) == target


@pytest.mark.parametrize("target", [*HOSTILE_NEXT, "/profile"])
def test_next_after_link_sign_in_only_leads_to_this_site(client, member, target):
    response = sign_in_by_link(client, member.email, target)
    assert response.status_code == 302
    assert response.headers["Location"] == ("/profile" if target == "/profile" else "/")


@pytest.mark.parametrize("target", [*HOSTILE_NEXT, "/profile"])
def test_next_given_to_the_code_form_only_leads_to_this_site(client, member, target):
    message = request_email(client, member.email)
    response = client.post("/sign-in/code", data={"email": member.email, "code": code_of(message), "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == ("/profile" if target == "/profile" else "/")


def test_a_protected_page_returns_there_after_sign_in(client, member):
    first = client.get("/profile")
    assert first.status_code == 302
    sign_in_url = urlsplit(first.headers["Location"])
    assert sign_in_url.path == "/sign-in"
    next_path = parse_qs(sign_in_url.query)["next"][0]
    response = sign_in_by_link(client, member.email, next_path)
    assert response.headers["Location"] == "/profile"
    assert client.get("/profile").status_code == 200


# ---------------------------------------------------------------- tokens


def test_a_link_signs_in_once(app, client, member):
    token = token_of(request_email(client, member.email))
    assert client.post(f"/sign-in/link/{token}").status_code == 302
    assert signed_in_name(client) == member.name

    other = app.test_client()
    for response in (other.get(f"/sign-in/link/{token}"), other.post(f"/sign-in/link/{token}")):
        assert response.status_code == 410
        assert "no longer valid" in response.text
    assert signed_in_name(other) is None


def test_a_link_opened_again_on_the_device_it_signed_in_says_she_is_signed_in(client, member):
    """Tapping the email's link a second time (or pressing Sign in in a second tab) finds her signed in already: the
    page says so and leads on, rather than only asking her to send for a new link."""
    token = token_of(request_email(client, member.email))
    assert client.post(f"/sign-in/link/{token}").status_code == 302
    for response in (client.get(f"/sign-in/link/{token}"), client.post(f"/sign-in/link/{token}")):
        assert response.status_code == 410
        page = " ".join(re.sub(r"<[^>]+>", " ", response.text).split())
        assert f"You are signed in as {member.name} on this device already." in page
        assert 'href="/">Go to the meetings</a>' in response.text
        assert "Send me a new link" not in page
    assert signed_in_name(client) == member.name


def test_an_expired_link_and_code_fail(client, member):
    message = request_email(client, member.email)
    token = token_of(message)
    db.session.execute(update(LoginToken).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    db.session.commit()
    assert client.get(f"/sign-in/link/{token}").status_code == 410
    assert client.post(f"/sign-in/link/{token}").status_code == 410
    response = client.post("/sign-in/code", data={"email": member.email, "code": code_of(message)})
    assert response.status_code == 422 and "not right or has expired" in response.text
    assert signed_in_name(client) is None


def test_login_links_expire_within_minutes(client, member):
    request_email(client, member.email)
    row = db.session.scalar(select(LoginToken))
    lifetime = row.expires_at - row.created_at
    assert dt.timedelta(minutes=1) < lifetime <= dt.timedelta(minutes=30)


def test_the_code_works_once(app, client, member):
    message = request_email(client, member.email)
    data = {"email": member.email, "code": code_of(message)}
    assert client.post("/sign-in/code", data=data).status_code == 302
    assert signed_in_name(client) == member.name

    other = app.test_client()
    response = other.post("/sign-in/code", data=data)
    assert response.status_code == 422 and "not right or has expired" in response.text
    assert signed_in_name(other) is None
    assert other.post(f"/sign-in/link/{token_of(message)}").status_code == 410


def test_a_code_typed_with_spaces_or_phone_digits_works(client, member):
    code = code_of(request_email(client, member.email))
    full_width = "".join(chr(0xFF10 + int(d)) for d in code)
    response = client.post("/sign-in/code", data={"email": member.email.upper(), "code": f" {full_width} "})
    assert response.status_code == 302
    assert signed_in_name(client) == member.name


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_four_wrong_codes_still_leave_the_fifth_try(client, member):
    code = code_of(request_email(client, member.email))
    for _ in range(4):
        assert "not right" in client.post("/sign-in/code", data={"email": member.email, "code": _wrong(code)}).text
    assert client.post("/sign-in/code", data={"email": member.email, "code": code}).status_code == 302


def test_five_wrong_codes_end_the_token(client, member):
    message = request_email(client, member.email)
    code = code_of(message)
    for _ in range(5):
        response = client.post("/sign-in/code", data={"email": member.email, "code": _wrong(code)})
        assert response.status_code == 422 and "not right or has expired" in response.text
    response = client.post("/sign-in/code", data={"email": member.email, "code": code})
    assert response.status_code == 422
    assert signed_in_name(client) is None
    assert client.get(f"/sign-in/link/{token_of(message)}").status_code == 410


def test_a_token_for_one_member_never_signs_in_another(app, client, make_member):
    alice = make_member(name="Alice Able", email="alice@example.org")
    bob = make_member(name="Bob Baker", email="bob@example.org")
    alice_message = request_email(client, alice.email)
    request_email(client, bob.email)

    response = client.post("/sign-in/code", data={"email": bob.email, "code": code_of(alice_message)})
    assert response.status_code == 422
    assert signed_in_name(client) is None

    client.post(f"/sign-in/link/{token_of(alice_message)}")
    assert signed_in_name(client) == alice.name
    assert set(db.session.scalars(select(MemberSession.member_id))) == {alice.id}


def test_link_tokens_are_random_and_only_their_hashes_are_stored(client, member):
    messages = [request_email(client, member.email) for _ in range(3)]
    tokens = [token_of(m) for m in messages]
    codes = [code_of(m) for m in messages]
    assert len(set(tokens)) == 3
    for token in tokens:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert len(raw) * 8 >= 128
        assert len(set(token)) > 12  # not a counter or a padded id

    dump = " ".join(
        " ".join(str(value) for value in row) for row in db.session.execute(text("SELECT * FROM login_tokens")).all()
    )
    for token, code in zip(tokens, codes, strict=True):
        assert token not in dump
        assert code not in dump
        assert auth_service._digest(token) in dump


# ---------------------------------------------------------------- "email me a link"


def _outward(response, client) -> tuple:
    location = response.headers.get("Location", "")
    page = client.get(location).text if location else response.text
    return response.status_code, re.sub(r"email=[^&]*", "email=*", location), page


def test_known_and_unknown_addresses_get_the_same_answer(app, make_member):
    known = make_member(email="known@example.org")
    make_member(email="gone@example.org", active=False)
    answers = {}
    for email in ("known@example.org", "nobody@example.org", "gone@example.org"):
        client = app.test_client()
        status, location, page = _outward(client.post("/sign-in", data={"email": email, "next": "/profile"}), client)
        answers[email] = (status, location, page.replace(email, "<address>"))
    assert answers["known@example.org"][0] == 302
    assert answers["known@example.org"] == answers["nobody@example.org"] == answers["gone@example.org"]
    assert [m.member_id for m in db.session.scalars(select(OutboxMessage))] == [known.id]


@pytest.mark.app_config(LOGIN_RATE_LIMIT=3)
def test_sign_in_emails_per_address_are_rate_limited(app, member):
    for _n in range(3):
        assert app.test_client().post("/sign-in", data={"email": member.email}).status_code == 302
    response = app.test_client().post("/sign-in", data={"email": member.email.upper()})
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many attempts" in response.text
    assert 'aria-label="Main"' in response.text  # the site layout, not a bare error
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert len(outbox_for(member.email)) == 3
    # another address is not held up
    assert app.test_client().post("/sign-in", data={"email": "other@example.org"}).status_code == 302


@pytest.mark.app_config(LOGIN_RATE_LIMIT_PER_CLIENT=3)
def test_sign_in_attempts_per_client_are_rate_limited(client, member):
    for n in range(3):
        assert client.post("/sign-in", data={"email": f"person{n}@example.org"}).status_code == 302
    response = client.post("/sign-in", data={"email": member.email})
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert outbox_count() == 0


@pytest.mark.app_config(LOGIN_RATE_LIMIT_PER_CLIENT=3)
def test_guessing_links_is_rate_limited(client):
    for _ in range(3):
        assert client.get(f"/sign-in/link/{secrets.token_urlsafe(32)}").status_code == 410
    response = client.post(f"/sign-in/link/{secrets.token_urlsafe(32)}")
    assert response.status_code == 429
    assert response.headers["Retry-After"]


@pytest.mark.app_config(LOGIN_RATE_LIMIT=3, LOGIN_RATE_WINDOW_SECONDS=60)
def test_the_rate_limit_window_passes(client, member):
    for _ in range(3):
        client.post("/sign-in", data={"email": member.email})
    assert client.post("/sign-in", data={"email": member.email}).status_code == 429
    db.session.execute(update(RateLimitHit).values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=61)))
    db.session.commit()
    assert client.post("/sign-in", data={"email": member.email}).status_code == 302


# ---------------------------------------------------------------- roles and deactivation mid-session


def test_a_deactivated_member_is_signed_out_on_the_next_request(client, member):
    sign_in_by_link(client, member.email)
    assert client.get("/profile").status_code == 200
    member.active = False
    db.session.commit()
    assert client.get("/profile").status_code == 302
    assert signed_in_name(client) is None


def test_a_deactivated_member_cannot_use_a_link_sent_before(client, member):
    message = request_email(client, member.email)
    member.active = False
    db.session.commit()
    assert client.get(f"/sign-in/link/{token_of(message)}").status_code == 200  # nothing revealed by a GET
    assert client.post(f"/sign-in/link/{token_of(message)}").status_code == 410
    assert client.post("/sign-in/code", data={"email": member.email, "code": code_of(message)}).status_code == 422
    assert signed_in_name(client) is None


def test_an_organiser_role_removed_mid_session_stops_at_once(client, organiser):
    sign_in_by_link(client, organiser.email)
    assert client.get("/outbox/").status_code == 200
    organiser.is_organiser = False
    db.session.commit()
    assert client.get("/outbox/").status_code == 403
    assert client.get("/account/password").status_code == 403


# ---------------------------------------------------------------- organiser password


def test_organiser_sets_a_password_and_signs_in_with_it(app, client, organiser):
    sign_in_by_link(client, organiser.email)
    assert client.get("/account/password").status_code == 200
    short = client.post("/account/password", data={"password": "short pass", "confirm": "short pass"})
    assert short.status_code == 422 and "at least 12 characters" in short.text
    differ = client.post("/account/password", data={"password": PASSWORD, "confirm": PASSWORD + "!"})
    assert "differ" in differ.text
    saved = client.post("/account/password", data={"password": PASSWORD, "confirm": PASSWORD})
    assert saved.status_code == 302
    db.session.refresh(organiser)
    assert organiser.password_hash and PASSWORD not in organiser.password_hash

    browser = app.test_client()
    response = browser.post(
        "/sign-in/password",
        data={"password-email": organiser.email.upper(), "password-password": PASSWORD, "password-next": "/outbox/"},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/outbox/"
    assert signed_in_name(browser) == organiser.name


def test_wrong_password_and_unknown_email_get_the_same_message(app, organiser_with_password, make_member):
    member = make_member(email="member-with-hash@example.org")
    auth_service.set_password(member, PASSWORD)  # a member without the role: the password gives nothing
    db.session.commit()
    answers = []
    for email, password in [
        (organiser_with_password.email, PASSWORD + "x"),
        ("nobody@example.org", PASSWORD),
        (member.email, PASSWORD),
    ]:
        browser = app.test_client()
        response = browser.post("/sign-in/password", data={"password-email": email, "password-password": password})
        assert response.status_code == 422
        assert signed_in_name(browser) is None
        answers.append(re.findall(r'class="error-message"[^>]*>([^<]*)<', response.text))
    assert answers[0] == answers[1] == answers[2] == ["That email address and password do not match. "]


def test_a_former_organisers_password_stops_working(app, organiser_with_password):
    organiser_with_password.is_organiser = False
    db.session.commit()
    browser = app.test_client()
    browser.post(
        "/sign-in/password", data={"password-email": organiser_with_password.email, "password-password": PASSWORD}
    )
    assert signed_in_name(browser) is None


def test_a_member_cannot_set_a_password(client, member, sign_in):
    sign_in(client, member)
    assert client.get("/account/password").status_code == 403
    assert client.post("/account/password", data={"password": PASSWORD, "confirm": PASSWORD}).status_code == 403
    db.session.refresh(member)
    assert member.password_hash is None


def test_signing_in_to_set_a_password_is_required(client):
    response = client.get("/account/password")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/sign-in"


# ---------------------------------------------------------------- headers


def _csp(response) -> dict[str, list[str]]:
    directives = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@CSRF_ON
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/sign-in", 200),
        ("GET", "/sign-in/code", 200),
        ("GET", "/no-such-page", 404),
        ("GET", "/sign-out", 405),
        ("POST", "/sign-in", 400),
        ("GET", "/static/site.css", 200),
        ("GET", "/sign-in/link/not-a-token", 410),
        ("GET", "/outbox/", 302),
    ],
)
def test_security_headers_on_every_page(client, method, path, status):
    response = client.open(path, method=method)
    response.close()
    assert response.status_code == status
    csp = _csp(response)
    script_src = csp.get("script-src", csp.get("default-src"))
    assert script_src and "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in {"no-referrer", "same-origin", "strict-origin"}


def test_security_headers_for_signed_in_pages(client, member, sign_in):
    sign_in(client, member)
    response = client.get("/profile")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "no-store" in response.headers["Cache-Control"]


# ---------------------------------------------------------------- links in email


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"},
    ],
)
@pytest.mark.parametrize(
    "proxies",
    [
        pytest.param(0, id="no-proxy"),
        pytest.param(1, id="behind-a-proxy", marks=pytest.mark.app_config(TRUSTED_PROXIES=1)),
    ],
)
def test_links_in_email_come_from_the_configured_base_url(client, member, headers, proxies):
    response = client.post("/sign-in", data={"email": member.email}, headers=headers)
    assert response.status_code == 302
    message = outbox_for(member.email)[-1]
    links = re.findall(r"https?://\S+", message.text_body) + re.findall(r'href="([^"]+)"', message.html_body)
    assert links
    assert all(link.startswith("https://kxn.test/") for link in links), links
    assert "evil.example" not in message.text_body + message.html_body + message.message_id


# ---------------------------------------------------------------- secret key and production errors


def _production_config(app_config, **overrides) -> dict:
    config = {k: v for k, v in app_config.items() if k != "SECRET_KEY"}
    config.update(TESTING=False, **overrides)
    return config


@pytest.mark.parametrize("secret", [None, kxn_config.PLACEHOLDER_SECRET, "short-secret"])
def test_production_refuses_to_start_without_a_real_secret_key(app_config, monkeypatch, secret):
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    monkeypatch.delenv("KXN_SECRET_KEY", raising=False)
    if secret is not None:
        monkeypatch.setenv("KXN_SECRET_KEY", secret)
    with pytest.raises(kxn_config.ConfigError) as error:
        create_app(_production_config(app_config))
    message = str(error.value)
    assert "\n" not in message
    assert "KXN_SECRET_KEY" in message and "export" in message


def test_production_starts_with_a_long_secret_key(app_config, monkeypatch):
    secret = secrets.token_hex(32)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    monkeypatch.setenv("KXN_SECRET_KEY", secret)
    app = create_app(_production_config(app_config))
    assert app.config["SECRET_KEY"] == secret and not app.debug and not app.testing
    with app.app_context():
        db.engine.dispose()


def test_a_crash_in_production_shows_the_plain_error_page(app_config, migrated, monkeypatch):
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    app = create_app(_production_config(app_config, SECRET_KEY=TEST_SECRET, PROPAGATE_EXCEPTIONS=False))

    @app.route("/crash")
    def crash():
        raise RuntimeError("secret internals: password=hunter2")

    response = app.test_client().get("/crash")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text
    for leak in ("Traceback", "RuntimeError", "hunter2", "crash()", "werkzeug", "debugger"):
        assert leak not in response.text
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    with app.app_context():
        db.engine.dispose()


# ---------------------------------------------------------------- arbitrary input


@pytest.mark.app_config(LOGIN_RATE_LIMIT_PER_CLIENT=1_000_000)
@given(a=st.text(), b=st.text(), c=st.text(), known=st.booleans())
def test_arbitrary_text_in_sign_in_forms_never_gives_a_server_error(
    app, client, organiser_with_password, sign_in, a, b, c, known
):
    email = organiser_with_password.email if known else a
    signed_in = app.test_client()
    sign_in(signed_in, organiser_with_password)
    response = signed_in.post("/account/password", data={"password": a, "confirm": b if known else a})
    assert response.status_code in (302, 422), response.status_code
    requests = [
        ("POST", "/sign-in", {"email": email, "next": b}),
        ("POST", "/sign-in/code", {"email": email, "code": b, "next": c}),
        ("POST", "/sign-in/password", {"password-email": email, "password-password": b, "password-next": c}),
        ("GET", f"/sign-in?next={quote(a)}", None),
        ("GET", f"/sign-in/code?email={quote(a)}&next={quote(b)}", None),
        ("GET", f"/sign-in/link/{quote(a, safe='')}", None),
        ("POST", f"/sign-in/link/{quote(a, safe='')}", None),
    ]
    for method, url, data in requests:
        response = client.open(url, method=method, data=data)
        assert response.status_code < 500, (method, url, data)
        assert response.status_code in (200, 302, 308, 400, 404, 405, 410, 422), (method, url, response.status_code)
        if response.status_code in (302, 308):
            location = urlsplit(response.headers["Location"])
            assert location.netloc in ("", "localhost") and not location.path.startswith("//"), location


@CSRF_ON
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"email": "ann@example.org"}', "application/json"),
        (b"email=ann@example.org", "text/plain"),
        (
            b"--x\r\nContent-Disposition: form-data; name=email\r\n\r\nann@example.org\r\n--x--\r\n",
            "multipart/form-data",
        ),
    ],
)
def test_a_body_no_form_sends_is_told_apart_from_an_expired_form(client, body, content_type):
    """Refused either way, with nothing changed; the message says what was wrong with it, not that a page expired."""
    response = client.post("/sign-in", data=body, content_type=content_type)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "could not be read as a form" in page and "had expired" not in page


@CSRF_ON
def test_a_form_without_its_token_is_still_an_expired_form(client):
    response = client.post("/sign-in", data={"email": "ann@example.org"})
    assert response.status_code == 400 and "had expired" in response.get_data(as_text=True)
