"""A meeting's invitations followed in a browser and in the mailbox: the organiser invites, the member answers
from the email, the organiser moves and then cancels the meeting, and the member's calendar hears each step."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from kxn_meetings.mail import deliver_due

from .browser_fixtures import audit, sign_in_browser, visit
from .dates import GMT_START, MARCH_DAY
from .invitation_checks import Received, take_apart, vobject_instants

pytestmark = pytest.mark.browser

START = GMT_START  # 15:00 in London (GMT)
JOIN = "https://meet.example.org/kxn-three-room"


def delivered(smtp_server, address: str, count: int) -> list[Received]:
    """Deliver what is due; the messages `address` has received so far (there must be `count`)."""
    report = deliver_due()
    assert report.failed == report.retrying == 0, report.errors
    messages = smtp_server.to(address)
    assert len(messages) == count, [str(m["Subject"]) for m in messages]
    return [take_apart(m) for m in messages]


@pytest.mark.app_config(UPDATE_WINDOW_SECONDS=0)
def test_invite_answer_move_and_cancel_reach_the_members_calendar(
    live_server, page, smtp_server, organiser, member, make_meeting
):
    meeting = make_meeting(
        start=START, title="Meeting three: young adults in custody", slug="meeting-three", join_url=JOIN
    )
    slug = meeting.slug
    sign_in_browser(page, live_server, organiser)

    visit(page, f"/meetings/{slug}")
    page.get_by_role("link", name="Invite").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Invite members")
    audit(page)
    page.get_by_label("These email addresses").check()
    page.get_by_role("textbox", name="Email addresses").fill(member.email)
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("region", name="Preview")).to_contain_text("1 member will receive a personal invitation")
    expect(
        page.frame_locator("iframe.email-preview").get_by_text("You are invited to the next meeting")
    ).to_be_visible()
    audit(page)
    page.get_by_role("button", name="Send 1 invitation").click()
    expect(page.get_by_role("status").first).to_contain_text("1 invitation is on its way.")
    audit(page)

    [invitation] = delivered(smtp_server, member.email, 1)
    assert invitation.kind == "invitation" and invitation.mime_method == "REQUEST"
    assert int(invitation.vevent().sequence.value) == 0
    assert JOIN not in invitation.everything
    going = re.search(r"Going:\s+(\S+)", invitation.text).group(1)
    assert going.startswith(f"{live_server.url}/meetings/{slug}/answer/")

    # The member, not signed in, follows the Going link from the email and confirms.
    page.context.clear_cookies()
    visit(page, going)
    expect(page.get_by_label("Going")).to_be_checked()
    page.get_by_role("button", name="Confirm my answer").click()
    expect(page.get_by_role("status").first).to_contain_text("Your answer is \u201cGoing\u201d")
    audit(page)
    confirmation = delivered(smtp_server, member.email, 2)[1]
    assert confirmation.kind == "confirmation"
    assert confirmation.vevent().attendee.params["PARTSTAT"] == ["ACCEPTED"]
    assert JOIN in confirmation.text

    # The organiser moves the meeting by an hour: exactly one update, with the new time and SEQUENCE 1.
    sign_in_browser(page, live_server, organiser)
    visit(page, f"/meetings/{slug}/edit")
    page.get_by_label("Starts at").fill("16:00")
    page.get_by_label("Ends at").fill("18:00")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").first).to_contain_text("Meeting updated.")
    audit(page)
    received = delivered(smtp_server, member.email, 3)
    update = received[2]
    assert update.kind == "update" and update.mime_method == "REQUEST"
    assert int(update.vevent().sequence.value) == 1
    assert update.vevent().uid.value == invitation.vevent().uid.value
    assert vobject_instants(update.calendar) == (START + dt.timedelta(hours=1), START + dt.timedelta(hours=3))
    assert f"Time: {MARCH_DAY}, 3\u20135pm GMT \u2192 {MARCH_DAY}, 4\u20136pm GMT" in update.text
    assert JOIN in update.calendar.decode()

    # The organiser cancels with a reason: the member's calendar gets the CANCEL.
    visit(page, f"/meetings/{slug}")
    page.get_by_role("link", name="Cancel meeting").click()
    audit(page)
    page.get_by_label("Reason").fill("The speakers are unwell; we will write with a new date.")
    page.get_by_role("button", name="Cancel the meeting").click()
    expect(page.get_by_role("status").first).to_contain_text("The meeting is cancelled.")
    audit(page)
    cancellation = delivered(smtp_server, member.email, 4)[3]
    assert cancellation.kind == "cancellation" and cancellation.mime_method == "CANCEL"
    calendar = cancellation.calendar.decode()
    assert "METHOD:CANCEL\r\n" in calendar and "STATUS:CANCELLED\r\n" in calendar
    assert int(cancellation.vevent().sequence.value) == 2
    assert "The speakers are unwell" in cancellation.text
    assert JOIN not in cancellation.everything
    assert len(smtp_server.messages) == 4  # nobody else was written to
