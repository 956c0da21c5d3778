"""An organiser schedules the meeting after the demo's 9 March one, on a phone and on a desktop: the form says what
it copied and why the date, an agenda row is added in place without losing what was typed, and the draft is saved.
Without scripts, adding a row still works through the server."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from kxn_meetings.demo import load_demo
from kxn_meetings.extensions import db
from kxn_meetings.models import Meeting, Member

from .browser_fixtures import DESKTOP, PHONE, Checker, sign_in_browser

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(app):
    load_demo(lambda _text: None)
    db.session.commit()
    march = db.session.scalars(select(Meeting).where(Meeting.title.startswith("Youth engagement"))).one()
    organiser = db.session.scalars(select(Member).where(Member.is_organiser.is_(True)).order_by(Member.id)).first()
    return march, organiser


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360px", "1280px"])
def test_schedule_the_next_one_from_the_9_march_meeting(live_server, page, viewport, demo):
    march, organiser = demo
    slug, title = march.slug, march.title
    page.set_viewport_size(viewport)
    check = Checker(page, viewport["width"])
    sign_in_browser(page, live_server, organiser)
    check.visit(f"/meetings/{slug}")
    page.get_by_role("link", name="Schedule the next one in this series").click()

    copied = page.locator("#copied-from")
    expect(copied).to_contain_text(f"Copied from “{title}” on Tuesday 9 March")
    expect(copied).to_contain_text("6 weeks after the last meeting")
    expect(page.get_by_label("Title", exact=True)).to_have_value(title)
    check.check("new meeting copied from 9 March")

    page.get_by_label("Title", exact=True).fill("Youth engagement: what changed since March")
    agenda_rows = page.locator('[data-repeat="agenda"] > .repeat-row')
    rows = agenda_rows.count()
    blank_row = agenda_rows.nth(rows - 1)
    blank_row.get_by_label("Item", exact=True).fill("Typed before adding a row")
    page.get_by_role("button", name="Add another agenda item").click()
    expect(agenda_rows).to_have_count(rows + 1)
    expect(blank_row.get_by_label("Item", exact=True)).to_have_value("Typed before adding a row")
    new_row = agenda_rows.last
    expect(new_row.locator("legend")).to_have_text(f"Agenda item {rows + 1}")
    new_row.get_by_label("Item", exact=True).fill("Added in place")
    new_row.get_by_label("Time", exact=True).fill("16:50")
    check.check("after adding a row")

    page.get_by_role("button", name="Save as draft").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Youth engagement: what changed since March")
    agenda = page.get_by_role("region", name="Agenda")
    expect(agenda).to_contain_text("Typed before adding a row")
    expect(agenda).to_contain_text("Added in place")
    check.check("the new draft")
    check.assert_clean()


def test_without_scripts_adding_a_row_goes_through_the_server(live_server, browser, demo):
    march, organiser = demo
    context = browser.new_context(base_url=live_server.url, locale="en-GB", java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in_browser(page, live_server, organiser)
        page.goto(f"/meetings/new?from={march.slug}")
        rows = page.locator('[data-repeat="agenda"] > .repeat-row')
        before = rows.count()
        rows.last.get_by_label("Item", exact=True).fill("Typed without scripts")
        page.get_by_role("button", name="Add another agenda item").click()
        expect(rows).to_have_count(before + 1)
        expect(page.get_by_label("Title", exact=True)).to_have_value(march.title)
        expect(rows.nth(before - 1).get_by_label("Item", exact=True)).to_have_value("Typed without scripts")
    finally:
        context.close()
