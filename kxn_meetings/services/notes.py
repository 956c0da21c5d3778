"""The record of a meeting: notes written in Markdown, kept revision by revision, published and announced once;
the actions agreed, carried to the next meeting until done; the files kept with the notes.

Every function adds and flushes; the caller commits.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import io
import os
import re
import secrets
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

from flask import current_app
from sqlalchemy import Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import contains_eager, selectinload

from .. import timefmt
from ..extensions import db
from ..models import (
    ActionItem,
    ActionStatus,
    Answer,
    Meeting,
    MeetingNotes,
    MeetingStatus,
    Member,
    NoteAttachment,
    NoteRevision,
    NotesStatus,
    Rsvp,
    Visibility,
    utcnow,
)
from ..rendering import plain_text_summary, render_markdown, table_of_contents
from ..urls import external_url
from .errors import ServiceError
from .locking import lock_meeting
from .outbox import queue_email

MAX_ACTIONS = 30
# A table of contents helps once notes have this many sections.
TOC_MIN_HEADINGS = 3


class NotesError(ServiceError):
    """A request the notes cannot honour; the message says why in plain words."""


# Reading -------------------------------------------------------------------------------------------


@functools.cache
def _notes_statement():
    """Built once per process: every meeting page asks, and building the statement cost more than running it."""
    return (
        select(MeetingNotes)
        .where(MeetingNotes.meeting_id == bindparam("meeting_id"))
        .options(selectinload(MeetingNotes.current_revision).selectinload(NoteRevision.author))
    )


def notes_for(meeting: Meeting) -> MeetingNotes | None:
    return db.session.scalar(_notes_statement(), {"meeting_id": meeting.id})


def can_read(notes: MeetingNotes | None, *, signed_in: bool, organiser: bool) -> bool:
    """Drafts (and notes of a meeting still in draft) are for organisers; members-only notes need a sign-in."""
    if notes is None or notes.current_revision_id is None:
        return False
    if organiser:
        return True
    if not notes.is_published or notes.meeting.status == MeetingStatus.DRAFT:
        return False
    return notes.visibility == Visibility.PUBLIC or signed_in


@dataclass
class Section:
    anchor: str
    text: str
    subsections: list[Section] = field(default_factory=list)


def contents(body_html: str | None) -> list[Section]:
    """The table of contents (sections with their subsections), when the notes are long enough to need one."""
    headings = table_of_contents(body_html or "")
    if len(headings) < TOC_MIN_HEADINGS:
        return []
    sections: list[Section] = []
    for level, anchor, text in headings:
        if level == 3 and sections:
            sections[-1].subsections.append(Section(anchor, text))
        else:
            sections.append(Section(anchor, text))
    return sections


def actions_of(meeting: Meeting) -> list[ActionItem]:
    return list(
        db.session.scalars(select(ActionItem).where(ActionItem.meeting_id == meeting.id).order_by(ActionItem.id))
    )


def attachments_of(notes: MeetingNotes | None) -> list[NoteAttachment]:
    if notes is None:
        return []
    return list(
        db.session.scalars(
            select(NoteAttachment)
            .where(NoteAttachment.notes_id == notes.id)
            .order_by(NoteAttachment.created_at, NoteAttachment.id)
        )
    )


def _in_series(meeting: Meeting) -> Select:
    return select(Meeting).where(
        Meeting.series_id == meeting.series_id, Meeting.id != meeting.id, Meeting.status != MeetingStatus.DRAFT
    )


def previous_meeting(meeting: Meeting) -> Meeting | None:
    if meeting.series_id is None:
        return None
    return db.session.scalar(
        _in_series(meeting).where(Meeting.starts_at < meeting.starts_at).order_by(Meeting.starts_at.desc()).limit(1)
    )


def next_meeting(meeting: Meeting) -> Meeting | None:
    """The next scheduled (not cancelled) meeting of the same series."""
    if meeting.series_id is None:
        return None
    return db.session.scalar(
        _in_series(meeting)
        .where(Meeting.starts_at > meeting.starts_at, Meeting.status == MeetingStatus.SCHEDULED)
        .order_by(Meeting.starts_at)
        .limit(1)
    )


@dataclass
class CarriedActions:
    """Open actions agreed at the previous meeting of the series, shown at the next one until done."""

    meeting: Meeting
    notes: MeetingNotes | None
    actions: list[ActionItem]


def carried_actions(meeting: Meeting) -> CarriedActions | None:
    previous = previous_meeting(meeting)
    if previous is None:
        return None
    actions = [a for a in actions_of(previous) if a.status == ActionStatus.OPEN]
    if not actions:
        return None
    notes = db.session.scalar(select(MeetingNotes).where(MeetingNotes.meeting_id == previous.id))
    return CarriedActions(meeting=previous, notes=notes, actions=actions)


def set_action_status(action: ActionItem, status: ActionStatus) -> bool:
    """Mark an action done or open again; False when it already was."""
    if action.status == status:
        return False
    action.status = status
    db.session.flush()
    return True


# Starting from the meeting ----------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+|!~&])")


def md(text: str) -> str:
    """Text from the agenda as literal Markdown: no accidental emphasis, links, entities, lists or headings."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join((text or "").split()))
    escaped = re.sub(r"^(\d+)([.)])", r"\1\\\2", escaped)
    return "\\" + escaped if escaped.startswith(("-", "=")) else escaped


