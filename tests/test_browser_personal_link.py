"""A member follows her personal link to a members-only meeting, on a phone and on a desktop, without signing in:
reads the agenda, answers Going, adds the meeting to her calendar, then changes to Can't go."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import icalendar
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, Rsvp, Visibility
from kxn_meetings.services import invitations as invitation_service

from .browser_fixtures import DESKTOP, PHONE, Checker
from .test_browser_phones import LONG_LOCATION, LONG_TITLE, TEAMS_URL, agenda, rooms

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360px", "1280px"])
def test_a_member_answers_a_members_only_meeting_from_her_personal_link(
    live_server, page, viewport, make_meeting, member
):
    start = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0) + dt.timedelta(days=20)
    meeting = make_meeting(
        title=LONG_TITLE,
        theme="What works with 18-25 year olds, from arrest to adult services",
        description="Two hours with practitioners from police and health.",
        start=start,
        join_url=TEAMS_URL,
        location=LONG_LOCATION,
        capacity=30,
        visibility=Visibility.MEMBERS,
    )
    meeting.agenda_items = agenda()
    meeting.workshop_rooms = rooms()
    link = f"/meetings/{meeting.slug}/answer/{invitation_service.personal_link(meeting, member).token}"
    db.session.commit()
    page.set_viewport_size(viewport)
    check = Checker(page, viewport["width"])

    # The Going button of the invitation opens the whole meeting, with Going chosen, ready to confirm.
    check.visit(f"{link}?answer=going")
    expect(page.get_by_role("heading", level=1)).to_have_text(LONG_TITLE)
    agenda_section = page.get_by_role("region", name="Agenda")
    expect(agenda_section).to_contain_text("Diversion at the point of arrest")
    expect(agenda_section).to_contain_text("15:10")
    expect(agenda_section).to_contain_text("(Europe/London)")
    expect(page.get_by_text(f"Answering as {member.name}")).to_be_visible()
    expect(page.get_by_label("Going")).to_be_checked()
    expect(page.get_by_role("link", name=TEAMS_URL)).to_have_count(0)
    page.get_by_role("button", name="Confirm my answer").click()

    expect(page.get_by_role("heading", name="You’re going")).to_be_visible()
    expect(page.get_by_role("link", name=TEAMS_URL)).to_be_visible()
    google = page.get_by_role("link", name="Google Calendar")
    outlook = page.get_by_role("link", name="Outlook.com")
    assert (google.get_attribute("href") or "").startswith("https://calendar.google.com/calendar/render?")
    assert (outlook.get_attribute("href") or "").startswith("https://outlook.live.com/calendar/")
    expect(page.get_by_label("Going", exact=True)).not_to_be_visible()  # the form waits behind "Change my answer"
    check.check("answered going")

    with page.expect_download() as waiting:
        page.get_by_role("link", name="Apple, Thunderbird and others (.ics)").click()
    download = waiting.value
    assert download.suggested_filename == f"kxn-{meeting.slug}.ics"
    [event] = icalendar.Calendar.from_ical(Path(download.path()).read_bytes()).walk("VEVENT")
    assert str(event["UID"]) == meeting.uid and str(event["SUMMARY"]) == LONG_TITLE
    assert event.decoded("DTSTART").astimezone(dt.UTC) == start

    page.get_by_text("Change my answer").click()
    page.get_by_label("Can't go").check()
    page.get_by_role("button", name="Save my new answer").click()
    expect(page.get_by_role("heading", name="Sorry you can’t make it")).to_be_visible()
    expect(page.get_by_role("link", name="Google Calendar")).to_have_count(0)
    expect(page.get_by_role("link", name=TEAMS_URL)).to_have_count(0)
    check.check("answered can't go")
    check.assert_clean()

    db.session.rollback()  # see what the server committed
    rsvp = db.session.scalars(select(Rsvp).where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == member.id)).one()
    assert rsvp.answer == Answer.DECLINED
    # The link signed nobody in: the members' directory still asks who is there.
    response = page.goto("/members")
    assert response is not None and "/sign-in" in page.url


def test_without_scripts_the_change_answer_form_is_reachable(live_server, browser, make_meeting, member):
    meeting = make_meeting(visibility=Visibility.MEMBERS)
    link = f"/meetings/{meeting.slug}/answer/{invitation_service.personal_link(meeting, member).token}"
    db.session.commit()
    context = browser.new_context(base_url=live_server.url, locale="en-GB", java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(link)
        page.get_by_label("Maybe").check()
        page.get_by_role("button", name="Confirm my answer").click()
        expect(page.get_by_role("heading", name="You said maybe")).to_be_visible()
        page.get_by_text("Change my answer").click()
        page.get_by_label("Going").check()
        page.get_by_role("button", name="Save my new answer").click()
        expect(page.get_by_role("heading", name="You’re going")).to_be_visible()
    finally:
        context.close()
