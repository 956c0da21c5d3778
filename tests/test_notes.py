"""Meeting notes: writing, revisions, publishing and its email, actions that carry forward, attachments, the
archive and its search, the Atom feed, and who may do what."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from pathlib import Path
from urllib.parse import quote

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from kxn_meetings.extensions import db
from kxn_meetings.models import (
    ActionItem,
    ActionStatus,
    Answer,
    MeetingNotes,
    MeetingStatus,
    NoteAttachment,
    NoteRevision,
    NotesStatus,
    OutboxMessage,
    Visibility,
)
from kxn_meetings.rendering import render_markdown
from kxn_meetings.services import notes as notes_service
from kxn_meetings.services.notes import archive

from .html_forms import form_values, text
from .notes_helpers import FILES, HOSTILE_MARKDOWN, HTML, PDF, PNG, answered, office_file, past_meeting, write_notes


@pytest.fixture
def meeting(make_meeting):
    return past_meeting(make_meeting)


def edit_form(client, meeting, **overrides) -> dict[str, str]:
    """What the notes form submits as the organiser's browser shows it, with some fields changed."""
    page = client.get(f"/meetings/{meeting.slug}/notes/edit")
    assert page.status_code == 200
    values = form_values(page.get_data(as_text=True), with_field="body")
    values.update(overrides)
    return values


def save(client, meeting, **fields):
    return client.post(
        f"/meetings/{meeting.slug}/notes/edit", data={**edit_form(client, meeting, **fields), "save": "1"}
    )


def current(meeting) -> MeetingNotes | None:
    db.session.expire_all()
    return db.session.scalar(select(MeetingNotes).where(MeetingNotes.meeting_id == meeting.id))


def outbox(kind: str | None = None) -> list[OutboxMessage]:
    db.session.expire_all()
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    return list(db.session.scalars(query))