def outline(meeting: Meeting) -> tuple[str, str, str]:
    """(title, summary, Markdown body) pre-filled from the agenda, to be written up after the meeting."""
    parts: list[str] = []
    when = timefmt.when(meeting.starts_at, meeting.ends_at, meeting.timezone)
    theme = f", on {md(meeting.theme)}" if meeting.theme else ""
    parts.append(
        f"The network met on {when}{theme}. _Open with two or three sentences on what the meeting was "
        "about and why it mattered._"
    )

    talks = [item for item in meeting.agenda_items if item.speaker_name]
    parts.append("## Speakers")
    if talks:
        for item in talks:
            who = ", ".join(md(x) for x in (item.speaker_role, item.speaker_organisation) if x)
            parts.append(
                f"### {md(item.title or item.speaker_name)}\n\n**{md(item.speaker_name)}**"
                f"{', ' + who if who else ''}.\n\n_What the speaker presented, and the points members "
                "took away._"
            )
    else:
        parts.append("_Who spoke, their role and organisation, and what they talked about._")

    questions = [(room.name, question.text) for room in meeting.workshop_rooms for question in room.questions]
    if questions:
        parts.append(
            "## Workshop questions\n\nAfter the talks, members split into workshop rooms to discuss:\n\n"
            + "\n".join(f"{n}. {md(text)}" for n, (_room, text) in enumerate(questions, start=1))
        )
        for room_name, text in questions:
            parts.append(f"### {md(text)}\n\n_{md(room_name)}: what the room discussed._")

    parts.append("## Lessons learned\n\n_What members have learned, with **key points** in bold._")
    parts.append("## Emerging practice\n\n- **Organisation**: _what it is doing, and what others can learn from it._")

    actions = "## Actions\n\n"
    carried = carried_actions(meeting)
    if carried is not None:
        previous = carried.meeting
        actions += (
            f"Still open from the previous meeting ({md(previous.title)}, {timefmt.day(previous.local_start)}):\n\n"
        )
        for action in carried.actions:
            extra = [f"owner: {md(action.owner)}"] if action.owner else []
            if action.due_date:
                extra.append(f"due {timefmt.day(action.due_date)}")
            actions += f"- {md(action.text)}{' (' + '; '.join(extra) + ')' if extra else ''}\n"
        actions += "\n"
    parts.append(
        actions + "The actions agreed at this meeting are listed with the notes, with their owners and due dates."
    )

    upcoming = next_meeting(meeting)
    if upcoming is not None:
        link = external_url("meetings.show", ref=upcoming.slug)
        parts.append(
            f"## Next meeting\n\n**{timefmt.when(upcoming.starts_at, upcoming.ends_at, upcoming.timezone)}**"
            f": [{md(upcoming.title)}]({link})."
        )
    else:
        parts.append("## Next meeting\n\n_The date of the next meeting, and what it will discuss._")

    title = meeting.title[:300]
    return title, meeting.theme, "\n\n".join(parts) + "\n"


