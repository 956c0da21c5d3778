"""Every organiser page and action × anonymous visitor, member and organiser."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from kxn_meetings.extensions import db
from kxn_meetings.models import Meeting, MeetingSeries, MeetingStatus, OutboxMessage, Rsvp
from kxn_meetings.services import invitations as invitation_service
from kxn_meetings.services import rsvps as rsvp_service
from kxn_meetings.services import series as series_service

from . import organiser_routes
from .meeting_helpers import failed_message, meeting_form, record_answer

# (method, path template, form data, what an organiser gets)
ORGANISER_URLS = [
    ("GET", "/meetings/new", None, 200),
    ("GET", "/meetings/new?from={slug}", None, 200),
    ("POST", "/meetings/new", meeting_form(), 302),
    ("GET", "/meetings/{slug}/edit", None, 200),
    ("POST", "/meetings/{slug}/edit", meeting_form(title="Renamed"), 302),
    ("POST", "/meetings/{draft}/publish", {}, 302),
    ("GET", "/meetings/{draft}/delete", None, 200),
    ("POST", "/meetings/{draft}/delete", {}, 302),
    ("GET", "/meetings/{slug}/cancel", None, 200),
    ("POST", "/meetings/{slug}/cancel", {"reason": "Speakers unwell"}, 302),
    ("GET", "/meetings/{slug}/attendees", None, 200),
    ("GET", "/meetings/{slug}/attendees.csv", None, 200),
    ("POST", "/meetings/{past}/attendance", {"attended": "{rsvp}"}, 302),
    ("POST", "/meetings/{past}/walk-in", {"member_id": "{walk_in}"}, 302),
    ("GET", "/meetings/{past}/feedback", None, 200),
    ("GET", "/insights", None, 200),
    ("GET", "/insights/meetings.csv", None, 200),
    ("GET", "/outbox/", None, 200),
    ("GET", "/outbox/?status=failed", None, 200),
    ("GET", "/outbox/{message}", None, 200),
    ("GET", "/outbox/{message}/html", None, 200),
    ("POST", "/outbox/{message}/retry", {}, 302),
    ("GET", "/meetings/{slug}/invite", None, 200),
    ("GET", "/meetings/{slug}/notes/edit", None, 200),
    ("GET", "/meetings/{slug}/rooms", None, 200),
    ("GET", "/meetings/{slug}/rooms/progress", None, 200),
    ("GET", "/meetings/{slug}/rooms.csv", None, 200),
    ("GET", "/members", None, 200),
    ("GET", "/replies/", None, 200),
    ("GET", "/account/password", None, 200),
    ("GET", "/series/new", None, 200),
    ("POST", "/series/new", {"name": "Health and policing forum"}, 302),
    ("GET", "/series/{series}/edit", None, 200),
    ("POST", "/series/{series}/edit", {"name": "Renamed group", "description": "Monthly"}, 302),
    ("GET", "/series/{series}/followers", None, 200),
]
IDS = organiser_routes.ids(ORGANISER_URLS)


@pytest.fixture
def world(make_meeting, make_member, member):
    """A scheduled meeting, a draft, a past meeting with an answer, and a message set aside in the outbox."""
    meeting = make_meeting(title="Meeting three", slug="meeting-three")
    draft = make_meeting(title="Meeting four", slug="meeting-four", status=MeetingStatus.DRAFT)
    past = make_meeting(title="Meeting two", slug="meeting-two")
    rsvp = record_answer(past.id, make_member(), rsvp_service.Answer.GOING).rsvp
    db.session.commit()
    past.starts_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=20)
    past.ends_at = past.starts_at + dt.timedelta(hours=2)
    message = failed_message("matrix")
    series = series_service.create_series("Youth engagement working group")
    db.session.commit()
    return {
        "series": series.slug,
        "slug": meeting.slug,
        "draft": draft.slug,
        "past": past.slug,
        "rsvp": str(rsvp.id),
        "walk_in": str(member.id),
        "message": str(message.id),
    }


def _state() -> tuple:
    """Everything an organiser action could change."""
    meetings = db.session.execute(
        select(Meeting.slug, Meeting.title, Meeting.status, Meeting.sequence, Meeting.capacity).order_by(Meeting.id)
    ).all()
    outbox = db.session.execute(select(OutboxMessage.id, OutboxMessage.status).order_by(OutboxMessage.id)).all()
    attended = db.session.execute(select(Rsvp.id, Rsvp.attended).order_by(Rsvp.id)).all()
    series = db.session.execute(select(MeetingSeries.name, MeetingSeries.description).order_by(MeetingSeries.id)).all()
    return meetings, outbox, attended, series


@pytest.mark.parametrize("row", ORGANISER_URLS, ids=IDS)
def test_anonymous_visitors_are_sent_to_sign_in_and_nothing_changes(client, world, row):
    organiser_routes.visitor_is_sent_to_sign_in(client, row, world, _state)


@pytest.mark.parametrize("row", ORGANISER_URLS, ids=IDS)
def test_members_are_refused_and_nothing_changes(client, sign_in, member, world, row):
    sign_in(client, member)
    organiser_routes.member_is_refused(client, row, world, _state)


@pytest.mark.parametrize("row", ORGANISER_URLS, ids=IDS)
def test_organisers_may(client, sign_in, organiser, world, row):
    sign_in(client, organiser)
    organiser_routes.organiser_may(client, row, world, _state)


def test_an_organiser_whose_role_is_removed_is_refused_on_the_next_request(client, sign_in, organiser, world):
    sign_in(client, organiser)
    assert client.get(f"/meetings/{world['slug']}/attendees").status_code == 200
    organiser.is_organiser = False
    db.session.commit()
    assert client.get(f"/meetings/{world['slug']}/attendees").status_code == 403


def test_unknown_meetings_are_404_for_organisers(client, sign_in, organiser, world):
    sign_in(client, organiser)
    for path in ("/meetings/no-such-meeting/edit", "/meetings/no-such-meeting/attendees", "/meetings/999999/cancel"):
        assert client.get(path).status_code == 404, path


def test_drafts_are_404_for_members_and_visitors(app, client, sign_in, member, world):
    assert client.get(f"/meetings/{world['draft']}").status_code == 404
    sign_in(client, member)
    assert client.get(f"/meetings/{world['draft']}").status_code == 404
    assert client.post(f"/meetings/{world['draft']}/rsvp", data={"answer": "going"}).status_code == 404
    assert db.session.scalar(select(func.count(Rsvp.id))) == 1


@pytest.mark.parametrize("signed_in", [False, True])
def test_a_members_personal_link_for_a_different_meeting_is_404(client, sign_in, make_member, member, world, signed_in):
    if signed_in:
        sign_in(client, member)
    meeting = db.session.scalar(select(Meeting).where(Meeting.slug == world["slug"]))
    past = db.session.scalar(select(Meeting).where(Meeting.slug == world["past"]))
    token = invitation_service.personal_link(past, member).token
    db.session.commit()
    assert client.get(f"/meetings/{meeting.slug}/answer/{token}").status_code == 404
    assert client.post(f"/meetings/{meeting.slug}/answer/{token}", data={"answer": "going"}).status_code == 404
    assert client.get(f"/meetings/{past.slug}/answer/{token}").status_code == 200
    assert db.session.scalar(select(func.count(Rsvp.id))) == 1
