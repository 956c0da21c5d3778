"""A session cookie's signature is checked once per process (security.SessionInterface): a cookie seen before gives
back what it held, still only within the session's lifetime, and a cookie changed in any way is checked afresh."""

from __future__ import annotations

import types

import itsdangerous.timed
import pytest
from flask import flash

from kxn_meetings import security

LIFETIME = 3600


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """One clock for the app's check and itsdangerous' own."""
    now = [2_000_000_000.0]
    fake = types.SimpleNamespace(time=lambda: now[0])
    monkeypatch.setattr(security, "time", fake)
    monkeypatch.setattr(itsdangerous.timed, "time", fake)
    return now


@pytest.fixture
def checks(monkeypatch) -> list[int]:
    """How many times a session cookie's signature was checked."""
    calls: list[int] = []
    loads = itsdangerous.URLSafeTimedSerializer.loads

    def counted(self, *args, **kwargs):
        calls.append(1)
        return loads(self, *args, **kwargs)

    monkeypatch.setattr(itsdangerous.URLSafeTimedSerializer, "loads", counted)
    return calls


def _cookie(client, app) -> str:
    found = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert found is not None
    return found.value


def _signed_in_as(app, cookie: str) -> str | None:
    """Whose name the profile page shows to a client sending only `cookie`."""
    client = app.test_client(use_cookies=False)
    response = client.get("/profile", headers={"Cookie": f"{app.config['SESSION_COOKIE_NAME']}={cookie}"})
    return None if response.status_code != 200 else "signed in"


@pytest.mark.app_config(PERMANENT_SESSION_LIFETIME=LIFETIME)
def test_a_cookie_is_checked_once_and_then_trusted_only_within_its_lifetime(
    app, client, member, sign_in, clock, checks
):
    sign_in(client, member)
    cookie = _cookie(client, app)
    assert _signed_in_as(app, cookie) and len(checks) == 1
    for _ in range(3):
        assert _signed_in_as(app, cookie)
    assert len(checks) == 1
    clock[0] += LIFETIME
    assert _signed_in_as(app, cookie) and len(checks) == 1
    clock[0] += 1
    assert _signed_in_as(app, cookie) is None, "expired, though seen before"
    assert len(checks) == 2


def test_a_cookie_changed_in_any_way_is_checked_afresh_and_refused(app, client, member, sign_in, checks):
    sign_in(client, member)
    cookie = _cookie(client, app)
    assert _signed_in_as(app, cookie)
    middle = len(cookie) - 10  # inside the signature, where every bit counts (the last character's low bits do not)
    swapped = cookie[:middle] + ("A" if cookie[middle] != "A" else "B") + cookie[middle + 1 :]
    for changed in (swapped, cookie + "x", "x" + cookie, cookie[:-3]):
        checks.clear()
        assert _signed_in_as(app, changed) is None
        assert checks == [1]


def test_a_new_secret_key_checks_every_cookie_again(app, client, member, sign_in, checks):
    sign_in(client, member)
    cookie = _cookie(client, app)
    assert _signed_in_as(app, cookie)
    app.secret_key = app.config["SECRET_KEY"] = "another-key-" + "k" * 40
    checks.clear()
    assert _signed_in_as(app, cookie) is None and checks == [1]


def test_a_session_holding_more_than_plain_values_is_not_kept(app, client, member, sign_in, checks):
    @app.route("/_flash_for_test")
    def flash_for_test():
        flash("Saved.", "success")
        return "ok"

    sign_in(client, member)
    client.get("/_flash_for_test")
    cookie = _cookie(client, app)
    checks.clear()
    plain = app.test_client(use_cookies=False)
    headers = {"Cookie": f"{app.config['SESSION_COOKIE_NAME']}={cookie}"}
    for _ in range(2):
        assert "Saved." in plain.get("/profile", headers=headers).get_data(as_text=True)
    assert checks == [1, 1], "a list (the flashes) a request may change in place is read afresh each time"
