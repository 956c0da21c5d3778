"""A regular follows the network's series from an invitation email on her phone, counted in for each meeting; the
organiser publishes the next meeting and her invitation says Going; she declines that one from the email, and the
meeting after it finds her Going again."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from kxn_meetings.extensions import db
from kxn_meetings.models import Meeting, MeetingStatus, Rsvp
from kxn_meetings.services import invitations as invitation_service
from kxn_meetings.services import series as series_service

from .browser_fixtures import PHONE, audit, sign_in_browser, visit
from .test_browser_invitations import delivered

pytestmark = pytest.mark.browser


def answer_of(meeting_id: int, member_id: int) -> Rsvp | None:
    db.session.rollback()  # see what the live server committed
    return db.session.scalar(select(Rsvp).where(Rsvp.meeting_id == meeting_id, Rsvp.member_id == member_id))


def test_a_standing_going_from_an_invitation_email_answers_each_new_meeting(
    live_server, browser, page, smtp_server, organiser, member, make_meeting
):
    series = series_service.create_series("Knowledge Exchange Network meetings")
    db.session.commit()
    soon = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0) + dt.timedelta(days=14)
    first = make_meeting(title="Youth engagement", slug="youth-engagement", series_id=series.id, start=soon)
    drafts = [
        make_meeting(
            title=title,
            slug=slug,
            series_id=series.id,
            status=MeetingStatus.DRAFT,
            start=soon + dt.timedelta(weeks=weeks),
        )
        for title, slug, weeks in (("Transitions to adulthood", "transitions", 6), ("Custody", "custody", 12))
    ]
    first_id, member_id, draft_ids = first.id, member.id, [d.id for d in drafts]
    invitation_service.invite(first, [member])
    db.session.commit()

    # The invitation to the first meeting offers the series; the member follows it from her phone.
    [invitation] = delivered(smtp_server, member.email, 1)
    assert invitation.message.get("List-Unsubscribe") is None
    follow_link = re.search(r"Follow [^\n]+: (\S+/follow/\S+)", invitation.text).group(1)
    phone = browser.new_context(base_url=live_server.url, locale="en-GB", viewport=PHONE)
    mobile = phone.new_page()
    try:
        visit(mobile, follow_link)
        expect(mobile.get_by_role("heading", level=1)).to_have_text(f"Follow {series.name}")
        mobile.get_by_label("Count me in for each meeting unless I say otherwise").check()
        mobile.get_by_role("button", name="Follow this series").click()
        expect(mobile.get_by_role("status").first).to_contain_text(f"You follow \u201c{series.name}\u201d")
        expect(mobile.get_by_role("status").first).to_contain_text("Your answer to 1 upcoming meeting is now Going")
        audit(mobile)
        assert answer_of(first_id, member_id).is_going
        delivered(smtp_server, member.email, 2)  # the confirmation for the first meeting

        # The organiser publishes the next meeting of the series.
        sign_in_browser(page, live_server, organiser)
        visit(page, "/meetings/transitions")
        page.get_by_role("button", name="Publish").click()
        expect(page.get_by_role("status").first).to_contain_text("1 follower of its series is invited")
        expect(page.get_by_role("status").first).to_contain_text("1 counted in as Going")
        audit(page)
        assert answer_of(draft_ids[0], member_id).is_going

        second = delivered(smtp_server, member.email, 3)[2]
        assert second.kind == "invitation" and second.mime_method == "REQUEST"
        assert "your answer is already Going" in " ".join(second.text.split())
        assert second.vevent().attendee.params["PARTSTAT"] == ["ACCEPTED"]
        assert second.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "/unfollow/" in second.message["List-Unsubscribe"]

        # She can't make that one: Can't go from the email, confirmed on the page.
        cant_go = re.search(r"Can't go:\s+(\S+)", second.text).group(1)
        visit(mobile, cant_go)
        expect(mobile.get_by_label("Can't go")).to_be_checked()
        mobile.get_by_role("button", name="Save my new answer").click()
        expect(mobile.get_by_role("heading", name="Sorry you can’t make it")).to_be_visible()
        audit(mobile)
        assert answer_of(draft_ids[0], member_id).answer.is_declined

        # The meeting after it: Going again, by the standing answer.
        visit(page, "/meetings/custody")
        page.get_by_role("button", name="Publish").click()
        expect(page.get_by_role("status").first).to_contain_text("1 counted in as Going")
        assert answer_of(draft_ids[1], member_id).is_going
        assert answer_of(draft_ids[0], member_id).answer.is_declined
        third = delivered(smtp_server, member.email, 5)[4]
        assert third.vevent().attendee.params["PARTSTAT"] == ["ACCEPTED"]
        assert db.session.get(Meeting, draft_ids[1]).is_scheduled
    finally:
        phone.close()
