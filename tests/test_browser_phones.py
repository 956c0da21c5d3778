"""Every page a member or organiser can reach, on a 360 px phone and a 1280 px desktop, filled with the long
names, addresses and links real members have: nothing scrolls sideways, tables stay readable, nothing fails the
accessibility audit or logs an error. And the Copy button of the personal calendar address."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from kxn_meetings.extensions import db
from kxn_meetings.models import (
    AgendaItem,
    Answer,
    CalendarReply,
    MeetingSeries,
    MeetingStatus,
    Member,
    OutboxMessage,
    OutboxStatus,
    ReplyOutcome,
    StandingAnswer,
    Visibility,
    WorkshopQuestion,
    WorkshopRoom,
)
from kxn_meetings.services import auth as auth_service
from kxn_meetings.services import calendars as calendar_service
from kxn_meetings.services import follows
from kxn_meetings.services import invitations as invitation_service
from kxn_meetings.services import meetings as meeting_service
from kxn_meetings.services import notes as notes_service
from kxn_meetings.services import rsvps as rsvp_service
from kxn_meetings.services import series as series_service

from .browser_fixtures import DESKTOP, PHONE, Checker, audit, sign_in_browser
from .notes_helpers import answered, past_meeting, write_notes

pytestmark = pytest.mark.browser


LONG_ORGANISATION = (
    "Nottingham and Nottinghamshire Violence Reduction Partnership (Office of the Police and Crime Commissioner)"
)
LONG_EMAIL = "oluwaseun.adebayo-fitzgerald@nottinghamshirepoliceandcrimecommissioner.police.uk"
LONG_JOB = "Head of Partnerships, Early Intervention, Youth Diversion and Trauma-Informed Custody"
LONG_URL = (
    "https://www.gov.uk/government/publications/serious-violence-duty-preventing-and-reducing-serious-violence/"
    "serious-violence-duty-statutory-guidance-for-responsible-authorities-accessible-version?utm_source=kxn"
)
TEAMS_URL = (
    "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjQ2ZmY5YzQtYjE2Ni00ZDk3LWE3ZjMtOTQ3ZDY5YTQ0ZGM3"
    "%40thread.v2/0?context=%7b%22Tid%22%3a%2272f988bf-86f1-41af-91ab-2d7cd011db47%22%7d"
)
LONG_TITLE = "Trauma-informed custody and diversion for young adults: what Merseyside, Lancashire and Cumbria learned"
LONG_LOCATION = "Conference Room 3, Merseyside Police Headquarters, Rose Hill, Cazneau Street, Liverpool L3 2BQ"


@dataclass
class Site:
    organiser: Member
    member: Member
    draft: str
    scheduled: str
    full: str
    cancelled: str
    past: str
    scheduled_link: str
    full_link: str
    cancelled_link: str
    other_member_id: int
    outbox_id: int
    failed_outbox_id: int


def long_member(make_member, n: int, **values) -> Member:
    values.setdefault("name", f"Dr Oluwaseun Adebayo-Fitzgerald {n}")
    values.setdefault("email", f"{n}.{LONG_EMAIL}")
    values.setdefault("organisation", f"{LONG_ORGANISATION} {n % 4}")
    values.setdefault("job_title", LONG_JOB)
    return make_member(**values)


def agenda() -> list[AgendaItem]:
    return [
        AgendaItem(position=0, start_time=dt.time(15, 0), title="Welcome and introductions"),
        AgendaItem(
            position=1,
            start_time=dt.time(15, 10),
            title="Diversion at the point of arrest: the Checkpoint evaluation, three years on",
            speaker_name="Detective Chief Superintendent Alexandra Worthington-Smythe",
            speaker_role=LONG_JOB,
            speaker_organisation=LONG_ORGANISATION,
        ),
    ]


def rooms() -> list[WorkshopRoom]:
    return [
        WorkshopRoom(
            position=0,
            name="Custody, diversion and the move into adult services",
            questions=[WorkshopQuestion(position=0, text=f"What should every custody suite do? See {LONG_URL}")],
        )
    ]


def seed(make_member, make_meeting, organiser: Member, member: Member) -> Site:
    """A network with the longest data members really type, and an outbox of many rows."""
    organiser.organisation = LONG_ORGANISATION
    organiser.job_title = LONG_JOB
    member.organisation = LONG_ORGANISATION
    contact = long_member(make_member, 0, is_organiser=True)
    others = [long_member(make_member, n) for n in range(1, 41)]
    later = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0) + dt.timedelta(days=20)
    details = {
        "theme": "What works with 18-25 year olds, from arrest to adult services, in three police force areas",
        "description": f"Two hours with practitioners. Read first: [{LONG_URL}]({LONG_URL})\n\n{LONG_URL}",
        "join_url": TEAMS_URL,
        "location": LONG_LOCATION,
        "contact_id": contact.id,
        "rsvp_deadline": later - dt.timedelta(days=2),
    }
    draft = make_meeting(title=f"Draft: {LONG_TITLE}", status=MeetingStatus.DRAFT, start=later, **details)
    scheduled = make_meeting(
        title=LONG_TITLE, start=later, visibility=Visibility.MEMBERS, capacity=60, slug="scheduled", **details
    )
    full = make_meeting(title=f"Full: {LONG_TITLE}", start=later, capacity=2, slug="full", **details)
    cancelled = make_meeting(title=f"Cancelled: {LONG_TITLE}", start=later, slug="cancelled", **details)
    for meeting in (draft, scheduled, full, cancelled):
        meeting.agenda_items = agenda()
        meeting.workshop_rooms = rooms()
    db.session.commit()

    for n, person in enumerate(others[:6]):
        rsvp = answered(scheduled, person, [Answer.GOING, Answer.MAYBE, Answer.DECLINED][n % 3])
        rsvp.access_needs = f"Captions and a quiet room, please; send papers to {person.email}"
        rsvp.comment = f"Bringing our evaluation: {LONG_URL}"
    answered(full, others[0], Answer.GOING)
    answered(full, others[1], Answer.GOING)
    assert rsvp_service.answer(full.id, member, Answer.GOING).rsvp.is_waiting
    db.session.commit()

    invitation_service.invite(scheduled, [member, *others])
    invitation_service.invite(full, [member, *others[:5]])
    invitation_service.invite(cancelled, [member, *others[:5]])
    meeting_service.cancel(
        cancelled,
        f"The venue flooded overnight and the building is closed until further notice; see {LONG_URL} for updates.",
    )
    links = {m.id: invitation_service.personal_link(m, member).token for m in (scheduled, full, cancelled)}
    db.session.commit()

    past = past_meeting(make_meeting, title=f"Past: {LONG_TITLE}", slug="past", contact_id=contact.id)
    past.agenda_items[1].speaker_organisation = LONG_ORGANISATION
    for person in others[:4]:
        answered(past, person, Answer.GOING, attended=True)
    answered(past, member, Answer.GOING, attended=True)
    actions = [
        notes_service.ActionRow(
            text=f"Share the custody diversion evaluation with every force: {LONG_URL}",
            owner=LONG_ORGANISATION,
            due_date=later.date(),
        ),
        notes_service.ActionRow(text="Write up the Lancashire room's questions", owner=contact.name, done=True),
    ]
    body = (
        f"## Speakers\n\n**{contact.name}**, {LONG_JOB}, {LONG_ORGANISATION}\n\n"
        f"## Lessons learned\n\nThe statutory guidance is at {LONG_URL} and <{LONG_URL}>.\n\n"
        f"| Force | Contact | Link |\n| --- | --- | --- |\n| {LONG_ORGANISATION} | {LONG_EMAIL} | {LONG_URL} |\n\n"
        f"## Emerging practice\n\n- {LONG_JOB}\n\n## Actions\n\nSee below.\n"
    )
    title = f"Notes: {LONG_TITLE}"
    write_notes(past, organiser, title=title, summary=LONG_JOB, body=body, publish=False)
    write_notes(past, organiser, title=title, summary=LONG_JOB, body=body + "\nA correction.\n", actions=actions)
    next_meeting = make_meeting(
        title=f"Next: {LONG_TITLE}", start=later + dt.timedelta(days=5), series_id=past.series_id, slug="next"
    )

    failed = []
    for n in range(12):
        message = OutboxMessage(
            kind="invitation",
            message_id=f"<failed-{n}@kxn.test>",
            sender="Knowledge Exchange Network <meetings@kxn.test>",
            recipient=f"{n}.{LONG_EMAIL}",
            subject=f"Invitation: {LONG_TITLE}",
            text_body=f"Answer at {LONG_URL}",
            html_body=f"<p>Answer at {LONG_URL}</p>",
            status=OutboxStatus.FAILED,
            attempts=8,
            last_error=f"550 5.1.1 <{n}.{LONG_EMAIL}>: Recipient address rejected: User unknown in virtual table",
        )
        db.session.add(message)
        failed.append(message)
    for n in range(8):
        db.session.add(
            CalendarReply(
                message_id=f"<reply-{n}@kxn.test>",
                sender=f"{n}.{LONG_EMAIL}",
                subject=f"Accepted: {LONG_TITLE}",
                method="REPLY",
                partstat="ACCEPTED",
                comment=f"See you there; my deputy is {LONG_EMAIL}",
                outcome=ReplyOutcome.UNMATCHED if n % 2 else ReplyOutcome.APPLIED,
                reason=f"No invitation to {LONG_EMAIL} matches this reply.",
                meeting_id=scheduled.id,
                member_id=others[n].id if n % 2 == 0 else None,
            )
        )
    calendar_service.new_feed_token(member)
    series_service.follow(next_meeting.series, member, StandingAnswer.INVITE, in_feed=True)
    db.session.commit()
    some_outbox = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.kind == "invitation")).first()
    assert some_outbox is not None and next_meeting.id
    return Site(
        organiser=organiser,
        member=member,
        draft=draft.slug,
        scheduled=scheduled.slug,
        full=full.slug,
        cancelled=cancelled.slug,
        past=past.slug,
        scheduled_link=f"/meetings/{scheduled.slug}/answer/{links[scheduled.id]}",
        full_link=f"/meetings/{full.slug}/answer/{links[full.id]}",
        cancelled_link=f"/meetings/{cancelled.slug}/answer/{links[cancelled.id]}",
        other_member_id=others[0].id,
        outbox_id=some_outbox.id,
        failed_outbox_id=failed[0].id,
    )


def sign_in_link_token(email: str) -> str:
    """A live sign-in link, as the emailed one: read from the message the request queued."""
    db.session.rollback()  # a read snapshot older than the live server's last write could not write on SQLite
    auth_service.send_sign_in_link(email)
    db.session.commit()
    message = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.kind == "sign_in").order_by(OutboxMessage.id.desc())
    ).first()
    assert message is not None
    return re.search(r"/sign-in/link/([\w-]+)", message.text_body).group(1)


def member_pages(check: Checker, site: Site) -> None:
    meetings = (site.scheduled, site.full, site.cancelled, site.past)
    check.visit_all("/", *(f"/meetings/{slug}" for slug in meetings), f"/meetings/{site.past}/notes")
    check.visit_all("/notes", "/notes?q=custody", "/profile", "/profile/calendar", "/series", "/series/kxn")
    check.visit("/members", status=403)


def organiser_pages(check: Checker, site: Site) -> None:
    page = check.page
    meetings = (site.draft, site.scheduled, site.full, site.cancelled, site.past, "next")
    check.visit_all("/", *(f"/meetings/{slug}" for slug in meetings), "/meetings/new")
    page.get_by_role("button", name="Save as draft").click()
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    check.check("/meetings/new refused", 422)
    check.visit_all(
        f"/meetings/{site.scheduled}/edit",
        f"/meetings/new?from={site.past}",
        f"/meetings/{site.scheduled}/cancel",
        f"/meetings/{site.draft}/delete",
        *(f"/meetings/{slug}/attendees" for slug in (site.scheduled, site.full, site.cancelled, site.past)),
        f"/meetings/{site.full}/invite",
        f"/meetings/{site.scheduled}/invite",
    )
    page.get_by_label("These email addresses").check()
    addresses = f"Someone New <new.{LONG_EMAIL}>, not-an-address, {LONG_EMAIL}"
    page.get_by_label(re.compile("Email addresses")).fill(addresses)
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    page.get_by_text("Plain-text version").click()
    check.check("invitation preview")

    notes = f"/meetings/{site.past}/notes"
    check.visit_all(notes, "/meetings/next/notes/edit", f"{notes}/edit")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("region", name="Preview")).to_be_visible()
    check.check("notes preview")
    check.visit_all(f"{notes}/revisions", f"{notes}/revisions/1", f"{notes}/revisions/compare?from=1&to=2", "/notes")

    check.visit_all(
        "/members",
        "/members?q=Adebayo&status=active&page=2",
        "/members/new",
        f"/members/{site.other_member_id}/edit",
        "/members/import",
    )
    rows = [
        "name,email,organisation,job title",
        f"Priya Shah-Montgomery,priya.{LONG_EMAIL},{LONG_ORGANISATION},{LONG_JOB}",
        f"No Address,{LONG_URL},{LONG_ORGANISATION},",
        f"Repeated,{LONG_EMAIL.upper()}x,,",
    ]
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "members.csv", "mimeType": "text/csv", "buffer": "\n".join(rows).encode()}]
    )
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check the import")
    page.get_by_text("Show the rows").click()
    check.check("import preview")

    check.visit_all(
        "/outbox/",
        "/outbox/?status=failed",
        "/outbox/?page=2",
        "/outbox/sends",
        "/outbox/?q=example",
        f"/meetings/{site.scheduled}/message",
        f"/outbox/{site.outbox_id}",
        f"/outbox/{site.failed_outbox_id}",
        "/replies/",
        "/replies/?show=unmatched",
        "/profile",
        "/profile/calendar",
        "/account/password",
    )
    check.visit_all("/series", "/series/kxn", "/series/kxn/followers", "/series/kxn/edit", "/series/new")
    check.visit("/meetings/no-such-meeting", status=404)


def visitor_pages(check: Checker, site: Site) -> None:
    page = check.page
    check.visit_all("/", f"/meetings/{site.full}", f"/meetings/{site.cancelled}", f"/meetings/{site.past}/notes")
    token = follows.member_token(db.session.scalar(db.select(MeetingSeries.id)), site.member.id)
    check.visit_all("/series", "/series/kxn", f"/series/kxn/follow/{token}", f"/series/kxn/unfollow/{token}")
    check.visit_all("/notes", "/past", site.scheduled_link, site.full_link, site.cancelled_link, "/sign-in")
    page.get_by_text("Organisers: sign in with a password").click()
    check.check("sign-in with password open")
    page.get_by_label("Email address").first.fill(LONG_EMAIL)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    check.check("/sign-in/code")
    check.visit(f"/sign-in/link/{sign_in_link_token(site.member.email)}")
    check.visit("/sign-in/link/spent-or-mistyped", status=410)
    check.visit(site.scheduled_link[:-4], status=404)
    check.visit("/no/such/page", status=404)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360px", "1280px"])
def test_every_page_fits_the_screen_with_long_data(
    live_server, page, viewport, organiser, member, make_member, make_meeting
):
    site = seed(make_member, make_meeting, organiser, member)
    page.set_viewport_size(viewport)
    check = Checker(page, viewport["width"])

    visitor_pages(check, site)
    sign_in_browser(page, live_server, site.member)
    member_pages(check, site)
    page.context.clear_cookies()
    sign_in_browser(page, live_server, site.organiser)
    organiser_pages(check, site)
    check.assert_clean()


def test_the_calendar_address_copies_with_one_press(live_server, page, member):
    calendar_service.new_feed_token(member)
    db.session.commit()
    address = f"{live_server.url}/calendar/{member.calendar_token}.ics"
    page.set_viewport_size(PHONE)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in_browser(page, live_server, member)
    page.goto("/profile/calendar")
    check = Checker(page, PHONE["width"])
    check.check("/profile/calendar")
    check.assert_clean()

    field = page.get_by_label("Your calendar address")
    expect(field).to_have_value(address)
    field.focus()
    page.keyboard.press("Tab")
    copy = page.get_by_role("button", name="Copy your calendar address")
    expect(copy).to_be_focused()
    assert copy.evaluate("button => getComputedStyle(button).outlineStyle") == "solid", "focus is visible"
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Copied")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == address
    audit(page)


def test_without_scripts_the_calendar_address_is_there_to_select(live_server, browser, member):
    calendar_service.new_feed_token(member)
    db.session.commit()
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False, viewport=PHONE)
    try:
        sign_in_browser(context, live_server, member)
        page = context.new_page()
        page.goto("/profile/calendar")
        field = page.get_by_label("Your calendar address")
        expect(field).to_have_value(f"{live_server.url}/calendar/{member.calendar_token}.ics")
        expect(field).to_be_editable(editable=False)
        expect(page.get_by_role("button", name="Copy your calendar address")).to_be_hidden()
        field.select_text()
        assert field.evaluate("input => input.selectionEnd - input.selectionStart") == len(field.input_value())
    finally:
        context.close()
