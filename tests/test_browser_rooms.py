"""Workshop rooms in a real browser on a 360 px phone: two scribes of one room type under the same question at once,
both texts are kept, and the organiser's notes outline shows them under the question."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from kxn_meetings.extensions import db
from kxn_meetings.services import rooms

from .browser_fixtures import PHONE, Checker, audit, sign_in_browser, visit
from .rooms_helpers import going, meeting_with_rooms, named_scribe, scribe_path

pytestmark = pytest.mark.browser

ALICE = "Custody navigators reach young adults that no referral did. "
CAROL = "Health and police budgets run on different cycles, so pilots end early. "


def phone(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, locale="en-GB", timezone_id="Europe/London")
    context.set_default_timeout(10_000)
    return context.new_page()


def test_two_scribes_type_at_once_and_the_organiser_finds_both_in_the_notes(
    live_server, browser, page, organiser, make_meeting, make_member
):
    meeting = meeting_with_rooms(make_meeting, count=2, questions=2)
    alice, carol = going(meeting, make_member, 2)
    room_a = meeting.workshop_rooms[0]
    links = [scribe_path(named_scribe(meeting, room_a, member)) for member in (alice, carol)]
    question = room_a.questions[0].text

    first, second = phone(browser, live_server), phone(browser, live_server)
    for scribe_page, link in zip((first, second), links, strict=True):
        visit(scribe_page, link)
        expect(scribe_page.get_by_role("heading", level=1)).to_have_text("Room A")
    fields = [p.get_by_label(question) for p in (first, second)]
    # Interleaved, a few words each in turn, as two people typing at the same moment.
    for alice_words, carol_words in zip(ALICE.split(" "), CAROL.split(" "), strict=False):
        fields[0].press_sequentially(alice_words + " ")
        fields[1].press_sequentially(carol_words + " ")
    fields[1].press_sequentially(" ".join(CAROL.split(" ")[len(ALICE.split(" ")) :]))
    for scribe_page in (first, second):
        expect(scribe_page.locator(".autosave-status")).to_contain_text("Saved at")

    # Each scribe, reloading, keeps her own text and sees the other's under the question.
    first.reload()
    expect(fields[0]).to_have_value(ALICE.strip())
    expect(first.locator(".other-scribe")).to_contain_text(CAROL.strip())
    fits = Checker(first, PHONE["width"])
    fits.check("scribe page")
    fits.assert_clean()

    sign_in_browser(page, live_server, organiser)
    page.set_viewport_size(PHONE)
    visit(page, f"/meetings/{meeting.slug}/notes/edit?start=meeting")
    outline = page.get_by_label("Notes (Markdown)").input_value()
    section = outline.split(f"### {question}", 1)[1].split("\n## ", 1)[0]
    assert f"**Room A**: {ALICE.strip()}\n\n{CAROL.strip()}" in section
    audit(page)
    for context_page in (first, second):
        context_page.context.close()


def test_without_scripts_the_save_button_keeps_the_text(live_server, browser, make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting, count=1, questions=1)
    (scribe,) = going(meeting, make_member, 1)
    link = scribe_path(named_scribe(meeting, meeting.workshop_rooms[0], scribe))
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(link)
    page.get_by_label("Question 1").fill("Written on a phone without scripts.")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    expect(page.get_by_label("Question 1")).to_have_value("Written on a phone without scripts.")
    context.close()


def test_the_rooms_pages_fit_a_phone_with_long_names(live_server, page, organiser, make_meeting, make_member):
    meeting = meeting_with_rooms(make_meeting, count=3, questions=2)
    members = going(
        meeting,
        make_member,
        9,
        organisation="Office of the Police, Fire and Crime Commissioner for Northamptonshire and Rutland",
    )
    rooms.assign_automatically(meeting)
    scribe = named_scribe(meeting, meeting.workshop_rooms[0], members[0])
    rooms.save_answers(scribe, {meeting.workshop_rooms[0].questions[0].id: "A longer answer " * 40})
    db.session.commit()
    sign_in_browser(page, live_server, organiser)
    page.set_viewport_size(PHONE)
    check = Checker(page, PHONE["width"])
    check.visit_all(f"/meetings/{meeting.slug}/rooms", f"/meetings/{meeting.slug}/rooms/progress")
    check.assert_clean()