# Writing ------------------------------------------------------------------------------------------


@dataclass
class ActionRow:
    text: str
    owner: str = ""
    due_date: dt.date | None = None
    done: bool = False
    id: int | None = None


@dataclass
class NotesInput:
    title: str
    summary: str = ""
    body: str = ""
    visibility: Visibility = Visibility.PUBLIC
    actions: list[ActionRow] = field(default_factory=list)


@dataclass
class SaveResult:
    notes: MeetingNotes
    revision: NoteRevision
    new_revision: bool


def _add_revision(notes: MeetingNotes, *, title: str, summary: str, body: str, author: Member | None) -> NoteRevision:
    number = (
        db.session.scalar(select(func.max(NoteRevision.number)).where(NoteRevision.notes_id == notes.id)) or 0
    ) + 1
    revision = NoteRevision(
        notes=notes,
        number=number,
        title=title,
        summary=summary,
        body_markdown=body,
        body_html=render_markdown(body),
        author=author,
        created_at=utcnow(),
    )
    db.session.add(revision)
    db.session.flush()
    notes.current_revision = revision
    notes.updated_at = utcnow()
    db.session.flush()
    return revision


def save(meeting: Meeting, data: NotesInput, author: Member | None) -> SaveResult:
    """Save what the organiser wrote: a new revision when the text changed, the visibility, and the actions.

    Takes the meeting's write lock first, so two organisers saving at once get consecutive revision numbers.
    """
    title = " ".join(data.title.split())
    if not title:
        raise NotesError("Enter a title.", field="title")
    if len(data.actions) > MAX_ACTIONS:
        raise NotesError(f"Record at most {MAX_ACTIONS} actions with one set of notes.", field="title")
    meeting = lock_meeting(meeting.id)
    notes = notes_for(meeting)
    if notes is None:
        notes = MeetingNotes(meeting=meeting, status=NotesStatus.DRAFT, visibility=data.visibility)
        db.session.add(notes)
        db.session.flush()
    notes.visibility = data.visibility
    current = notes.current_revision
    summary, body = data.summary.strip(), data.body.rstrip()
    if current is not None and (current.title, current.summary, current.body_markdown) == (title, summary, body):
        revision, created = current, False
    else:
        revision, created = _add_revision(notes, title=title, summary=summary, body=body, author=author), True
    _save_actions(meeting, data.actions)
    return SaveResult(notes=notes, revision=revision, new_revision=created)


def _save_actions(meeting: Meeting, rows: list[ActionRow]) -> None:
    """Make the meeting's actions match the rows: ids name existing actions of this meeting only."""
    existing = {a.id: a for a in actions_of(meeting)}
    kept: set[int] = set()
    for row in rows:
        action = existing.get(row.id) if row.id is not None else None
        if action is None or action.id in kept:
            action = ActionItem(meeting_id=meeting.id)
            db.session.add(action)
        else:
            kept.add(action.id)
        action.text = row.text.strip()
        action.owner = row.owner.strip()
        action.due_date = row.due_date
        action.status = ActionStatus.DONE if row.done else ActionStatus.OPEN
    for action_id, action in existing.items():
        if action_id not in kept:
            db.session.delete(action)
    db.session.flush()


