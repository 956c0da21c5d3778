"""Every organiser page and action of the workshop rooms × anonymous visitor, member and organiser; and the member's
own choice of room, for members only."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from . import organiser_routes
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
IDS = organiser_routes.ids(ROOMS_URLS)


@pytest.fixture
def world(make_meeting, make_member):
    return rooms_world(make_meeting, make_member)


@pytest.mark.parametrize("row", ROOMS_URLS, ids=IDS)
def test_anonymous_visitors_are_sent_to_sign_in_and_nothing_changes(client, world, row):
    organiser_routes.visitor_is_sent_to_sign_in(client, row, world, rooms_state)


@pytest.mark.parametrize("row", ROOMS_URLS, ids=IDS)
def test_members_are_refused_and_nothing_changes(client, sign_in, member, world, row):
    sign_in(client, member)
    organiser_routes.member_is_refused(client, row, world, rooms_state)


@pytest.mark.parametrize("row", ROOMS_URLS, ids=IDS)
def test_organisers_may(client, sign_in, organiser, world, row):
    sign_in(client, organiser)
    organiser_routes.organiser_may(client, row, world, rooms_state)


def test_choosing_a_room_is_for_members_signed_in(client, world):
    response = client.post(f"/meetings/{world['rooms']}/rooms/preference", data={"room": world["room_b"]})
    assert urlsplit(response.headers["Location"]).path == "/sign-in"
