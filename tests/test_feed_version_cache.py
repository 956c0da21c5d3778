"""Within FEED_VERSION_SECONDS a process answers feed polls from the version it last read."""

import pytest

from kxn_meetings.extensions import db


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