def restore(notes: MeetingNotes, number: int, author: Member | None) -> NoteRevision:
    """Make an old revision current again, as a new revision: history is never rewritten."""
    lock_meeting(notes.meeting_id)
    old = revision_by_number(notes, number)
    if old is None:
        raise NotesError("There is no such revision.")
    return _add_revision(notes, title=old.title, summary=old.summary, body=old.body_markdown, author=author)


def revision_by_number(notes: MeetingNotes, number: int) -> NoteRevision | None:
    return db.session.scalar(
        select(NoteRevision).where(NoteRevision.notes_id == notes.id, NoteRevision.number == number)
    )


def revisions(notes: MeetingNotes) -> list[NoteRevision]:
    return list(
        db.session.scalars(
            select(NoteRevision)
            .where(NoteRevision.notes_id == notes.id)
            .options(selectinload(NoteRevision.author))
            .order_by(NoteRevision.number.desc())
        )
    )


@dataclass
class DiffLine:
    kind: str  # "added", "removed", "same" or "gap"
    text: str


@dataclass
class FieldDiff:
    label: str
    lines: list[DiffLine]

    @property
    def changed(self) -> bool:
        return any(line.kind in ("added", "removed") for line in self.lines)


def _diff_lines(old: str, new: str, context: int = 2) -> list[DiffLine]:
    lines: list[DiffLine] = []
    for group in difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False).get_grouped_opcodes(
        context
    ):
        if lines:
            lines.append(DiffLine("gap", ""))
        a, b = old.splitlines(), new.splitlines()
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines.extend(DiffLine("same", text) for text in a[i1:i2])
                continue
            lines.extend(DiffLine("removed", text) for text in a[i1:i2])
            lines.extend(DiffLine("added", text) for text in b[j1:j2])
    return lines


def diff(old: NoteRevision, new: NoteRevision) -> list[FieldDiff]:
    """Line by line changes of each part of the notes. Plain strings: the page escapes them."""
    return [
        FieldDiff("Title", _diff_lines(old.title, new.title)),
        FieldDiff("Summary", _diff_lines(old.summary, new.summary)),
        FieldDiff("Notes", _diff_lines(old.body_markdown, new.body_markdown)),
    ]


# Publishing -------------------------------------------------------------------------------------------


def recipients(meeting: Meeting) -> list[Member]:
    """Everyone who went (attended, or answered Going) or sent apologies, once each, active members only."""
    return list(
        db.session.scalars(
            select(Member)
            .join(Rsvp, Rsvp.member_id == Member.id)
            .where(
                Rsvp.meeting_id == meeting.id,
                Member.active.is_(True),
                or_(Rsvp.attended.is_(True), Rsvp.answer.in_([Answer.GOING, Answer.DECLINED])),
            )
            .order_by(Member.name, Member.id)
        )
    )


def publish(notes: MeetingNotes, *, email_members: bool) -> int:
    """Publish the notes; the first time with email_members, queue one email per recipient. Returns emails queued."""
    meeting = lock_meeting(notes.meeting_id)
    if notes.current_revision is None:
        raise NotesError("Save the notes before publishing them.")
    if meeting.status == MeetingStatus.DRAFT:
        raise NotesError("Publish the meeting before its notes.")
    if notes.is_published:
        raise NotesError("These notes are already published.")
    notes.status = NotesStatus.PUBLISHED
    if notes.published_at is None:
        notes.published_at = utcnow()
    db.session.flush()
    if not email_members or notes.notified_at is not None:
        return 0
    queued = _announce(notes, kind="notes_published", key_suffix="")
    if queued:
        notes.notified_at = utcnow()
        db.session.flush()
    return queued


def announce_update(notes: MeetingNotes) -> int:
    """Email the recipients that the published notes have changed: once per revision at most."""
    if not notes.is_published or notes.current_revision is None:
        raise NotesError("Only published notes can be announced.")
    return _announce(notes, kind="notes_updated", key_suffix=f":r{notes.current_revision.number}")


