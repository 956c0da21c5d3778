"""Within FEED_VERSION_SECONDS a process answers feed polls from the version it last read."""

import pytest
from flask import request

from kxn_meetings.extensions import db
from kxn_meetings.services import calendars as calendar_service

from .clocks import Clock, stopped_clock


@pytest.mark.app_config(FEED_VERSION_SECONDS=60)
def test_the_feed_version_is_reused_within_its_window(client, make_meeting):
    meeting = make_meeting(title="First title")
    etag = client.get("/calendar.ics").headers["ETag"]
    meeting.title = "Second title"
    db.session.commit()
    again = client.get("/calendar.ics", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_with_no_window_every_poll_sees_the_change(client, make_meeting):
    meeting = make_meeting(title="First title")
    etag = client.get("/calendar.ics").headers["ETag"]
    meeting.title = "Second title"
    db.session.commit()
    again = client.get("/calendar.ics", headers={"If-None-Match": etag})
    assert again.status_code == 200
    assert b"Second title" in again.data


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return stopped_clock(monkeypatch, calendar_service)


@pytest.fixture
def requests_reaching_flask(app) -> list[str]:
    seen: list[str] = []
    app.before_request(lambda: seen.append(request.path) and None)
    return seen


@pytest.mark.app_config(FEED_VERSION_SECONDS=5)
def test_a_repeated_poll_gets_the_same_304_without_reaching_the_app(
    client, make_meeting, clock, requests_reaching_flask
):
    make_meeting(title="Youth engagement")
    etag = client.get("/calendar.ics").headers["ETag"]
    first = client.get("/calendar.ics", headers={"If-None-Match": etag})
    assert first.status_code == 304 and len(requests_reaching_flask) == 2
    again = client.get("/calendar.ics", headers={"If-None-Match": f'"other", {etag}'})
    assert again.status_code == 304 and len(requests_reaching_flask) == 2
    assert sorted(again.headers.items()) == sorted(first.headers.items())
    assert again.headers["Content-Security-Policy"] and again.headers["X-Content-Type-Options"] == "nosniff"
    assert client.head("/calendar.ics", headers={"If-None-Match": etag}).status_code == 304
    assert len(requests_reaching_flask) == 2


@pytest.mark.app_config(FEED_VERSION_SECONDS=5)
def test_polls_that_may_differ_reach_the_app(client, make_meeting, clock, requests_reaching_flask):
    meeting = make_meeting(title="Youth engagement")
    etag = client.get("/calendar.ics").headers["ETag"]
    assert client.get("/calendar.ics", headers={"If-None-Match": etag}).status_code == 304
    reached = len(requests_reaching_flask)
    assert client.get("/calendar.ics", headers={"If-None-Match": '"another"'}).status_code == 200
    assert client.get("/calendar.ics?x=1", headers={"If-None-Match": etag}).status_code == 304
    client.set_cookie("kxn_session", "x", domain="localhost")
    assert client.get("/calendar.ics", headers={"If-None-Match": etag}).status_code == 304
    client.delete_cookie("kxn_session", domain="localhost")
    assert len(requests_reaching_flask) == reached + 3
    meeting.title = "Youth engagement, moved"
    db.session.commit()
    clock.now += 5
    changed = client.get("/calendar.ics", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and b"moved" in changed.data


@pytest.mark.app_config(FEED_VERSION_SECONDS=5)
def test_a_repeated_download_gets_the_same_feed_without_reaching_the_app(
    client, make_meeting, clock, requests_reaching_flask
):
    meeting = make_meeting(title="Youth engagement")
    first = client.get("/calendar.ics")
    assert first.status_code == 200 and b"Youth engagement" in first.data and len(requests_reaching_flask) == 1
    again = client.get("/calendar.ics")
    assert again.status_code == 200 and len(requests_reaching_flask) == 1
    assert again.data == first.data and sorted(again.headers.items()) == sorted(first.headers.items())
    assert again.headers["Content-Security-Policy"] and again.headers["X-Content-Type-Options"] == "nosniff"

    meeting.title = "Youth engagement, moved"
    db.session.commit()
    assert client.get("/calendar.ics").data == first.data, "within the window the version read is the one served"
    clock.now += 5
    changed = client.get("/calendar.ics")
    assert b"moved" in changed.data and changed.headers["ETag"] != first.headers["ETag"]
    assert len(requests_reaching_flask) == 2
    assert client.get("/calendar.ics").data == changed.data and len(requests_reaching_flask) == 2


@pytest.mark.app_config(FEED_VERSION_SECONDS=5)
@pytest.mark.parametrize(
    "headers",
    [
        {"Range": "bytes=0-10"},
        {"If-Modified-Since": "Tue, 09 Mar 2099 15:00:00 GMT"},
        {"If-Match": '"x"'},
        {"If-Unmodified-Since": "Tue, 09 Mar 1999 15:00:00 GMT"},
        {"If-Range": '"x"'},
    ],
    ids=["range", "if-modified-since", "if-match", "if-unmodified-since", "if-range"],
)
def test_downloads_that_may_differ_reach_the_app(client, make_meeting, clock, requests_reaching_flask, headers):
    make_meeting(title="Youth engagement")
    assert client.get("/calendar.ics").status_code == 200
    client.get("/calendar.ics", headers=headers)
    client.get("/calendar.ics?x=1")
    client.head("/calendar.ics")
    client.set_cookie("kxn_session", "x", domain="localhost")
    client.get("/calendar.ics")
    assert len(requests_reaching_flask) == 5
