"""Shared by the notes tests: a meeting with its agenda and people who answered, notes written the way an
organiser's save would write them, and files of each kind that can be attached."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

from sqlalchemy import select

from kxn_meetings.extensions import db
from kxn_meetings.models import (
    AgendaItem,
    Answer,
    Meeting,
    MeetingNotes,
    MeetingSeries,
    Member,
    Rsvp,
    Visibility,
    WorkshopQuestion,
    WorkshopRoom,
)
from kxn_meetings.services import notes as notes_service

HOSTILE_MARKDOWN = """\
## Hostile inputs

A [safe link](https://example.org/safe) stays a link.

<img src=x onerror=alert(1)>

[click me](javascript:alert(1))

<script>alert(1)</script>

[data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)

<svg onload=alert(1)></svg> <iframe src="javascript:alert(1)"></iframe>

[mixed case](JaVaScRiPt:alert(1)) [entity](&#106;avascript:alert(1)) <a href="javascript:alert(1)">raw link</a>

<p style="background:url(javascript:alert(1))" onclick="alert(1)">styled</p>

![x](x" onerror="alert(1))
"""


def series() -> MeetingSeries:
    found = db.session.scalar(select(MeetingSeries).where(MeetingSeries.slug == "kxn"))
    if found is None:
        found = MeetingSeries(name="Knowledge Exchange Network", slug="kxn")
        db.session.add(found)
        db.session.commit()
    return found


def past_meeting(make_meeting, *, days_ago: int = 10, **values) -> Meeting:
    """A meeting that has happened, in the network's series, with speakers and workshop rooms."""
    start = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0) - dt.timedelta(days=days_ago)
    values.setdefault("title", "Violence Reduction Units")
    values.setdefault("theme", "What VRUs have learned")
    meeting = make_meeting(start=start, series_id=series().id, **values)
    meeting.agenda_items = [
        AgendaItem(position=0, start_time=dt.time(15, 0), title="Welcome"),
        AgendaItem(
            position=1,
            start_time=dt.time(15, 10),
            title="The Sequential Intercept Model",
            speaker_name="Stan Gilmour",
            speaker_role="Director",
            speaker_organisation="Thames Valley VRU",
        ),
        AgendaItem(
            position=2,
            start_time=dt.time(15, 30),
            title="The social determinants of violence",
            speaker_name="Sue Clarke",
            speaker_role="Detective Chief Superintendent",
            speaker_organisation="Lancashire VRU",
        ),
    ]
    meeting.workshop_rooms = [
        WorkshopRoom(
            position=0,
            name="Room 1",
            questions=[
                WorkshopQuestion(position=0, text="What have local VRUs learned about preventing violence?"),
                WorkshopQuestion(position=1, text="How should VRUs use that learning?"),
            ],
        ),
        WorkshopRoom(
            position=1,
            name="Room 2",
            questions=[
                WorkshopQuestion(position=0, text="How can VRUs help with the move into adulthood?"),
            ],
        ),
    ]
    db.session.commit()
    return meeting


def answered(meeting: Meeting, member: Member, answer: Answer, attended: bool | None = None) -> Rsvp:
    rsvp = Rsvp(meeting_id=meeting.id, member_id=member.id, answer=answer, attended=attended)
    db.session.add(rsvp)
    db.session.commit()
    return rsvp


def write_notes(
    meeting: Meeting,
    author: Member | None,
    *,
    title: str = "Notes of the meeting",
    summary: str = "",
    body: str = "## Speakers\n\nThree talks.",
    visibility: Visibility = Visibility.PUBLIC,
    publish: bool = True,
    email: bool = False,
    actions: list[notes_service.ActionRow] | None = None,
) -> MeetingNotes:
    result = notes_service.save(
        meeting,
        notes_service.NotesInput(title=title, summary=summary, body=body, visibility=visibility, actions=actions or []),
        author,
    )
    db.session.commit()
    if publish:
        notes_service.publish(result.notes, email_members=email, not_ready_confirmed=True)
        db.session.commit()
    return result.notes


def office_file(folder: str) -> bytes:
    """The smallest file Word, PowerPoint or Excel would write: a zip with [Content_Types].xml and its folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr(f"{folder}document.xml", "<document/>")
    return buffer.getvalue()


PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20 + b"\xff\xd9"
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
FILES = {
    "slides.pdf": PDF,
    "diagram.png": PNG,
    "photo.jpeg": JPEG,
    "photo.JPG": JPEG,
    "report.docx": office_file("word/"),
    "slides.pptx": office_file("ppt/"),
    "figures.xlsx": office_file("xl/"),
}