def textarea(page: str, name: str) -> str:
    match = re.search(rf'<textarea[^>]*name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, f"no textarea {name}"
    value = html.unescape(match.group(1))
    return value[2:] if value.startswith("\r\n") else value.removeprefix("\n")


# Writing --------------------------------------------------------------------------------------------


def test_start_from_the_meeting_fills_speakers_questions_sections_and_the_next_meeting(
    organiser_client, meeting, make_meeting
):
    following = make_meeting(
        title="Youth engagement",
        series_id=meeting.series_id,
        slug="youth-engagement",
        start=dt.datetime(2031, 3, 11, 15, 0, tzinfo=dt.UTC),
    )
    page = organiser_client.get(f"/meetings/{meeting.slug}/notes/edit?start=meeting").get_data(as_text=True)
    body = textarea(page, "body")
    sections = re.findall(r"^(#{2,3}) (.+)$", body, re.M)
    assert [title for level, title in sections if level == "##"] == [
        "Speakers",
        "Workshop questions",
        "Lessons learned",
        "Emerging practice",
        "Actions",
        "Next meeting",
    ]
    assert "**Stan Gilmour**, Director, Thames Valley VRU" in body
    assert "### The Sequential Intercept Model" in body
    assert "**Sue Clarke**, Detective Chief Superintendent, Lancashire VRU" in body
    questions = [q.text for room in meeting.workshop_rooms for q in room.questions]
    for question in questions:
        assert ("###", question) in sections
    assert "Tuesday 11 March 2031, 3–5pm GMT" in body
    assert f"[Youth engagement](https://kxn.test/meetings/{following.slug})" in body
    assert "The outline of the meeting is in the form" in text(page)
    assert current(meeting) is None, "starting from the meeting saves nothing"


def test_the_outline_keeps_agenda_text_literal(organiser_client, make_meeting):
    meeting = past_meeting(make_meeting, title="Meeting *with* [markup](javascript:alert(1))")
    meeting.agenda_items[1].speaker_name = "<img src=x onerror=alert(1)> _Stan_"
    db.session.commit()
    title, _summary, body = notes_service.outline(meeting)
    rendered = render_markdown(body)
    assert "&lt;img src=x onerror=alert(1)&gt; _Stan_" in rendered
    assert "<img" not in rendered and "<em>Stan" not in rendered
    assert title == "Meeting *with* [markup](javascript:alert(1))"


def test_saving_makes_a_revision_with_author_and_sanitised_html(organiser_client, organiser, meeting):
    response = save(
        organiser_client,
        meeting,
        title="Notes: VRUs",
        summary="What VRUs learned.",
        body="## Speakers\r\n\r\nStan spoke.<script>alert(1)</script>",
    )
    assert response.status_code == 302
    notes = current(meeting)
    revision = notes.current_revision
    assert (notes.status, revision.number, revision.author_id) == (NotesStatus.DRAFT, 1, organiser.id)
    assert revision.body_markdown == "## Speakers\n\nStan spoke.<script>alert(1)</script>"
    assert revision.body_html == render_markdown(revision.body_markdown)
    assert "<script" not in revision.body_html
    page = organiser_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Saved: revision 1 of the draft." in text(page)

    save(organiser_client, meeting, body="## Speakers\n\nStan and Sue spoke.")
    save(organiser_client, meeting, body="## Speakers\n\nStan and Sue spoke.")
    numbers = db.session.scalars(
        select(NoteRevision.number).where(NoteRevision.notes_id == notes.id).order_by(NoteRevision.number)
    ).all()
    assert numbers == [1, 2], "saving unchanged text makes no new revision"


def test_preview_renders_on_the_server_and_saves_nothing(organiser_client, meeting):
    values = edit_form(
        organiser_client,
        meeting,
        body="## Lessons\n\n**Bold** <script>alert(1)</script>\n\n[x](javascript:alert(1)) [site](https://example.org)",
    )
    response = organiser_client.post(f"/meetings/{meeting.slug}/notes/edit", data={**values, "preview": "1"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    preview = page.split('id="preview_heading"', 1)[1].split("<form", 1)[0]
    assert '<h2 id="preview-lessons">Lessons</h2>' in preview
    assert "<strong>Bold</strong>" in preview
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in preview
    assert '<a href="https://example.org" rel="noopener noreferrer">site</a>' in preview
    assert "javascript:" not in preview.replace("[x](javascript:alert(1))", "")
    assert textarea(page, "body").startswith("## Lessons"), "the form keeps what was typed"
    assert current(meeting) is None


def test_a_missing_title_is_shown_next_to_the_field(organiser_client, meeting):
    response = save(organiser_client, meeting, title="  ")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "There is a problem" in page and 'id="title-error"' in page
    assert current(meeting) is None


def test_history_diff_and_restore(organiser_client, organiser, meeting):
    save(organiser_client, meeting, body="First line\nSecond line <b>bold</b> & more\nThird line")
    save(organiser_client, meeting, body="First line\nSecond line changed\nThird line")
    history = organiser_client.get(f"/meetings/{meeting.slug}/notes/revisions").get_data(as_text=True)
    assert "Revision 2" in history and "Revision 1" in history and organiser.name in history

    compare = organiser_client.get(f"/meetings/{meeting.slug}/notes/revisions/compare?from=1&to=2")
    page = compare.get_data(as_text=True)
    assert compare.status_code == 200
    assert re.search(
        r'<del class="diff-line diff-removed">.*?Removed: </span>Second line &lt;b&gt;bold&lt;/b&gt; '
        r"&amp; more</del>",
        page,
    )
    assert re.search(r'<ins class="diff-line diff-added">.*?Added: </span>Second line changed</ins>', page)
    assert "<b>bold</b>" not in page

    default = organiser_client.get(f"/meetings/{meeting.slug}/notes/revisions/compare").get_data(as_text=True)
    assert "Changes from revision 1 to revision 2" in default

    restored = organiser_client.post(f"/meetings/{meeting.slug}/notes/revisions/1/restore")
    assert restored.status_code == 302
    notes = current(meeting)
    assert notes.current_revision.number == 3
    assert notes.current_revision.body_markdown == "First line\nSecond line <b>bold</b> & more\nThird line"
    assert organiser_client.post(f"/meetings/{meeting.slug}/notes/revisions/9/restore").status_code == 404
    assert organiser_client.get(f"/meetings/{meeting.slug}/notes/revisions/compare?from=1&to=99").status_code == 404


# Who sees what --------------------------------------------------------------------------------------


def test_a_draft_is_seen_by_organisers_only(client, member_client, organiser_client, organiser, meeting):
    write_notes(meeting, organiser, title="Draft notes about VRUs", body="A secret draft phrase.", publish=False)
    for reader in (client, member_client):
        assert reader.get(f"/meetings/{meeting.slug}/notes").status_code == 404
        assert "Draft notes about VRUs" not in reader.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
        assert "Draft notes" not in reader.get("/notes?q=secret+draft").get_data(as_text=True)
    assert organiser_client.get(f"/meetings/{meeting.slug}/notes").status_code == 200
    assert b"Draft notes about VRUs" not in client.get("/notes/feed.atom").data


def test_members_only_notes_need_a_sign_in(client, member_client, organiser, meeting):
    write_notes(
        meeting,
        organiser,
        title="Members-only notes",
        visibility=Visibility.MEMBERS,
        body="## Speakers\n\nA members phrase.",
    )
    response = client.get(f"/meetings/{meeting.slug}/notes")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")
    assert "Members-only notes" not in client.get("/notes").get_data(as_text=True)
    assert "Members-only notes" in member_client.get(f"/meetings/{meeting.slug}/notes").get_data(as_text=True)
    assert "Members-only notes" in member_client.get("/notes?q=members+phrase").get_data(as_text=True)


def test_published_notes_show_on_their_page_and_the_meeting_page(client, organiser, meeting):
    body = "## Speakers\n\nx\n\n## Workshop questions\n\ny\n\n### Room one\n\nz\n\n## Actions\n\nw"
    write_notes(meeting, organiser, title="Notes: VRUs", summary="What VRUs learned.", body=body)
    page = client.get(f"/meetings/{meeting.slug}/notes").get_data(as_text=True)
    assert '<h1 id="notes_title">Notes: VRUs</h1>' in page
    assert '<h2 id="workshop-questions">Workshop questions</h2>' in page
    contents = page.split('aria-labelledby="notes_contents"', 1)[1].split("</nav>", 1)[0]
    assert re.findall(r'href="#([a-z-]+)"', contents) == ["speakers", "workshop-questions", "room-one", "actions"]
    assert 'media="print"' in page
    meeting_page = client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert "Notes of this meeting" in meeting_page and "What VRUs learned." in meeting_page
    assert f'href="/meetings/{meeting.slug}/notes"' in meeting_page


def test_short_notes_have_no_table_of_contents(client, organiser, meeting):
    write_notes(meeting, organiser, body="## Speakers\n\nx\n\n## Actions\n\ny")
    page = client.get(f"/meetings/{meeting.slug}/notes").get_data(as_text=True)
    assert "notes_contents" not in page and '<h2 id="speakers">' in page


# Publishing and email -------------------------------------------------------------------------------


@pytest.fixture
def audience(make_member, meeting):
    """Who answered the meeting, and how: the notes go to those who went or sent apologies."""
    people = {
        name: make_member(name=name.title(), email=f"{name}@example.org")
        for name in ("going", "attended", "declined", "maybe", "absent", "inactive", "silent")
    }
    answered(meeting, people["going"], Answer.GOING)
    answered(meeting, people["attended"], Answer.MAYBE, attended=True)
    answered(meeting, people["declined"], Answer.DECLINED)
    answered(meeting, people["maybe"], Answer.MAYBE)
    answered(meeting, people["absent"], Answer.MAYBE, attended=False)
    people["inactive"].active = False
    answered(meeting, people["inactive"], Answer.GOING)
    return people


def test_publishing_emails_everyone_who_went_or_sent_apologies_once(organiser_client, organiser, meeting, audience):
    write_notes(meeting, organiser, title="VRUs: what we learned", summary="What VRUs learned & why.", publish=False)
    edit = organiser_client.get(f"/meetings/{meeting.slug}/notes/edit").get_data(as_text=True)
    assert "Publish and email 3 members" in edit and "Publish without emailing" in edit

    response = organiser_client.post(f"/meetings/{meeting.slug}/notes/publish", data={"email": "yes"})
    assert response.status_code == 302
    flashed = text(organiser_client.get(response.headers["Location"]).get_data(as_text=True))
    assert "3 members who went or sent apologies will get the notes by email." in flashed
    assert "The feedback request is on its way to 1 member who came." in flashed
    assert [m.recipient for m in outbox("feedback")] == ["Attended <attended@example.org>"]
    sent = outbox("notes_published")
    assert sorted(m.recipient for m in sent) == [
        "Attended <attended@example.org>",
        "Declined <declined@example.org>",
        "Going <going@example.org>",
    ]
    message = sent[0]
    assert message.subject == "Notes: VRUs: what we learned"
    assert "What VRUs learned & why." in message.text_body
    assert f"https://kxn.test/meetings/{meeting.slug}/notes" in message.text_body
    assert "What VRUs learned &amp; why." in message.html_body
    notes = current(meeting)
    assert notes.is_published and notes.notified_at is not None and notes.published_at is not None

    organiser_client.post(f"/meetings/{meeting.slug}/notes/unpublish")
    assert not current(meeting).is_published
    organiser_client.post(f"/meetings/{meeting.slug}/notes/publish", data={"email": "yes"})
    assert current(meeting).is_published
    assert len(outbox("notes_published")) == 3, "publishing again emails nobody twice"
    assert [m.recipient for m in outbox("feedback")] == ["Attended <attended@example.org>"]  # asked with the notes


def test_publish_without_emailing_and_edits_that_do_not_notify(organiser_client, organiser, meeting, audience):
    write_notes(meeting, organiser, publish=False)
    organiser_client.post(f"/meetings/{meeting.slug}/notes/publish", data={"email": "no"})
    notes = current(meeting)
    assert notes.is_published and notes.notified_at is None
    assert outbox() == []

    page = organiser_client.get(f"/meetings/{meeting.slug}/notes/edit").get_data(as_text=True)
    assert "Email members about this update" in page and "Save changes" in page
    save(organiser_client, meeting, body="A correction.")
    assert outbox() == [], "an edit is not announced unless asked"

    response = save(organiser_client, meeting, body="An important change.", notify_update="y")
    assert "3 members will get an email about the update." in text(
        organiser_client.get(response.headers["Location"]).get_data(as_text=True)
    )
    updates = outbox("notes_updated")
    assert len(updates) == 3 and all(m.subject.startswith("Updated notes: ") for m in updates)
    assert {m.dedup_key.rsplit(":", 1)[1] for m in updates} == {"r3"}
    assert "have been updated" in updates[0].text_body

    again = save(organiser_client, meeting, body="An important change.", notify_update="y")
    assert "Nobody was emailed: nothing had changed." in text(
        organiser_client.get(again.headers["Location"]).get_data(as_text=True)
    )
    assert len(outbox()) == 3, "the same revision is announced once"


def test_notes_cannot_be_published_before_they_are_saved_or_before_the_meeting(
    organiser_client, organiser, make_meeting
):
    draft_meeting = past_meeting(make_meeting, status=MeetingStatus.DRAFT)
    assert organiser_client.post(f"/meetings/{draft_meeting.slug}/notes/publish").status_code == 404
    write_notes(draft_meeting, organiser, publish=False)
    response = organiser_client.post(f"/meetings/{draft_meeting.slug}/notes/publish", follow_redirects=True)
    assert "Publish the meeting before its notes." in text(response.get_data(as_text=True))
    assert not current(draft_meeting).is_published


# Actions --------------------------------------------------------------------------------------------


def test_actions_are_saved_with_the_notes(organiser_client, organiser, meeting, make_meeting):
    other = make_meeting(title="Another meeting")
    foreign = ActionItem(meeting_id=other.id, text="Not ours", owner="Someone")
    db.session.add(foreign)
    db.session.commit()
    response = save(
        organiser_client,
        meeting,
        **{
            "actions-0-text": "Collect interim outcome measures",
            "actions-0-owner": "The Police Foundation",
            "actions-0-due_date": "2031-02-23",
            "actions-1-text": "Share the screening tool",
            "actions-1-owner": "Thames Valley Police",
            "actions-1-done": "y",
            "actions-2-id": str(foreign.id),
            "actions-2-text": "Tries to take over another meeting's action",
        },
    )
    assert response.status_code == 302
    actions = db.session.scalars(
        select(ActionItem).where(ActionItem.meeting_id == meeting.id).order_by(ActionItem.id)
    ).all()
    assert [(a.text, a.owner, a.due_date, a.status) for a in actions] == [
        ("Collect interim outcome measures", "The Police Foundation", dt.date(2031, 2, 23), ActionStatus.OPEN),
        ("Share the screening tool", "Thames Valley Police", None, ActionStatus.DONE),
        ("Tries to take over another meeting's action", "", None, ActionStatus.OPEN),
    ]
    db.session.refresh(foreign)
    assert foreign.text == "Not ours" and foreign.meeting_id == other.id

    values = edit_form(organiser_client, meeting)
    assert values["actions-0-id"] == str(actions[0].id) and values["actions-0-text"] == actions[0].text
    values.update({"actions-2-text": "", "actions-2-owner": "", "actions-0-owner": "Police Foundation"})
    organiser_client.post(f"/meetings/{meeting.slug}/notes/edit", data={**values, "save": "1"})
    db.session.expire_all()
    kept = db.session.scalars(
        select(ActionItem).where(ActionItem.meeting_id == meeting.id).order_by(ActionItem.id)
    ).all()
    assert [(a.id, a.owner) for a in kept] == [
        (actions[0].id, "Police Foundation"),
        (actions[1].id, "Thames Valley Police"),
    ]


def test_an_action_needs_saying_what_it_is(organiser_client, meeting):
    response = save(organiser_client, meeting, **{"actions-0-owner": "Somebody"})
    assert response.status_code == 422
    assert "Say what the action is" in response.get_data(as_text=True)


def test_more_action_rows_on_request(organiser_client, meeting):
    values = edit_form(organiser_client, meeting, **{"actions-0-text": "One", "actions-1-text": "Two"})
    page = organiser_client.post(f"/meetings/{meeting.slug}/notes/edit", data={**values, "add_action": "1"}).get_data(
        as_text=True
    )
    assert 'name="actions-4-text"' in page and current(meeting) is None


def test_open_actions_carry_forward_to_the_next_meeting_until_done(
    client, organiser_client, member_client, organiser, meeting, make_meeting
):
    following = make_meeting(title="Youth engagement", series_id=meeting.series_id)
    write_notes(
        meeting,
        organiser,
        actions=[
            notes_service.ActionRow(
                text="Collect interim outcome measures", owner="The Police Foundation", due_date=dt.date(2031, 2, 23)
            ),
            notes_service.ActionRow(text="Already finished", done=True),
        ],
    )
    page = client.get(f"/meetings/{following.slug}").get_data(as_text=True)
    assert "Open actions from the last meeting" in page
    assert "Collect interim outcome measures" in page and "Already finished" not in page
    assert "Mark done" not in page, "only organisers see the buttons"
    outline = textarea(
        organiser_client.get(f"/meetings/{following.slug}/notes/edit?start=meeting").get_data(as_text=True), "body"
    )
    assert "- Collect interim outcome measures (owner: The Police Foundation; due Sunday 23 February 2031)" in outline

    action = db.session.scalar(select(ActionItem).where(ActionItem.text == "Collect interim outcome measures"))
    url = f"/meetings/{meeting.slug}/actions/{action.id}"
    assert member_client.post(url, data={"status": "done"}).status_code == 403
    assert "Mark done" in organiser_client.get(f"/meetings/{following.slug}").get_data(as_text=True)
    response = organiser_client.post(url, data={"status": "done", "next": f"/meetings/{following.slug}"})
    assert response.status_code == 302 and response.headers["Location"] == f"/meetings/{following.slug}"
    db.session.refresh(action)
    assert action.status == ActionStatus.DONE
    assert "Open actions from the last meeting" not in client.get(f"/meetings/{following.slug}").get_data(as_text=True)
    assert (
        organiser_client.post(f"/meetings/{following.slug}/actions/{action.id}", data={"status": "open"}).status_code
        == 404
    ), "the action belongs to its own meeting"
    evil = organiser_client.post(url, data={"status": "open", "next": "https://evil.example/"})
    assert evil.headers["Location"] == f"/meetings/{meeting.slug}/notes"


def test_actions_of_unpublished_notes_stay_with_organisers(client, organiser, meeting, make_meeting):
    following = make_meeting(title="Youth engagement", series_id=meeting.series_id)
    write_notes(meeting, organiser, publish=False, actions=[notes_service.ActionRow(text="A draft action")])
    assert "A draft action" not in client.get(f"/meetings/{following.slug}").get_data(as_text=True)


# Attachments ----------------------------------------------------------------------------------------


def upload(client, meeting, name: str, content: bytes):
    """POST a file as a browser does. The body is built here: for large files the test client's own encoder
    leaves a temporary file open."""
    boundary = "----kxn-test-boundary-7d1f"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return client.post(
        f"/meetings/{meeting.slug}/notes/attachments",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


@pytest.fixture
def notes(organiser, meeting):
    return write_notes(meeting, organiser, title="Notes with files")


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_kind_of_file_can_be_attached_and_downloaded(app, client, organiser_client, notes, meeting, name):
    response = upload(organiser_client, meeting, name, FILES[name])
    assert response.status_code == 302
    attachment = db.session.scalars(select(NoteAttachment)).one()
    stored = Path(app.config["NOTES_UPLOAD_DIR"]) / attachment.stored_name
    assert stored.read_bytes() == FILES[name]
    assert Path(app.config["NOTES_UPLOAD_DIR"]) == Path(app.instance_path) / "uploads"
    assert len(attachment.stored_name) >= 32 and name not in attachment.stored_name
    page = client.get(f"/meetings/{meeting.slug}/notes").get_data(as_text=True)
    assert name in page
    download = client.get(f"/meetings/{meeting.slug}/notes/attachments/{attachment.id}", buffered=True)
    assert download.status_code == 200 and download.data == FILES[name]
    assert download.headers["Content-Disposition"] == f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.mimetype == notes_service.BY_EXTENSION[name.rsplit(".", 1)[1].lower()].content_type


def test_a_file_whose_content_does_not_match_its_name_is_refused(app, organiser_client, notes, meeting):
    cases = {
        "report.pdf": (HTML, "“report.pdf” is called .pdf but its content is not a PDF"),
        "photo.png": (PDF, "“photo.png” is called .png but its content is a PDF. Rename it to .pdf"),
        "report.docx": (office_file("xl/"), "its content is an Excel workbook. Rename it to .xlsx"),
        "plain-zip.docx": (b"PK\x03\x04" + b"\x00" * 30, "its content is not a Word document"),
        "page.html": (HTML, "only .pdf, .png, .jpg, .jpeg, .docx, .pptx, .xlsx files can be"),
        "empty.pdf": (b"", "“empty.pdf” is empty."),
    }
    for name, (content, message) in cases.items():
        response = upload(organiser_client, meeting, name, content)
        assert response.status_code == 302, name
        page = text(organiser_client.get(response.headers["Location"]).get_data(as_text=True))
        assert message in page, (name, page)
    assert db.session.scalars(select(NoteAttachment)).all() == []
    folder = Path(app.config["NOTES_UPLOAD_DIR"])
    assert not folder.exists() or list(folder.iterdir()) == []


def test_a_zip_without_content_types_is_not_an_office_file():
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<x/>")
    assert notes_service.sniff(buffer.getvalue()) is None
    assert notes_service.sniff(office_file("word/")) is notes_service.DOCX


def test_unicode_names_download_under_their_real_name(client, organiser_client, notes, meeting):
    upload(organiser_client, meeting, "../../Résumé; final (v2).pdf", PDF)
    attachment = db.session.scalars(select(NoteAttachment)).one()
    assert attachment.filename == "Résumé; final (v2).pdf"
    disposition = client.get(f"/meetings/{meeting.slug}/notes/attachments/{attachment.id}", buffered=True).headers[
        "Content-Disposition"
    ]
    assert disposition == (
        "attachment; filename=\"R_sum__ final (v2).pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%3B%20final%20%28v2%29.pdf"
    )


def test_names_lose_folders_and_control_characters():
    assert notes_service.clean_filename("C:\\Users\\me\\slides.pdf") == "slides.pdf"
    assert notes_service.clean_filename("a\r\nb\x00\u202ec.pdf") == "abc.pdf"
    assert notes_service.clean_filename(" .hidden.pdf. ") == "hidden.pdf"
    long = notes_service.clean_filename("x" * 300 + ".docx")
    assert len(long) <= 200 and long.endswith(".docx")


@pytest.mark.app_config(NOTES_MAX_UPLOAD_MB=1)
def test_too_large_uploads_get_a_friendly_page(app, organiser_client, notes, meeting):
    assert app.config["MAX_CONTENT_LENGTH"] >= 2 * 1024 * 1024
    response = upload(organiser_client, meeting, "big.pdf", PDF + b"0" * (1024 * 1024))
    assert response.status_code == 413
    page = text(response.get_data(as_text=True))
    assert "That file is too large" in page and "“big.pdf” is larger than the 1 MB limit" in page

    response = upload(organiser_client, meeting, "huge.pdf", PDF + b"0" * app.config["MAX_CONTENT_LENGTH"])
    assert response.status_code == 413
    assert "Files of up to 1 MB can be attached" in text(response.get_data(as_text=True))
    assert db.session.scalars(select(NoteAttachment)).all() == []


@pytest.mark.app_config(WTF_CSRF_ENABLED=True, NOTES_MAX_UPLOAD_MB=1)
def test_a_too_large_upload_gets_the_friendly_page_before_the_csrf_check(app, organiser_client, notes, meeting):
    response = upload(organiser_client, meeting, "huge.pdf", PDF + b"0" * app.config["MAX_CONTENT_LENGTH"])
    assert response.status_code == 413
    assert "Files of up to 1 MB can be attached" in text(response.get_data(as_text=True))


def test_files_follow_the_notes_visibility_and_can_be_removed(
    app, client, member_client, organiser_client, organiser, meeting, make_meeting
):
    notes = write_notes(meeting, organiser, publish=False)
    upload(organiser_client, meeting, "slides.pdf", PDF)
    attachment = db.session.scalars(select(NoteAttachment)).one()
    url = f"/meetings/{meeting.slug}/notes/attachments/{attachment.id}"
    assert client.get(url).status_code == 404 and member_client.get(url).status_code == 404
    assert organiser_client.get(url, buffered=True).headers["Cache-Control"] == "private, no-store"

    notes.visibility = Visibility.MEMBERS
    notes_service.publish(notes, email_members=False, not_ready_confirmed=True)
    db.session.commit()
    assert client.get(url).status_code == 302
    assert member_client.get(url, buffered=True).status_code == 200

    other = make_meeting(title="Another meeting")
    write_notes(other, organiser)
    assert client.get(f"/meetings/{other.slug}/notes/attachments/{attachment.id}").status_code == 404

    stored = Path(app.config["NOTES_UPLOAD_DIR"]) / attachment.stored_name
    assert member_client.post(f"{url}/delete").status_code == 403
    assert organiser_client.post(f"{url}/delete").status_code == 302
    assert not stored.exists() and db.session.scalars(select(NoteAttachment)).all() == []
    assert client.get(url).status_code in (302, 404)


@pytest.fixture
def elsewhere(app_config, tmp_path) -> Path:
    """A configured upload folder; asked for before `app`, so the app is built with it."""
    app_config["NOTES_UPLOAD_DIR"] = str(tmp_path / "elsewhere")
    return tmp_path / "elsewhere"


def test_the_upload_folder_can_be_chosen(elsewhere, organiser_client, notes, meeting):
    upload(organiser_client, meeting, "slides.pdf", PDF)
    attachment = db.session.scalars(select(NoteAttachment)).one()
    assert (elsewhere / attachment.stored_name).read_bytes() == PDF


# The archive, search and feed ------------------------------------------------------------------------


@pytest.fixture
def library(organiser, make_meeting):
    """Notes of four meetings: public, members-only, draft, and public from an earlier year."""

    def at(day: dt.date, slug: str):
        return make_meeting(
            slug=slug, title=f"Meeting {slug}", start=dt.datetime.combine(day, dt.time(15), tzinfo=dt.UTC)
        )

    write_notes(
        at(dt.date(2025, 2, 10), "public"),
        organiser,
        title="Violence Reduction Units",
        body="The hospital can be used as a teachable moment to engage young people.",
        summary="Public one",
    )
    write_notes(
        at(dt.date(2025, 1, 26), "members"),
        organiser,
        title="Members-only meeting notes",
        visibility=Visibility.MEMBERS,
        body="A teachable moment for members only.",
    )
    write_notes(
        at(dt.date(2025, 3, 1), "draft"),
        organiser,
        title="Draft notes",
        publish=False,
        body="A teachable moment not yet published.",
    )
    write_notes(
        at(dt.date(2024, 6, 1), "older"),
        organiser,
        title="Youth engagement 100% _literally_",
        body="Adversity reduction, not violence reduction.",
    )


def titles(page: str) -> list[str]:
    return re.findall(r'<h3><a href="/meetings/[^"]+/notes">(.*?)</a></h3>', page)


def test_archive_lists_published_notes_newest_first(client, member_client, organiser_client, library):
    assert titles(client.get("/notes").get_data(as_text=True)) == [
        "Violence Reduction Units",
        "Youth engagement 100% _literally_",
    ]
    assert titles(member_client.get("/notes").get_data(as_text=True)) == [
        "Violence Reduction Units",
        "Members-only meeting notes",
        "Youth engagement 100% _literally_",
    ]
    organiser_page = organiser_client.get("/notes").get_data(as_text=True)
    assert "Draft notes" in organiser_page.split('id="drafts_heading"', 1)[1]
    assert titles(client.get("/notes?year=2024").get_data(as_text=True)) == ["Youth engagement 100% _literally_"]
    years = re.findall(r'<option value="(\d{4})"', client.get("/notes").get_data(as_text=True))
    assert years == ["2025", "2024"]


def test_search_finds_a_phrase_from_the_body_and_never_a_draft_or_members_only_note(client, member_client, library):
    assert titles(client.get("/notes?q=teachable+moment").get_data(as_text=True)) == ["Violence Reduction Units"]
    assert titles(client.get('/notes?q="TEACHABLE MOMENT to engage"').get_data(as_text=True)) == [
        "Violence Reduction Units"
    ]
    assert titles(member_client.get("/notes?q=teachable").get_data(as_text=True)) == [
        "Violence Reduction Units",
        "Members-only meeting notes",
    ]
    assert titles(client.get("/notes?q=adversity+reduction").get_data(as_text=True)) == [
        "Youth engagement 100% _literally_"
    ]
    assert titles(client.get("/notes?q=public+one").get_data(as_text=True)) == ["Violence Reduction Units"]
    page = client.get("/notes?q=teachable+moment+nonexistentword").get_data(as_text=True)
    assert titles(page) == [] and "No notes match" in text(page)


def test_search_wildcards_are_literal(client, library):
    assert titles(client.get("/notes?q=100%25").get_data(as_text=True)) == ["Youth engagement 100% _literally_"]
    assert titles(client.get("/notes?q=%25").get_data(as_text=True)) == ["Youth engagement 100% _literally_"]
    assert titles(client.get("/notes?q=_literally_").get_data(as_text=True)) == ["Youth engagement 100% _literally_"]
    assert titles(client.get("/notes?q=V_olence").get_data(as_text=True)) == []


def test_atom_feed_is_valid_and_holds_only_public_published_notes(client, library):
    response = client.get("/notes/feed.atom")
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    feed = feedparser.parse(response.data)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "Knowledge Exchange Network: meeting notes"
    assert feed.feed.id.startswith("tag:kxn.test,")
    assert {link.rel: link.href for link in feed.feed.links}["self"] == "https://kxn.test/notes/feed.atom"
    assert [entry.title for entry in feed.entries] == ["Violence Reduction Units", "Youth engagement 100% _literally_"]
    entry = feed.entries[0]
    assert re.fullmatch(r"tag:kxn\.test,\d{4}-\d\d-\d\d:notes-\d+", entry.id)
    assert entry.link == "https://kxn.test/meetings/public/notes"
    assert entry.summary == "Public one"
    assert entry.content[0].type == "text/html"
    assert "teachable moment" in entry.content[0].value
    assert entry.published_parsed and entry.updated_parsed
    again = client.get("/notes/feed.atom", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_the_feed_escapes_hostile_titles(client, organiser, make_meeting):
    write_notes(make_meeting(slug="hostile"), organiser, title="<script>alert(1)</script> & ]]>", body=HOSTILE_MARKDOWN)
    feed = feedparser.parse(client.get("/notes/feed.atom").data)
    assert feed.bozo == 0
    assert feed.entries[0].title == "<script>alert(1)</script> & ]]>"
    assert "<script" not in feed.entries[0].content[0].value


def test_the_feed_carries_only_the_newest_entries(client, organiser, make_meeting, monkeypatch):
    monkeypatch.setattr(archive, "FEED_SIZE", 3)
    for days_ago in (40, 10, 30, 20, 50):
        write_notes(past_meeting(make_meeting, days_ago=days_ago), organiser, title=f"Notes {days_ago} days ago")
    feed = feedparser.parse(client.get("/notes/feed.atom").data)
    assert [entry.title for entry in feed.entries] == ["Notes 10 days ago", "Notes 20 days ago", "Notes 30 days ago"]


# The demo -----------------------------------------------------------------------------------------


def test_the_demo_notes_of_meeting_two_use_every_part(app, client):
    from kxn_meetings.demo import load_demo

    load_demo(progress=lambda _line: None)
    db.session.commit()
    notes = db.session.scalars(select(MeetingNotes)).one()
    body = notes.current_revision.body_markdown
    for section in (
        "## Speakers",
        "## Workshop questions",
        "## Lessons learned",
        "## Emerging practice",
        "## Actions",
        "## Next meeting",
    ):
        assert section in body
    page = client.get(f"/meetings/{notes.meeting.slug}/notes").get_data(as_text=True)
    assert 'aria-labelledby="notes_contents"' in page
    assert "Stan Gilmour" in page and "Northumbria Police" in page
    assert page.count('<span class="badge badge-open">Open</span>') == 2
    assert page.count('<span class="badge badge-done">Done</span>') == 1
    assert "teachable moment" in text(client.get("/notes?q=teachable+moment").get_data(as_text=True))


# Who may do what -------------------------------------------------------------------------------------


@pytest.fixture
def matrix(organiser, meeting, app):
    notes = write_notes(meeting, organiser, actions=[notes_service.ActionRow(text="Do it")])
    notes_service.save(
        meeting,
        notes_service.NotesInput(title="Second", body="x", actions=[notes_service.ActionRow(text="Do it")]),
        organiser,
    )
    db.session.commit()
    attachment = notes_service.attach(notes, "slides.pdf", PDF, organiser)
    db.session.commit()
    action = db.session.scalar(select(ActionItem))
    base = f"/meetings/{meeting.slug}"
    return base, attachment.id, action.id


SIGN_IN, FORBIDDEN, OK, REDIRECT = "sign-in", 403, 200, 302


def urls(base: str, attachment_id: int, action_id: int) -> list[tuple[str, str, dict, tuple]]:
    """(method, path, form, expected for anonymous, member, organiser); state-changing ones last."""
    return [
        ("GET", "/notes", {}, (OK, OK, OK)),
        ("GET", "/notes/feed.atom", {}, (OK, OK, OK)),
        ("GET", f"{base}/notes", {}, (OK, OK, OK)),
        ("GET", f"{base}/notes/attachments/{attachment_id}", {}, (OK, OK, OK)),
        ("GET", f"{base}/notes/edit", {}, (SIGN_IN, FORBIDDEN, OK)),
        ("GET", f"{base}/notes/edit?start=meeting", {}, (SIGN_IN, FORBIDDEN, OK)),
        ("GET", f"{base}/notes/revisions", {}, (SIGN_IN, FORBIDDEN, OK)),
        ("GET", f"{base}/notes/revisions/1", {}, (SIGN_IN, FORBIDDEN, OK)),
        ("GET", f"{base}/notes/revisions/compare?from=1&to=2", {}, (SIGN_IN, FORBIDDEN, OK)),
        ("POST", f"{base}/notes/edit", {"title": "T", "preview": "1"}, (SIGN_IN, FORBIDDEN, OK)),
        ("POST", f"{base}/actions/{action_id}", {"status": "done"}, (SIGN_IN, FORBIDDEN, REDIRECT)),
        (
            "POST",
            f"{base}/notes/edit",
            {"title": "Edited", "visibility": "public", "save": "1"},
            (SIGN_IN, FORBIDDEN, REDIRECT),
        ),
        ("POST", f"{base}/notes/revisions/1/restore", {}, (SIGN_IN, FORBIDDEN, REDIRECT)),
        ("POST", f"{base}/notes/attachments", {"file": (io.BytesIO(PNG), "x.png")}, (SIGN_IN, FORBIDDEN, REDIRECT)),
        ("POST", f"{base}/notes/attachments/{attachment_id}/delete", {}, (SIGN_IN, FORBIDDEN, REDIRECT)),
        ("POST", f"{base}/notes/unpublish", {}, (SIGN_IN, FORBIDDEN, REDIRECT)),
        ("POST", f"{base}/notes/publish", {"email": "no"}, (SIGN_IN, FORBIDDEN, REDIRECT)),
    ]


@pytest.mark.parametrize("role", ["anonymous", "member", "organiser"])
def test_authorisation_matrix(app, sign_in, member, organiser, matrix, role):
    client = app.test_client()
    if role != "anonymous":
        sign_in(client, member if role == "member" else organiser)
    column = ["anonymous", "member", "organiser"].index(role)
    changed_before = (db.session.scalar(select(func.count(NoteRevision.id))), len(outbox()))
    for method, path, form, expected in urls(*matrix):
        want = expected[column]
        if method == "GET":
            response = client.get(path, buffered=True)
        else:
            response = client.post(path, data=form, content_type="multipart/form-data")
        if want == SIGN_IN:
            assert response.status_code == 302, (method, path)
            assert response.headers["Location"].startswith("/sign-in"), (method, path)
        else:
            assert response.status_code == want, (method, path, response.status_code)
    if role != "organiser":
        assert (db.session.scalar(select(func.count(NoteRevision.id))), len(outbox())) == changed_before


@pytest.mark.parametrize("role,status", [("anonymous", 404), ("member", 404), ("organiser", 200)])
def test_draft_notes_and_their_files_are_404_to_everyone_but_organisers(
    app, sign_in, member, organiser, meeting, role, status
):
    notes = write_notes(meeting, organiser, publish=False)
    attachment = notes_service.attach(notes, "slides.pdf", PDF, organiser)
    db.session.commit()
    client = app.test_client()
    if role != "anonymous":
        sign_in(client, member if role == "member" else organiser)
    assert client.get(f"/meetings/{meeting.slug}/notes").status_code == status
    download = client.get(f"/meetings/{meeting.slug}/notes/attachments/{attachment.id}", buffered=True)
    assert download.status_code == status


def test_unknown_things_are_404(organiser_client, notes, meeting):
    for path in (
        "/meetings/nope/notes",
        "/meetings/nope/notes/edit",
        f"/meetings/{meeting.slug}/notes/revisions/7",
        f"/meetings/{meeting.slug}/notes/revisions/99999999999999999999",
        f"/meetings/{meeting.slug}/notes/attachments/99999999999999999999",
        f"/meetings/{meeting.slug}/notes/attachments/5",
    ):
        assert organiser_client.get(path).status_code == 404, path


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_state_changes_need_the_csrf_token(organiser_client, notes, meeting):
    for path, form in (
        (f"/meetings/{meeting.slug}/notes/edit", {"title": "x", "save": "1"}),
        (f"/meetings/{meeting.slug}/notes/unpublish", {}),
        (f"/meetings/{meeting.slug}/notes/revisions/1/restore", {}),
    ):
        assert organiser_client.post(path, data=form).status_code == 400
    assert current(meeting).is_published and current(meeting).current_revision.number == 1


# Any input at all ----------------------------------------------------------------------------------

ANY_TEXT = st.text(max_size=60) | st.sampled_from(
    [
        "\x00",
        "0",
        "-1",
        "9999-12-31",
        "0001-01-01",
        "2031-02-30",
        "²",
        "١٢",
        "99999999999999999999",
        "%",
        "_",
        "\r\n",
        "a\u2028b",
        "\x7f",
        "<script>alert(1)</script>",
        "[x](javascript:alert(1))",
        "y",
        "on",
        "public",
        "members",
        "done",
        "open",
        "//evil.example",
        "'; DROP TABLE meeting_notes; --",
    ]
)
NOTES_FIELDS = [
    "title",
    "summary",
    "body",
    "visibility",
    "notify_update",
    "actions-0-id",
    "actions-0-text",
    "actions-0-owner",
    "actions-0-due_date",
    "actions-0-done",
    "actions-1-text",
    "actions-29-text",
    "actions-99999999999-text",
]


@given(data=st.data())
def test_any_text_in_any_notes_field_never_gives_a_server_error(organiser_client, organiser, meeting, data):
    if current(meeting) is None:
        write_notes(meeting, organiser)
    values = {"title": "Notes", "summary": "", "body": "Body", "visibility": "public"}
    for name in data.draw(st.lists(st.sampled_from(NOTES_FIELDS), min_size=1, max_size=6, unique=True)):
        values[name] = data.draw(ANY_TEXT)
    button = data.draw(st.sampled_from(["save", "preview", "add_action"]))
    response = organiser_client.post(f"/meetings/{meeting.slug}/notes/edit", data={**values, button: "1"})
    assert response.status_code in (200, 302, 422), values
    if response.status_code == 302:
        assert organiser_client.get(f"/meetings/{meeting.slug}/notes").status_code == 200


@given(
    q=ANY_TEXT,
    year=ANY_TEXT,
    page=ANY_TEXT,
    first=ANY_TEXT,
    second=ANY_TEXT,
    status=ANY_TEXT,
    next_=ANY_TEXT,
    name=ANY_TEXT,
    email=ANY_TEXT,
)
def test_any_text_in_search_compare_actions_uploads_and_publishing_never_gives_a_server_error(
    client, organiser_client, organiser, meeting, q, year, page, first, second, status, next_, name, email
):
    if current(meeting) is None:
        write_notes(meeting, organiser, actions=[notes_service.ActionRow(text="Do it")])
    action_id = db.session.scalar(select(ActionItem.id))
    base = f"/meetings/{meeting.slug}"
    for reader in (client, organiser_client):
        assert reader.get("/notes", query_string={"q": q, "year": year, "page": page}).status_code == 200
    assert organiser_client.get(
        f"{base}/notes/revisions/compare", query_string={"from": first, "to": second}
    ).status_code in (200, 404)
    assert organiser_client.post(f"{base}/actions/{action_id}", data={"status": status, "next": next_}).status_code in (
        302,
        400,
    )
    assert organiser_client.post(
        f"{base}/notes/attachments",
        data={"file": (io.BytesIO(name.encode()), name)},
        content_type="multipart/form-data",
    ).status_code in (302, 413)
    assert organiser_client.post(f"{base}/notes/publish", data={"email": email}).status_code == 302
    assert organiser_client.get(f"/meetings/{quote(q, safe='') or 'x'}/notes").status_code < 500


# Constant queries --------------------------------------------------------------------------------


def _notes_pages(make_meeting, organiser, size: int) -> dict[str, str]:
    """`size` published notes, the first with `size` revisions, actions and files, in a series with a next meeting."""
    from kxn_meetings.models import MeetingSeries

    series = MeetingSeries(name=f"Series {size}", slug=f"series-{size}")
    db.session.add(series)
    db.session.commit()
    first = None
    for n in range(size):
        meeting = make_meeting(
            slug=f"q{size}-{n}",
            series_id=series.id,
            start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=n),
        )
        write_notes(
            meeting,
            organiser,
            title=f"Notes {n}",
            body="## A\n\nx\n\n## B\n\ny\n\n## C\n\nz",
            actions=[
                notes_service.ActionRow(text=f"Action {a}", owner="Someone") for a in range(size if n == 0 else 1)
            ],
        )
        first = first or meeting
    notes = current(first)
    for n in range(size):
        notes_service.save(
            first,
            notes_service.NotesInput(
                title=f"Notes {n}", body=f"## A\n\n{n}", actions=[notes_service.ActionRow(text="Action 0")]
            ),
            organiser,
        )
        db.session.commit()
        notes_service.attach(notes, f"file-{n}.pdf", PDF, organiser)
        db.session.commit()
    following = make_meeting(slug=f"q{size}-next", series_id=series.id, start=dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
    return {
        "archive": "/notes",
        "feed": "/notes/feed.atom",
        "notes": f"/meetings/{first.slug}/notes",
        "edit": f"/meetings/{first.slug}/notes/edit",
        "history": f"/meetings/{first.slug}/notes/revisions",
        "next meeting": f"/meetings/{following.slug}",
        "meeting": f"/meetings/{first.slug}",
    }


def test_notes_pages_run_the_same_number_of_queries_for_few_or_many_rows(
    app, organiser_client, organiser, make_meeting
):
    from .test_query_counts import counting_statements

    counts = {}
    for size in (2, 12):
        pages = _notes_pages(make_meeting, organiser, size)
        for name, path in pages.items():
            db.session.expire_all()
            with counting_statements() as statements:
                assert organiser_client.get(path).status_code == 200, path
            counts.setdefault(name, []).append(len(statements))
    assert all(small == large for small, large in counts.values()), counts


def test_a_feed_entry_without_a_summary_summarises_its_body(client, make_meeting, organiser):
    meeting = past_meeting(make_meeting)
    write_notes(
        meeting,
        organiser,
        title="Notes",
        summary="",
        body="## Speakers\n\nThe hospital can be a **teachable moment** for young adults.",
    )
    feed = feedparser.parse(client.get("/notes/feed.atom").data)
    assert feed.entries[0].summary.startswith("Speakers The hospital can be a teachable moment")


def test_more_actions_than_a_set_of_notes_holds_are_refused_not_cut(organiser_client, meeting):
    """The save refuses them with the number to remove and shows every row again; "Add another action" at the limit
    says why it added none."""
    rows = {f"actions-{i}-text": f"Action {i}" for i in range(31)}
    values = edit_form(organiser_client, meeting, **rows)
    response = organiser_client.post(f"/meetings/{meeting.slug}/notes/edit", data=values)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "One set of notes records at most 30 actions. This form has 31: remove 1 to save it." in page
    assert 'value="Action 30"' in page and current(meeting) is None
    at_limit = {k: v for k, v in values.items() if not k.startswith("actions-30-")}
    page = organiser_client.post(f"/meetings/{meeting.slug}/notes/edit", data={**at_limit, "add_action": "1"}).get_data(
        as_text=True
    )
    assert "One set of notes records at most 30 actions." in page and 'name="actions-30-text"' not in page
