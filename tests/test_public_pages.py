"""Pages that are the same for every visitor are rendered once per PUBLIC_PAGE_SECONDS per process and served again
with an ETag: a change shows once that lag has passed, a repeat with If-None-Match gets 304, and nothing a member
sees is ever stored or served to anyone else."""

from __future__ import annotations

import pytest

from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, Rsvp, Visibility
from kxn_meetings.services import meetings as meeting_service
from kxn_meetings.views import public_pages

from .clocks import Clock, stopped_clock
from .notes_helpers import past_meeting, write_notes

pytestmark = pytest.mark.app_config(PUBLIC_PAGE_SECONDS=5)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return stopped_clock(monkeypatch, public_pages)


def text(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/meetings/{slug}", "/", "/meetings/{slug}/calendar.ics", "/notes/feed.atom"])
def test_a_repeat_is_served_with_an_etag_and_304(app, client, make_meeting, clock, path):
    meeting = make_meeting(title="Youth engagement")
    url = path.format(slug=meeting.slug)
    first = client.get(url)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and "Cookie" in first.headers["Vary"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert client.get(url).get_data() == first.get_data()


def test_an_edit_shows_once_the_lag_has_passed(app, client, make_meeting, clock):
    meeting = make_meeting(title="Youth engagement")
    path = f"/meetings/{meeting.slug}"
    assert "Youth engagement" in text(client, path)
    meeting.title = "Youth engagement, moved"
    db.session.commit()
    clock.now += 4
    assert "Youth engagement, moved" not in text(client, path)
    clock.now += 1.5
    assert "Youth engagement, moved" in text(client, path)


def test_answers_cancellation_and_notes_show_within_the_lag(app, client, make_meeting, make_member, organiser, clock):
    meeting = make_meeting(title="Youth engagement", capacity=2)
    path = f"/meetings/{meeting.slug}"
    assert "2 of 2 places left" in text(client, path)
    db.session.add(Rsvp(meeting_id=meeting.id, member_id=make_member().id, answer=Answer.GOING))
    db.session.commit()
    clock.now += 6
    assert "1 of 2 places left" in text(client, path)
    meeting_service.cancel(meeting, "The speakers are unwell.")
    db.session.commit()
    clock.now += 6
    assert "This meeting has been cancelled" in text(client, path)

    past = past_meeting(make_meeting, title="Violence reduction units")
    assert "What we learned" not in text(client, "/notes/feed.atom")
    write_notes(past, organiser, title="What we learned")
    clock.now += 6
    assert "What we learned" in text(client, "/notes/feed.atom")


def test_members_are_never_served_or_stored(app, client, make_meeting, member, member_client, clock):
    meeting = make_meeting(title="Youth engagement")
    path = f"/meetings/{meeting.slug}"
    db.session.add(Rsvp(meeting_id=meeting.id, member_id=member.id, answer=Answer.GOING, comment="Secret comment"))
    db.session.commit()
    mine = text(member_client, path)
    assert "You’re going" in mine
    visitor = text(client, path)
    assert "You’re going" not in visitor and member.name not in visitor and "Secret comment" not in visitor
    meeting.title = "Renamed for members"
    db.session.commit()
    assert "Renamed for members" in text(member_client, path)  # a member always gets a fresh page
    assert "Renamed for members" not in text(client, path)  # the visitor's copy waits for the lag


def test_a_redirect_or_a_flash_is_never_kept(app, client, make_meeting, clock):
    meeting = make_meeting(title="Members only", visibility=Visibility.MEMBERS)
    path = f"/meetings/{meeting.slug}"
    first = client.get(path)
    assert first.status_code == 302
    meeting.visibility = Visibility.PUBLIC
    db.session.commit()
    assert app.test_client().get(path).status_code == 200


def test_zero_seconds_renders_every_time(app, client, make_meeting, clock):
    app.config["PUBLIC_PAGE_SECONDS"] = 0
    meeting = make_meeting(title="Youth engagement")
    path = f"/meetings/{meeting.slug}"
    text(client, path)
    meeting.title = "At once"
    db.session.commit()
    assert "At once" in text(client, path)


def test_an_address_with_a_query_string_is_rendered_not_kept(app, client, make_meeting, clock):
    meeting = make_meeting(title="Youth engagement")
    path = f"/meetings/{meeting.slug}"
    for n in range(5):
        assert "Youth engagement" in text(client, f"{path}?n={n}")
    assert not app.extensions["kxn_public_pages"].pages
    meeting.title = "Renamed"
    db.session.commit()
    assert "Renamed" in text(client, f"{path}?n=0")