def _announce(notes: MeetingNotes, *, kind: str, key_suffix: str) -> int:
    meeting, revision = notes.meeting, notes.current_revision
    assert revision is not None
    context = {
        "kind": kind,
        "meeting": meeting,
        "revision": revision,
        "notes": notes,
        "notes_url": external_url("notes.show", ref=meeting.slug),
        "members_only": notes.visibility == Visibility.MEMBERS,
        "meeting_day": timefmt.day(meeting.local_start),
    }
    title = "".join(c for c in revision.title if unicodedata.category(c) not in ("Cc", "Zl", "Zp"))
    subject = f"{'Updated notes' if kind == 'notes_updated' else 'Notes'}: {title}"
    queued = 0
    for member in recipients(meeting):
        row = queue_email(
            kind=kind,
            to=member,
            subject=subject,
            template="notes_published",
            context=context,
            dedup_key=f"notes:{notes.id}:{member.id}:notes_published{key_suffix}",
            meeting_id=meeting.id,
        )
        queued += row is not None
    return queued


def unpublish(notes: MeetingNotes) -> None:
    lock_meeting(notes.meeting_id)
    if not notes.is_published:
        raise NotesError("These notes are not published.")
    notes.status = NotesStatus.DRAFT
    db.session.flush()


# The archive, search and the feed --------------------------------------------------------------------

_TERM = re.compile(r'"([^"]*)"|(\S+)')
MAX_TERMS = 8


def search_terms(query: str) -> list[str]:
    """Words, and "quoted phrases", of a search; control characters dropped (PostgreSQL refuses NUL)."""
    cleaned = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in (query or "")[:200])
    terms = [" ".join((phrase or word).split()) for phrase, word in _TERM.findall(cleaned)]
    return [t for t in terms if t][:MAX_TERMS]


def _matches(term: str):
    """Case-insensitive substring match on SQLite and PostgreSQL alike; % and _ in the term are literal.

    SQLite's lower() folds ASCII only, so the term as typed is tried as well.
    """
    columns = (NoteRevision.title, NoteRevision.summary, NoteRevision.body_markdown)
    checks = [func.lower(column).contains(term.lower(), autoescape=True) for column in columns]
    if term.lower() != term:
        checks += [column.contains(term, autoescape=True) for column in columns]
    return or_(*checks)


def published_query(*, signed_in: bool, public_only: bool = False) -> Select:
    """Published notes a reader may see, with their meeting and current revision loaded."""
    query = (
        select(MeetingNotes)
        .join(MeetingNotes.meeting)
        .join(MeetingNotes.current_revision)
        .where(MeetingNotes.status == NotesStatus.PUBLISHED, Meeting.status != MeetingStatus.DRAFT)
        .options(contains_eager(MeetingNotes.meeting), contains_eager(MeetingNotes.current_revision))
    )
    if public_only or not signed_in:
        query = query.where(MeetingNotes.visibility == Visibility.PUBLIC)
    return query


def archive_query(*, signed_in: bool, text: str = "", year: int | None = None) -> Select:
    query = published_query(signed_in=signed_in)
    for term in search_terms(text):
        query = query.where(_matches(term))
    if year is not None:
        start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
        query = query.where(and_(Meeting.starts_at >= start, Meeting.starts_at < start.replace(year=year + 1)))
    return query.order_by(Meeting.starts_at.desc(), MeetingNotes.id.desc())


def archive_years(*, signed_in: bool) -> list[int]:
    starts = db.session.scalars(
        select(Meeting.starts_at)
        .join(MeetingNotes, MeetingNotes.meeting_id == Meeting.id)
        .where(
            MeetingNotes.status == NotesStatus.PUBLISHED,
            Meeting.status != MeetingStatus.DRAFT,
            *(() if signed_in else (MeetingNotes.visibility == Visibility.PUBLIC,)),
        )
    )
    return sorted({s.year for s in starts}, reverse=True)


