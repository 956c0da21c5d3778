"""An organiser schedules a meeting in a browser; a member answers from their personal link without signing in."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from kxn_meetings.extensions import db
from kxn_meetings.models import Meeting, MeetingStatus
from kxn_meetings.services import invitations as invitation_service

from .browser_fixtures import audit, sign_in_browser, visit
from .meeting_helpers import future_day

pytestmark = pytest.mark.browser


def attendee_rows(page, slug: str) -> dict[str, dict[str, str]]:
    response = page.request.get(f"/meetings/{slug}/attendees.csv")
    assert response.ok
    assert response.headers["content-type"].startswith("text/csv")
    body = response.body().decode("utf-8-sig")
    return {row["Name"]: row for row in csv.DictReader(io.StringIO(body))}


def check_attendees(page, slug: str, name: str, answer: str) -> None:
    visit(page, f"/meetings/{slug}/attendees")
    row = page.get_by_role("row").filter(has_text=name)
    expect(row).to_contain_text(answer)
    rows = attendee_rows(page, slug)
    assert rows[name]["Answer"] == answer
    assert rows[name]["How"] == "Email link"


def test_organiser_schedules_and_a_member_answers_from_the_email_link(live_server, page, browser, organiser, member):
    sign_in_browser(page, live_server, organiser)
    visit(page, "/")
    page.get_by_role("link", name="New meeting").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New meeting")
    audit(page)

    page.get_by_role("button", name="Save as draft").click()
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    audit(page)

    day = future_day(45)
    page.get_by_label("Title", exact=True).fill("Meeting three: trauma-informed custody")
    page.get_by_label("Theme").fill("What works with 18-25 year olds")
    page.get_by_label("Date", exact=True).fill(day.isoformat())
    page.get_by_label("Starts at").fill("15:00")
    page.get_by_label("Ends at").fill("17:00")
    page.get_by_label("Time zone").select_option("Europe/London")
    page.get_by_label("Online join link").fill("https://meet.example.org/kxn-three")
    page.get_by_label("Capacity").fill("30")
    page.get_by_role("group", name="Agenda item 1").get_by_label("Item").fill("Welcome")
    page.get_by_role("group", name="Room 1").get_by_label("Room name").fill("Custody")
    page.get_by_role("button", name="Save as draft").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Meeting three: trauma-informed custody")
    expect(page.get_by_role("status").first).to_contain_text("Meeting saved as a draft")
    expect(page.get_by_text("Draft: only organisers can see this")).to_be_visible()
    audit(page)
    slug = page.url.rsplit("/", 1)[-1]

    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("status").first).to_contain_text("Published")
    audit(page)

    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit meeting")
    audit(page)
    page.get_by_label("Title", exact=True).fill("Meeting three: custody and after")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Meeting three: custody and after")
    expect(page.get_by_role("status").first).to_contain_text("Meeting updated")
    audit(page)
    visit(page, "/")
    expect(page.get_by_role("link", name="Meeting three: custody and after")).to_be_visible()

    db.session.rollback()  # see what the server committed (SQLite keeps a reader on its snapshot)
    meeting = db.session.scalars(select(Meeting).where(Meeting.slug == slug)).one()
    link = f"/meetings/{slug}/answer/{invitation_service.personal_link(meeting, member).token}"
    db.session.commit()

    member_context = browser.new_context(base_url=live_server.url, locale="en-GB")
    member_page = member_context.new_page()
    try:
        visit(member_page, f"{link}?answer=going")
        expect(member_page.get_by_text(f"Answering as {member.name}")).to_be_visible()
        expect(member_page.get_by_label("Going")).to_be_checked()
        member_page.get_by_label("Access needs").fill("Captions, please")
        member_page.get_by_role("button", name="Confirm my answer").click()
        expect(member_page.get_by_role("status").first).to_contain_text("Your answer is “Going”")
        expect(member_page.get_by_role("link", name="https://meet.example.org/kxn-three")).to_be_visible()
        audit(member_page)

        check_attendees(page, slug, member.name, "Going")
        expect(page.get_by_role("row").filter(has_text=member.name)).to_contain_text("Captions, please")

        visit(member_page, link)
        expect(member_page.get_by_role("heading", name="You’re going")).to_be_visible()
        member_page.get_by_text("Change my answer").click()
        member_page.get_by_label("Can't go").check()
        member_page.get_by_role("button", name="Save my new answer").click()
        expect(member_page.get_by_role("status").first).to_contain_text("Your answer is “Can't go”")
        expect(member_page.get_by_role("link", name="https://meet.example.org/kxn-three")).to_have_count(0)
        audit(member_page)
        visit(member_page, f"/meetings/{slug}")

        check_attendees(page, slug, member.name, "Can't go")
    finally:
        member_context.close()


def test_the_meeting_page_for_a_visitor_and_a_cancelled_meeting(live_server, page, organiser, make_meeting):
    meeting = make_meeting(title="Meeting five", description="An agenda with **bold** words.", capacity=2)
    visit(page, "/")
    visit(page, f"/meetings/{meeting.slug}")
    expect(page.get_by_role("link", name="Sign in").last).to_be_visible()

    sign_in_browser(page, live_server, organiser)
    visit(page, f"/meetings/{meeting.slug}")
    page.get_by_role("link", name="Cancel meeting").click()
    audit(page)
    page.get_by_label("Reason").fill("The venue flooded.")
    page.get_by_role("button", name="Cancel the meeting").click()
    expect(page.get_by_role("heading", name="This meeting has been cancelled")).to_be_visible()
    audit(page)
    visit(page, f"/meetings/{meeting.slug}/attendees")
    visit(page, f"/meetings/new?from={meeting.slug}")


def test_an_organiser_deletes_a_draft_made_by_mistake(live_server, page, organiser, make_meeting):
    draft = make_meeting(title="Meeting made by mistake", status=MeetingStatus.DRAFT)
    draft_id = draft.id
    sign_in_browser(page, live_server, organiser)
    visit(page, f"/meetings/{draft.slug}")
    page.get_by_role("link", name="Delete draft").click()
    expect(page.get_by_role("heading", name="Delete the draft \u201cMeeting made by mistake\u201d?")).to_be_visible()
    audit(page)
    page.get_by_role("link", name="Keep it").click()
    expect(page.get_by_role("heading", name="Meeting made by mistake")).to_be_visible()

    page.get_by_role("link", name="Delete draft").click()
    page.get_by_role("button", name="Delete the draft").click()
    expect(page.get_by_role("status").first).to_contain_text("Deleted the draft \u201cMeeting made by mistake\u201d.")
    audit(page)
    db.session.rollback()
    assert db.session.get(Meeting, draft_id) is None


def test_the_form_script_adds_rooms_up_to_the_limit_and_says_why_no_more(live_server, page, organiser):
    """The script adds rows in the page (no round trip) and stops at the limit the server keeps, saying so."""
    sign_in_browser(page, live_server, organiser)
    visit(page, "/meetings/new")
    rooms = page.locator('[data-repeat="rooms"] > .repeat-row')
    add = page.get_by_role("button", name="Add another room")
    while rooms.count() < 20:
        add.click()
    expect(page.locator("#rooms-limit-error")).to_have_count(0)
    add.click()
    expect(rooms).to_have_count(20)
    expect(page.locator("#rooms-limit-error")).to_have_text("A meeting has at most 20 workshop rooms.")
    audit(page)


@pytest.mark.parametrize(
    ("path", "button"),
    [
        ("/meetings/new", "Save as draft"),
        ("/members/new", "Add member"),
        ("/series/new", "Create series"),
        ("/meetings/{slug}/cancel", "Cancel the meeting"),
    ],
)
def test_a_refused_form_takes_the_keyboard_to_its_problems(live_server, page, organiser, make_meeting, path, button):
    """Focus goes to the list of problems, so a keyboard or screen reader user starts where the page changed."""
    meeting = make_meeting(title="Custody and young adults")
    sign_in_browser(page, live_server, organiser)
    visit(page, path.format(slug=meeting.slug))
    page.get_by_role("button", name=button).click()
    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    expect(summary).to_be_focused()
    page.keyboard.press("Tab")
    expect(summary.get_by_role("link").first).to_be_focused()
