"""An organiser moves a meeting by an hour in a browser, on a phone and on a desktop: the agenda moves with it, the
page says how many members will get the update and when, and Send now queues it at once."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from kxn_meetings import timefmt
from kxn_meetings.extensions import db
from kxn_meetings.models import AgendaItem, Answer, OutboxMessage
from kxn_meetings.services import invitations

from .browser_fixtures import DESKTOP, PHONE, Checker, sign_in_browser
from .dates import GMT_START
from .meeting_helpers import record_answer

pytestmark = pytest.mark.browser


@pytest.mark.app_config(UPDATE_WINDOW_SECONDS=300)
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360px", "1280px"])
def test_an_organiser_moves_a_meeting_by_an_hour_and_sends_the_update_now(
    live_server, page, viewport, organiser, make_member, make_meeting
):
    meeting = make_meeting(start=GMT_START, title="Meeting three: custody and after")
    meeting.agenda_items = [
        AgendaItem(position=0, title="Welcome", start_time=dt.time(15, 0)),
        AgendaItem(position=1, title="Lessons from the Manchester pilot", start_time=dt.time(15, 20)),
        AgendaItem(position=2, title="Workshop rooms", start_time=dt.time(16, 10)),
    ]
    members = [make_member(name=f"Member {n}", email=f"member{n}@example.org") for n in range(3)]
    invitations.invite(meeting, members)
    db.session.commit()
    record_answer(meeting.id, members[0], Answer.GOING)
    db.session.commit()
    slug = meeting.slug

    page.set_viewport_size(viewport)
    check = Checker(page, viewport["width"])
    sign_in_browser(page, live_server, organiser)
    check.visit(f"/meetings/{slug}/edit")
    expect(page.get_by_label("Move the agenda times with the meeting")).to_be_checked()
    page.get_by_label("Starts at").fill("16:00")
    page.get_by_label("Ends at").fill("18:00")
    page.get_by_role("button", name="Save changes").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Meeting three: custody and after")
    db.session.rollback()
    db.session.expire_all()
    due = db.session.get(type(meeting), meeting.id).update_due_at
    when = timefmt.clock_in_zone(due, "Europe/London")
    expect(page.get_by_role("status").first).to_contain_text(f"3 members will get an update at {when}.")
    expect(page.locator("#pending-update")).to_contain_text(f"3 members will get an update at {when}.")
    agenda = page.get_by_role("region", name="Agenda")
    expect(agenda.locator(".agenda-time")).to_have_text(["16:00", "16:20", "17:10"])
    check.check("meeting page with the update waiting")

    page.get_by_role("button", name="Send now").click()
    expect(page.get_by_role("status").first).to_contain_text("Update queued: it is on its way to 3 members.")
    expect(page.get_by_role("button", name="Send now")).to_have_count(0)
    check.check("meeting page after Send now")
    check.assert_clean()

    db.session.rollback()
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "update")) == 3
