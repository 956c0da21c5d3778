"""Notes in a real browser: an organiser writes them from the meeting's outline, previews, saves a draft, publishes
(members get one email each), edits quietly and compares revisions; hostile Markdown runs no script; printing
gives a clean document."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from kxn_meetings.mail import deliver_due
from kxn_meetings.models import Answer

from .browser_fixtures import audit, sign_in_browser, visit
from .notes_helpers import HOSTILE_MARKDOWN, answered, past_meeting, write_notes

pytestmark = pytest.mark.browser


def test_organiser_writes_previews_publishes_and_edits_notes(
    live_server, smtp_server, page, browser, organiser, member, make_member, make_meeting
):
    meeting = past_meeting(make_meeting)
    went = [
        make_member(name="Aisha Rahman", email="aisha@example.net"),
        make_member(name="Imran Hussain", email="imran@example.net"),
    ]
    answered(meeting, went[0], Answer.GOING, attended=True)
    answered(meeting, went[1], Answer.GOING)
    came_anyway = make_member(name="Priya Shah", email="priya@example.org")
    answered(meeting, came_anyway, Answer.MAYBE, attended=True)
    apologised = make_member(name="Ruth Mensah", email="ruth@example.org")
    answered(meeting, apologised, Answer.DECLINED)
    answered(meeting, member, Answer.MAYBE)
    expected = {m.email for m in (*went, came_anyway, apologised)}
    sign_in_browser(page.context, live_server, organiser)

    visit(page, f"/meetings/{meeting.slug}")
    page.locator(".toolbar").get_by_role("link", name="Notes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Notes of the meeting")
    audit(page)

    page.get_by_role("link", name="Start from the meeting").click()
    body = page.get_by_label("Notes (Markdown)")
    expect(body).to_contain_text("## Speakers")
    expect(body).to_contain_text("**Stan Gilmour**, Director, Thames Valley VRU")
    expect(body).to_contain_text("### How can VRUs help with the move into adulthood?")
    audit(page)
    outline = body.input_value()
    assert outline.index("## Lessons learned") < outline.index("## Emerging practice") < outline.index("## Actions")
    page.get_by_label("Summary").fill("What VRUs have learned about measuring success.")
    body.fill(re.sub(r"_Open with .*?_", "Members agreed that interim outcome measures matter.", outline))
    page.get_by_label("What").first.fill("Collect the interim outcome measures each VRU uses")
    page.get_by_label("Owner").first.fill("The Police Foundation")

    page.get_by_role("button", name="Preview").click()
    preview = page.get_by_role("region", name="Preview")
    expect(preview.get_by_role("heading", name="Speakers")).to_be_visible()
    expect(preview).to_contain_text("Members agreed that interim outcome measures matter.")
    expect(preview.get_by_role("navigation", name="Contents")).to_be_visible()
    audit(page)

    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status").first).to_contain_text("Saved: revision 1 of the draft.")
    audit(page)

    members_view = browser.new_context(base_url=live_server.url)
    try:
        sign_in_browser(members_view, live_server, member)
        reader = members_view.new_page()
        assert reader.goto(f"/meetings/{meeting.slug}/notes").status == 404
        reader.goto(f"/meetings/{meeting.slug}")
        expect(reader.get_by_role("heading", name="Notes of this meeting")).to_have_count(0)

        page.get_by_role("button", name="Publish and email 4 members").click()
        # The speakers' and rooms' prompts are still there: asked first, published when confirmed.
        expect(page.get_by_role("heading", level=1)).to_have_text("Publish these notes anyway?")
        audit(page)
        page.get_by_role("button", name="Publish anyway").click()
        expect(page.get_by_role("status").first).to_contain_text(
            "4 members who went or sent apologies will get the notes by email."
        )
        expect(page.get_by_role("heading", level=1)).to_have_text(meeting.title)
        expect(page.get_by_role("heading", name="Actions agreed")).to_be_visible()
        audit(page)

        assert deliver_due().sent == 6  # the notes to four, and the feedback request to the two who came
        delivered = smtp_server.wait_for(6)

        def to(message) -> str:
            return re.search(r"<(.+)>", str(message["To"])).group(1)

        messages = [m for m in delivered if m["Subject"].startswith("Notes: ")]
        assert sorted(map(to, messages)) == sorted(expected)
        asked = [to(m) for m in delivered if m["Subject"] == f"Your feedback: {meeting.title}"]
        assert sorted(asked) == ["aisha@example.net", "priya@example.org"]
        for message in messages:
            assert message["Subject"] == f"Notes: {meeting.title}"
            text = message.get_body(preferencelist=("plain",)).get_content()
            assert "What VRUs have learned about measuring success." in text
            assert f"{live_server.url}/meetings/{meeting.slug}/notes" in text

        assert reader.goto(f"/meetings/{meeting.slug}/notes").status == 200
        expect(reader.get_by_text("Members agreed that interim outcome measures matter.")).to_be_visible()
        reader.goto(f"/meetings/{meeting.slug}")
        expect(reader.get_by_role("heading", name="Notes of this meeting")).to_be_visible()
    finally:
        members_view.close()

    page.get_by_role("link", name="Edit the notes").click()
    expect(page.get_by_label("Email members about this update")).not_to_be_checked()
    body = page.get_by_label("Notes (Markdown)")
    body.fill(body.input_value() + "\n\nA correction from the Lancashire room.\n")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").first).to_contain_text("Saved: revision 2 of the notes.")
    audit(page)
    assert deliver_due().sent == 0
    assert len(smtp_server.messages) == 6, "a quiet edit emails nobody"

    page.get_by_role("link", name="Revision history").click()
    rows = page.get_by_role("table").get_by_role("row")
    expect(rows).to_have_count(3)
    expect(rows.nth(1)).to_contain_text(f"Revision 2 Current {meeting.title} {organiser.name}")
    expect(rows.nth(2)).to_contain_text(f"Revision 1 {meeting.title} {organiser.name}")
    audit(page)
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Changes from revision 1 to revision 2")
    expect(page.locator("ins.diff-added")).to_contain_text(["A correction from the Lancashire room."])
    audit(page)


def test_no_script_runs_on_published_notes_with_hostile_markdown(live_server, page, organiser, make_meeting):
    meeting = past_meeting(make_meeting)
    write_notes(
        meeting,
        organiser,
        title="<script>alert('title')</script> notes",
        summary="<img src=x onerror=alert('summary')>",
        body=HOSTILE_MARKDOWN,
    )
    dialogs: list[str] = []
    console_errors: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    requested: list[str] = []

    def on_console(message) -> None:
        # The browser's own favicon request is the only 404 a page may cause.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            console_errors.append(message.text)

    page.on("console", on_console)
    page.on("request", lambda request: requested.append(request.url))

    def nothing_ran(selector: str) -> None:
        hrefs = page.locator(f"{selector} a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert "https://example.org/safe" in hrefs
        assert all(h.startswith(("https://", "http://", "#", "/", "mailto:")) for h in hrefs), hrefs
        dangerous = page.locator(
            f"{selector} :is(script, img, iframe, svg, object, embed, style, [onerror], [onclick], [onload], [style])"
        )
        assert dangerous.count() == 0
        page.wait_for_timeout(200)
        assert dialogs == [] and console_errors == [], (dialogs, console_errors)
        assert not [url for url in requested if url.rstrip("/").endswith(("/x", "javascript:alert(1)"))], requested

    visit(page, f"/meetings/{meeting.slug}/notes")
    expect(page.get_by_role("heading", level=1)).to_have_text("<script>alert('title')</script> notes")
    for name in ("click me", "mixed case", "entity", "raw link", "data link"):
        expect(page.get_by_role("link", name=name)).to_have_count(0)
    nothing_ran(".notes-body")

    sign_in_browser(page.context, live_server, organiser)
    visit(page, f"/meetings/{meeting.slug}/notes/edit")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("region", name="Preview")).to_be_visible()
    audit(page)
    nothing_ran(".preview")

    visit(page, f"/meetings/{meeting.slug}")
    visit(page, "/notes")
    assert dialogs == [] and console_errors == []


def test_printed_notes_are_a_clean_document(live_server, page, organiser, make_meeting):
    meeting = past_meeting(make_meeting)
    write_notes(
        meeting,
        organiser,
        body="## Speakers\n\nSee [the report](https://example.org/report).\n\n"
        "## Lessons learned\n\nx\n\n## Actions\n\ny",
    )
    sign_in_browser(page.context, live_server, organiser)
    visit(page, f"/meetings/{meeting.slug}/notes")
    page.emulate_media(media="print")

    def display(selector: str) -> str:
        return page.locator(selector).first.evaluate("element => getComputedStyle(element).display")

    for hidden in (".site-header", ".site-footer", ".toolbar", "form"):
        assert display(hidden) == "none", hidden
    assert display(".notes-toc") != "none"
    after = page.get_by_role("link", name="the report").evaluate("link => getComputedStyle(link, '::after').content")
    assert "https://example.org/report" in after
    toc_after = page.locator(".notes-toc a").first.evaluate("link => getComputedStyle(link, '::after').content")
    assert toc_after in ("none", '""', "normal")
