"""An organiser publishes notes with one of the outline's prompts left in, on a phone and on a desktop: she is asked
to confirm and told why, goes back once, then publishes anyway."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from kxn_meetings.extensions import db
from kxn_meetings.models import MeetingNotes
from kxn_meetings.services import notes as notes_service

from .browser_fixtures import DESKTOP, PHONE, Checker, sign_in_browser
from .notes_helpers import past_meeting, write_notes

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360px", "1280px"])
def test_publishing_notes_with_a_prompt_left_asks_first(live_server, page, viewport, make_meeting, organiser):
    meeting = past_meeting(make_meeting, title="Youth engagement, including the new strategy")
    _title, _summary, body = notes_service.outline(meeting)
    written = body.replace(f"_{notes_service.Prompt.OPENING}_", "Forty members from police, health and VRUs.")
    notes = write_notes(meeting, organiser, title="What we learned", body=written, publish=False)
    notes_id, slug = notes.id, meeting.slug

    page.set_viewport_size(viewport)
    check = Checker(page, viewport["width"])
    sign_in_browser(page, live_server, organiser)
    check.visit(f"/meetings/{slug}/notes/edit")
    page.get_by_role("button", name="Publish").first.click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Publish these notes anyway?")
    expect(page.get_by_role("status")).to_contain_text("prompts from the outline")
    expect(page.get_by_role("status")).not_to_contain_text("Open with two or three sentences")
    check.check("publish check")
    page.get_by_role("link", name="Back to the notes").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Notes")
    db.session.rollback()
    assert not db.session.get(MeetingNotes, notes_id).is_published

    page.get_by_role("button", name="Publish").first.click()
    page.get_by_role("button", name="Publish anyway").click()
    expect(page.get_by_text("Published: the notes are on the meeting page")).to_be_visible()
    check.check("published notes")
    db.session.rollback()
    assert db.session.get(MeetingNotes, notes_id).is_published
    check.assert_clean()
