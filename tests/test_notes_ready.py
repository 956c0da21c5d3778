"""Notes that are ready before they go out: publishing notes that still hold the outline's prompts, or of a meeting
that has not started, asks the organiser first and says why; confirming publishes; the saved notes are untouched."""

from __future__ import annotations

import datetime as dt

import pytest

from kxn_meetings.extensions import db
from kxn_meetings.models import MeetingNotes
from kxn_meetings.services import notes as notes_service
from kxn_meetings.services.notes import Prompt, prompts_left

from .notes_helpers import past_meeting, write_notes


def outline_notes(meeting, organiser) -> MeetingNotes:
    title, summary, body = notes_service.outline(meeting)
    return write_notes(meeting, organiser, title=title, summary=summary, body=body, publish=False)


def test_every_prompt_of_the_outline_is_found_and_a_written_note_has_none(app, make_meeting):
    meeting = past_meeting(make_meeting)
    _title, _summary, body = notes_service.outline(meeting)
    left = prompts_left(body)
    assert Prompt.OPENING in left and Prompt.LESSONS in left and Prompt.NEXT_MEETING in left
    assert prompts_left("## Lessons learned\n\nDiversion works best with a named worker.") == []
    assert prompts_left(f"_{Prompt.ROOM}_ and _{Prompt.ROOM}_") == [Prompt.ROOM, Prompt.ROOM]


def test_notes_with_prompts_left_are_not_ready_and_say_how_many(app, make_meeting, organiser):
    meeting = past_meeting(make_meeting)
    notes = outline_notes(meeting, organiser)
    [reason] = notes_service.why_not_ready(notes)
    count = len(prompts_left(notes.current_revision.body_markdown))
    assert count >= 4
    assert f"still contain {count} prompts from the outline" in reason
    assert "Open with two or three sentences" in reason


def test_written_notes_of_a_past_meeting_are_ready(app, make_meeting, organiser):
    meeting = past_meeting(make_meeting)
    notes = write_notes(meeting, organiser, publish=False)
    assert notes_service.why_not_ready(notes) == []


def test_notes_of_a_meeting_that_has_not_started_are_not_ready(app, make_meeting, organiser):
    start = dt.datetime(2040, 3, 6, 15, 0, tzinfo=dt.UTC)
    meeting = make_meeting(start=start)
    notes = write_notes(meeting, organiser, publish=False)
    assert notes_service.why_not_ready(notes) == [
        "The meeting has not started yet: it is on Tuesday 6 March 2040, 3–5pm GMT."
    ]
    with pytest.raises(notes_service.NotesError, match="has not started yet"):
        notes_service.publish(notes, email_members=False)
    db.session.rollback()


def test_publishing_unready_notes_asks_first_then_publishes_when_confirmed(
    app, make_meeting, organiser, organiser_client
):
    meeting = past_meeting(make_meeting)
    notes = outline_notes(meeting, organiser)
    body = notes.current_revision.body_markdown
    url = f"/meetings/{meeting.slug}/notes/publish"

    response = organiser_client.post(url, data={"email": "no"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Publish these notes anyway?" in page and "prompts from the outline" in page
    assert 'name="not_ready" value="confirmed"' in page and 'name="email" value="no"' in page
    db.session.expire_all()
    assert not db.session.get(MeetingNotes, notes.id).is_published

    response = organiser_client.post(url, data={"email": "no", "not_ready": "confirmed"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/meetings/{meeting.slug}/notes")
    db.session.expire_all()
    published = db.session.get(MeetingNotes, notes.id)
    assert published.is_published and published.current_revision.body_markdown == body


def test_ready_notes_publish_at_once(app, make_meeting, organiser, organiser_client):
    meeting = past_meeting(make_meeting)
    notes = write_notes(meeting, organiser, publish=False)
    response = organiser_client.post(f"/meetings/{meeting.slug}/notes/publish", data={"email": "no"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(MeetingNotes, notes.id).is_published
