"""An organiser messages the members going to a meeting, on a phone and on a desktop: writes, previews, sends, is
told who will get it and when, and finds the message in the meeting's log."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, MessageKind, OutboxMessage

from .browser_fixtures import DESKTOP, PHONE, Checker, sign_in_browser
from .meeting_helpers import record_answer

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360px", "1280px"])
def test_an_organiser_messages_the_members_going(live_server, page, viewport, organiser, make_member, make_meeting):
    meeting = make_meeting(title="Youth engagement, including the new children and young adult strategy")
    going = [make_member(name=f"Going Member {n}", organisation="West Yorkshire VRU") for n in range(3)]
    maybe = make_member(name="Maybe Member")
    for member in going:
        record_answer(meeting.id, member, Answer.GOING)
    record_answer(meeting.id, maybe, Answer.MAYBE)
    db.session.commit()
    slug = meeting.slug

    page.set_viewport_size(viewport)
    check = Checker(page, viewport["width"])
    sign_in_browser(page, live_server, organiser)
    check.visit(f"/meetings/{slug}")
    page.get_by_role("link", name="Message members").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Message members")
    check.check("message form")

    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    check.check("message form refused", 422)

    page.get_by_label("Going (3)").check()
    page.get_by_label("Subject").fill("Pre-reading for Tuesday")
    page.get_by_label("Message", exact=True).fill(
        "Please read the strategy before we meet.\n\nBring one example of engagement."
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your message")
    expect(page.locator(".email-text")).to_contain_text("Bring one example of engagement.")
    check.check("preview")
    page.get_by_role("button", name="Send to 3 members").click()

    expect(page.get_by_role("status").first).to_contain_text(
        "3 members who are going will get your message in the next few minutes."
    )
    log = page.get_by_role("region", name="Messages sent")
    expect(log).to_contain_text("Pre-reading for Tuesday to 3 members (Going)")
    check.check("meeting page after sending")
    check.assert_clean()

    db.session.rollback()
    recipients = db.session.scalars(
        select(OutboxMessage.member_id).where(OutboxMessage.kind == MessageKind.MESSAGE)
    ).all()
    assert sorted(recipients) == sorted(member.id for member in going)
