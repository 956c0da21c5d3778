"""Pages that are the same for every visitor are rendered once per PUBLIC_PAGE_SECONDS per process and served again
with an ETag: a change shows once that lag has passed, a repeat with If-None-Match gets 304, and nothing a member
sees is ever stored or served to anyone else. A member's page is built for her on each request from the same kept
meeting and parts, so it shows a change to the meeting within the same lag, and her own answer at once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from kxn_meetings import kept
from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, Rsvp, Visibility
from kxn_meetings.services import meetings as meeting_service

from .clocks import Clock, stopped_clock
from .notes_helpers import past_meeting, write_notes

pytestmark = pytest.mark.app_config(PUBLIC_PAGE_SECONDS=5)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return stopped_clock(monkeypatch, kept)


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
    assert "Secret comment" in mine and "Secret comment" not in text(client, path)


def test_a_members_own_answer_is_never_stale(app, client, make_meeting, member, member_client, clock):
    meeting = make_meeting(title="Youth engagement")
    path = f"/meetings/{meeting.slug}"
    assert "Will you come?" in text(member_client, path)
    assert member_client.post(f"{path}/rsvp", data={"answer": "going"}).status_code == 302
    assert "You’re going" in text(member_client, path)
    rsvp = db.session.scalar(select(Rsvp).where(Rsvp.member_id == member.id))
    rsvp.answer = Answer.MAYBE
    db.session.commit()
    assert "You said maybe" in text(member_client, path)


@pytest.mark.parametrize(("signed_in", "lag"), [("member_client", 5), ("organiser_client", 0)])
def test_a_change_to_the_meeting_reaches_members_within_the_lag_and_organisers_at_once(
    request, make_meeting, clock, signed_in, lag
):
    client = request.getfixturevalue(signed_in)
    meeting = make_meeting(title="Youth engagement")
    path = f"/meetings/{meeting.slug}"
    assert "Youth engagement" in text(client, path)
    meeting.title = "Renamed"
    db.session.commit()
    if lag:
        clock.now += lag - 1
        assert "Renamed" not in text(client, path)
        clock.now += 1.5
    assert "Renamed" in text(client, path)


def test_a_redirect_or_a_flash_is_never_kept(app, client, make_meeting, clock):
    meeting = make_meeting(title="Members only", visibility=Visibility.MEMBERS)
    path = f"/meetings/{meeting.slug}"
    first = client.get(path)
    assert first.status_code == 302
    assert not app.extensions["kxn_public_pages"]
    meeting.visibility = Visibility.PUBLIC
    db.session.commit()
    clock.now += 6
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
    assert not app.extensions["kxn_public_pages"]
    meeting.title = "Renamed"
    db.session.commit()
    clock.now += 6
    assert "Renamed" in text(client, f"{path}?n=0")
    assert not app.extensions["kxn_public_pages"]


def test_who_else_is_coming_follows_answers_and_shows_only_to_those_going(
    app, make_meeting, make_member, member, member_client, sign_in, clock
):
    meeting = make_meeting(title="Youth engagement")
    path = f"/meetings/{meeting.slug}"
    db.session.add(Rsvp(meeting_id=meeting.id, member_id=member.id, answer=Answer.GOING))
    db.session.commit()
    assert "You’re the first to say you’re going" in text(member_client, path)
    other = make_member(name="Priya Analyst", organisation="Greater Manchester Police", show_name_to_attendees=True)
    db.session.add(Rsvp(meeting_id=meeting.id, member_id=other.id, answer=Answer.GOING))
    db.session.commit()
    clock.now += 6
    page = text(member_client, path)
    assert "2 members are going" in page and "Priya Analyst" in page
    other.name = "Priya Okafor"
    db.session.commit()
    clock.now += 6
    assert "Priya Okafor" in text(member_client, path)

    maybe = make_member(name="Maybe Member")
    db.session.add(Rsvp(meeting_id=meeting.id, member_id=maybe.id, answer=Answer.MAYBE))
    db.session.commit()
    maybe_client = app.test_client()
    sign_in(maybe_client, maybe)
    assert "Priya Okafor" not in text(maybe_client, path)
    assert "Priya Okafor" not in text(app.test_client(), path)


def test_a_members_only_notes_panel_kept_for_members_is_not_shown_to_visitors(
    app, client, make_meeting, organiser, member_client, clock
):
    past = past_meeting(make_meeting, title="Violence reduction units")
    write_notes(past, organiser, title="Members-only lessons", visibility=Visibility.MEMBERS)
    path = f"/meetings/{past.slug}"
    assert "Members-only lessons" in text(member_client, path)
    assert "Members-only lessons" not in text(client, path)
    assert "Members-only lessons" in text(member_client, path)
