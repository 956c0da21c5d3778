"""Home shows what is coming and the latest past meetings; every past meeting is on the past meetings pages, newest
first, a page at a time, so neither page grows with the network's history."""

from __future__ import annotations

import datetime as dt
import re

from kxn_meetings.extensions import db
from kxn_meetings.models import MeetingStatus, Visibility
from kxn_meetings.views import main

from .notes_helpers import write_notes


def past(make_meeting, count: int, **values):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return [
        make_meeting(title=f"Past meeting {n}", start=now - dt.timedelta(days=7 * (n + 1)), **values)
        for n in range(count)
    ]


def titles(html: str) -> list[str]:
    return re.findall(r">(Past meeting \d+)</a>", html)


def test_home_lists_the_latest_past_meetings_and_links_to_the_rest(client, make_meeting):
    past(make_meeting, main.LATEST_PAST + 3)
    html = client.get("/").get_data(as_text=True)
    assert titles(html) == [f"Past meeting {n}" for n in range(main.LATEST_PAST)]
    assert 'href="/past"' in html and "All past meetings" in html


def test_home_has_no_archive_link_while_everything_fits(client, make_meeting):
    past(make_meeting, 2)
    html = client.get("/").get_data(as_text=True)
    assert titles(html) == ["Past meeting 0", "Past meeting 1"]
    assert "All past meetings" not in html


def test_past_meetings_come_a_page_at_a_time_newest_first(client, make_meeting):
    past(make_meeting, main.PAST_PER_PAGE + 2)
    first = client.get("/past").get_data(as_text=True)
    assert titles(first) == [f"Past meeting {n}" for n in range(main.PAST_PER_PAGE)]
    assert "Page 1 of 2" in first
    second = client.get("/past?page=2").get_data(as_text=True)
    assert titles(second) == [f"Past meeting {main.PAST_PER_PAGE}", f"Past meeting {main.PAST_PER_PAGE + 1}"]
    assert titles(client.get("/past?page=99").get_data(as_text=True)) == titles(second)
    assert client.get("/past?page=%00x").status_code == 200


def test_past_meetings_leave_out_drafts_cancellations_and_future_meetings(client, make_meeting):
    past(make_meeting, 1)
    now = dt.datetime.now(dt.UTC)
    make_meeting(title="Past meeting 90", start=now - dt.timedelta(days=3), status=MeetingStatus.DRAFT)
    make_meeting(title="Past meeting 91", start=now - dt.timedelta(days=3), status=MeetingStatus.CANCELLED)
    make_meeting(title="Past meeting 92", start=now + dt.timedelta(days=3))
    assert titles(client.get("/past").get_data(as_text=True)) == ["Past meeting 0"]


def test_past_meetings_link_published_notes_and_hide_members_only_titles(app, client, make_meeting, organiser):
    shown, hidden = past(make_meeting, 2)
    hidden.visibility = Visibility.MEMBERS
    db.session.commit()
    write_notes(shown, organiser, publish=True)
    html = client.get("/past").get_data(as_text=True)
    assert f'href="/meetings/{shown.slug}/notes"' in html
    assert "Members-only meeting" in html and "Past meeting 1" not in html


def test_an_empty_archive_says_what_will_be_there(client):
    html = client.get("/past").get_data(as_text=True)
    assert "No past meetings yet" in html


def test_the_meetings_address_without_a_meeting_goes_to_the_list_of_them(client):
    for path in ("/meetings", "/meetings/"):
        response = client.get(path)
        assert (response.status_code, response.headers["Location"]) == (302, "/"), path
    assert client.get("/meetings/no-such-meeting").status_code == 404


def test_the_archive_guessed_from_a_meetings_address_is_found_unless_a_meeting_is_named_so(client, make_meeting):
    response = client.get("/meetings/past")
    assert (response.status_code, response.headers["Location"]) == (302, "/past")
    meeting = make_meeting(title="Past, present and future", slug="past")
    assert meeting.slug == "past"
    page = client.get("/meetings/past")
    assert page.status_code == 200 and "Past, present and future" in page.get_data(as_text=True)
