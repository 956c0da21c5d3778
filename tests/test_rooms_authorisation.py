"""Every organiser page and action of the workshop rooms × anonymous visitor, member and organiser; and the member's
own choice of room, for members only."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from kxn_meetings.extensions import db

from .rooms_helpers import rooms_state, rooms_world

# (method, path template, form data, what an organiser gets)
ROOMS_URLS = [
    ("GET", "/meetings/{rooms}/rooms", None, 200),
    ("GET", "/meetings/{rooms}/rooms/progress", None, 200),
    ("GET", "/meetings/{rooms}/rooms.csv", None, 200),
    ("POST", "/meetings/{rooms}/rooms/assign", {}, 302),
    ("POST", "/meetings/{rooms}/rooms/places", {"member_{alice}": "{room_b}", "member_{bob}": "0"}, 302),
    ("POST", "/meetings/{rooms}/rooms/instructions", {"instructions": "Zoom: Breakout rooms"}, 302),
    ("POST", "/meetings/{rooms}/rooms/scribes", {"room": "{room_b}", "member": "{bob}"}, 302),
    ("POST", "/meetings/{rooms}/rooms/scribes/{scribe}/send", {}, 302),
    ("POST", "/meetings/{rooms}/rooms/scribes/{scribe}/remove", {}, 302),
    ("POST", "/meetings/{rooms}/rooms/answers/{answer}/taken-in", {}, 302),
    ("POST", "/meetings/{rooms}/rooms/answers/taken-in", {}, 302),
    ("POST", "/meetings/{rooms_placed}/rooms/lock", {}, 302),
    ("POST", "/meetings/{rooms_locked}/rooms/unlock", {}, 302),
]
IDS = [f"{method} {path}" for method, path, _, _ in ROOMS_URLS]


@pytest.fixture
def world(make_meeting, make_member):
    return rooms_world(make_meeting, make_member)


def _request(client, method: str, path: str, data: dict | None, world: dict):
    path = path.format(**world)
    if data is not None:
        data = {key.format(**world): value.format(**world) for key, value in data.items()}
    return path, client.open(path, method=method, data=data)


def _state() -> tuple:
    db.session.expire_all()
    return rooms_state()


@pytest.mark.parametrize(("method", "path", "data", "_"), ROOMS_URLS, ids=IDS)
def test_anonymous_visitors_are_sent_to_sign_in_and_nothing_changes(client, world, method, path, data, _):
    before = _state()
    path, response = _request(client, method, path, data, world)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/sign-in"
    assert parse_qs(location.query)["next"] == [path]
    assert _state() == before


@pytest.mark.parametrize(("method", "path", "data", "_"), ROOMS_URLS, ids=IDS)
def test_members_are_refused_and_nothing_changes(client, sign_in, member, world, method, path, data, _):
    sign_in(client, member)
    before = _state()
    _, response = _request(client, method, path, data, world)
    assert response.status_code == 403
    assert _state() == before


@pytest.mark.parametrize(("method", "path", "data", "expected"), ROOMS_URLS, ids=IDS)
def test_organisers_may(client, sign_in, organiser, world, method, path, data, expected):
    sign_in(client, organiser)
    before = _state()
    _, response = _request(client, method, path, data, world)
    assert response.status_code == expected
    if method == "POST":
        assert _state() != before


def test_choosing_a_room_is_for_members_signed_in(client, world):
    response = client.post(f"/meetings/{world['rooms']}/rooms/preference", data={"room": world["room_b"]})
    assert urlsplit(response.headers["Location"]).path == "/sign-in"
