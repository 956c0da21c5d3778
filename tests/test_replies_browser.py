"""The Calendar replies page in a browser: reachable from the menu, accessible, every tab readable."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from kxn_meetings.extensions import db
from kxn_meetings.services import replies

from .browser_fixtures import sign_in_browser, visit
from .test_replies import invite, render

pytestmark = pytest.mark.browser


def test_an_organiser_reads_calendar_replies_from_the_menu(live_server, page, organiser, make_meeting, make_member):
    meeting = make_meeting(title="Policing young adults: what works")
    person = make_member(email="aoife.walsh@tvp.example.org", name="Aoife Walsh")
    invite(meeting, person)
    for raw in (
        render("outlook_desktop_accepted.eml", uid=meeting.uid, email=person.email),
        render("outlook_web_declined.eml", uid=meeting.uid, email=person.email, **{"from": "x@example.net"}),
        render("counter.eml", uid=meeting.uid, email=person.email),
    ):
        replies.process(raw)
        db.session.commit()
    sign_in_browser(page, live_server, organiser)

    visit(page, "/")
    page.get_by_role("link", name="Calendar replies").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Calendar replies")
    expect(page.get_by_role("row").filter(has_text="Recorded as Going")).to_contain_text("Applied")
    visit(page, "/replies/")
    page.get_by_role("link", name="Unmatched (1)").click()
    expect(page.get_by_role("row").filter(has_text="x@example.net")).to_contain_text("Sent from x@example.net")
    visit(page, "/replies/?show=unmatched")
    page.get_by_role("link", name="New times proposed (1)").click()
    expect(page.get_by_role("row").filter(has_text="Aoife Walsh")).to_contain_text("Proposed: Tuesday 9 March 2027")
    visit(page, "/replies/?show=counter")
    page.set_viewport_size({"width": 375, "height": 800})
    visit(page, "/replies/")