def drafts() -> list[MeetingNotes]:
    return list(
        db.session.scalars(
            select(MeetingNotes)
            .join(MeetingNotes.meeting)
            .join(MeetingNotes.current_revision)
            .where(MeetingNotes.status == NotesStatus.DRAFT)
            .options(contains_eager(MeetingNotes.meeting), contains_eager(MeetingNotes.current_revision))
            .order_by(Meeting.starts_at.desc())
            .limit(50)
        )
    )


ATOM = "http://www.w3.org/2005/Atom"
FEED_SIZE = 50


def _tag_uri(created: dt.datetime, specific: str) -> str:
    """A tag: URI (RFC 4151) that stays the same however the notes change."""
    host = urlsplit(current_app.config["BASE_URL"]).hostname or "localhost"
    return f"tag:{host},{created.astimezone(dt.UTC):%Y-%m-%d}:{specific}"


def atom_feed() -> bytes:
    """Atom 1.0 of the public published notes, newest meeting first."""
    entries = (
        db.session.scalars(
            published_query(signed_in=False, public_only=True).order_by(Meeting.starts_at.desc()).limit(FEED_SIZE)
        )
        .unique()
        .all()
    )
    ElementTree.register_namespace("", ATOM)

    def add(parent: ElementTree.Element, name: str, text: str | None = None, **attrs: str) -> ElementTree.Element:
        element = ElementTree.SubElement(parent, f"{{{ATOM}}}{name}", attrs)
        if text is not None:
            element.text = text
        return element

    network = current_app.config["NETWORK_NAME"]
    feed = ElementTree.Element(f"{{{ATOM}}}feed")
    add(feed, "id", _tag_uri(dt.datetime(2020, 1, 1, tzinfo=dt.UTC), "notes"))
    add(feed, "title", f"{network}: meeting notes")
    add(feed, "subtitle", f"The published notes of the {network}'s meetings.")
    updated_times = [_entry_updated(notes) for notes in entries]
    add(feed, "updated", timefmt.iso(max(updated_times) if updated_times else dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
    add(feed, "link", rel="self", type="application/atom+xml", href=external_url("notes.feed"))
    add(feed, "link", rel="alternate", type="text/html", href=external_url("notes.archive"))
    author = add(feed, "author")
    add(author, "name", network)
    for notes, updated in zip(entries, updated_times, strict=True):
        revision, meeting = notes.current_revision, notes.meeting
        assert revision is not None
        url = external_url("notes.show", ref=meeting.slug)
        entry = add(feed, "entry")
        entry.set("{http://www.w3.org/XML/1998/namespace}base", url)
        add(entry, "id", _tag_uri(notes.created_at, f"notes-{notes.id}"))
        add(entry, "title", revision.title)
        add(entry, "updated", timefmt.iso(updated))
        add(entry, "published", timefmt.iso(notes.published_at or updated))
        add(entry, "link", rel="alternate", type="text/html", href=url)
        add(
            entry,
            "summary",
            revision.summary or plain_text_summary(revision.body_markdown) or timefmt.day(meeting.local_start),
        )
        add(entry, "content", revision.body_html, type="html")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(
        feed, encoding="utf-8", xml_declaration=False
    )


def _entry_updated(notes: MeetingNotes) -> dt.datetime:
    revision = notes.current_revision
    assert revision is not None
    return max(t for t in (revision.created_at, notes.published_at) if t is not None)


# Attachments ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileKind:
    label: str
    content_type: str
    extensions: tuple[str, ...]


PDF = FileKind("a PDF", "application/pdf", ("pdf",))
PNG = FileKind("a PNG image", "image/png", ("png",))
JPEG = FileKind("a JPEG image", "image/jpeg", ("jpg", "jpeg"))
DOCX = FileKind("a Word document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ("docx",))
PPTX = FileKind(
    "a PowerPoint presentation", "application/vnd.openxmlformats-officedocument.presentationml.presentation", ("pptx",)
)
XLSX = FileKind("an Excel workbook", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ("xlsx",))
FILE_KINDS = (PDF, PNG, JPEG, DOCX, PPTX, XLSX)
BY_EXTENSION = {ext: kind for kind in FILE_KINDS for ext in kind.extensions}
ALLOWED_EXTENSIONS = ", ".join(f".{ext}" for ext in BY_EXTENSION)
# The folder inside an Office file that says which application made it.
OFFICE_FOLDERS = {"word/": DOCX, "ppt/": PPTX, "xl/": XLSX}


class UploadRefused(ServiceError):
    """The file cannot be kept; the message tells the organiser what to do."""


class UploadTooLarge(UploadRefused):
    pass


def sniff(data: bytes) -> FileKind | None:
    """What the bytes are, judged by their content alone."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
            return None
        if "[Content_Types].xml" not in names:
            return None
        found = {kind for folder, kind in OFFICE_FOLDERS.items() if any(n.startswith(folder) for n in names)}
        return found.pop() if len(found) == 1 else None
    return None


def clean_filename(filename: str) -> str:
    """The name people see: no folders, no control characters, at most 200 characters, the extension kept."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in unicodedata.normalize("NFC", name) if unicodedata.category(c)[0] != "C").strip(" .")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = f"{stem[:190]}.{ext[:9]}" if dot and len(ext) <= 9 else name[:200]
    return name


def check_upload(filename: str, data: bytes) -> tuple[str, FileKind]:
    """The cleaned name and the kind of file, or UploadRefused saying why not."""
    name = clean_filename(filename)
    if not name:
        raise UploadRefused("Choose a file to upload.")
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    claimed = BY_EXTENSION.get(extension)
    if claimed is None:
        raise UploadRefused(f"“{name}” cannot be attached: only {ALLOWED_EXTENSIONS} files can be.")
    if not data:
        raise UploadRefused(f"“{name}” is empty.")
    limit_mb = current_app.config["NOTES_MAX_UPLOAD_MB"]
    if len(data) > limit_mb * 1024 * 1024:
        raise UploadTooLarge(f"“{name}” is larger than the {limit_mb} MB limit for attachments.")
    actual = sniff(data)
    if actual is None:
        raise UploadRefused(
            f"“{name}” is called .{extension} but its content is not {claimed.label}. "
            f"Only real {ALLOWED_EXTENSIONS} files can be attached."
        )
    if actual != claimed:
        raise UploadRefused(
            f"“{name}” is called .{extension} but its content is {actual.label}. "
            f"Rename it to .{actual.extensions[0]} if that is right, then upload it again."
        )
    return name, actual


def upload_dir() -> Path:
    return Path(current_app.config["NOTES_UPLOAD_DIR"])


def attachment_path(attachment: NoteAttachment) -> Path:
    return upload_dir() / attachment.stored_name


def attach(notes: MeetingNotes, filename: str, data: bytes, uploader: Member | None) -> NoteAttachment:
    """Check and store a file under a random name, and list it with the notes.

    The file is written before the row; if the transaction is rolled back the caller removes it.
    """
    name, kind = check_upload(filename, data)
    folder = upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stored = secrets.token_hex(20)
    partial = folder / f".{stored}.part"
    partial.write_bytes(data)
    os.replace(partial, folder / stored)
    attachment = NoteAttachment(
        notes_id=notes.id,
        filename=name,
        stored_name=stored,
        content_type=kind.content_type,
        size=len(data),
        uploaded_by_id=uploader.id if uploader else None,
        created_at=utcnow(),
    )
    db.session.add(attachment)
    db.session.flush()
    return attachment


def remove_attachment(attachment: NoteAttachment) -> Path:
    """Delete the row; returns the file to delete once the transaction is committed."""
    path = attachment_path(attachment)
    db.session.delete(attachment)
    db.session.flush()
    return path


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"
