"""The history of the notes: each save that changed the text is a revision; an old one is restored as a new one,
and two are compared line by line."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ...extensions import db
from ...models import MeetingNotes, Member, NoteRevision, utcnow
from ...rendering import render_markdown
from ..locking import lock_meeting
from .common import NotesError


def _add_revision(notes: MeetingNotes, *, title: str, summary: str, body: str, author: Member | None) -> NoteRevision:
    number = (
        db.session.scalar(select(func.max(NoteRevision.number)).where(NoteRevision.notes_id == notes.id)) or 0
    ) + 1
    revision = NoteRevision(
        notes=notes,
        number=number,
        created_at=utcnow(),
        author=author,
        title=title,
        summary=summary,
        body_markdown=body,
        body_html=render_markdown(body),
    )
    db.session.add(revision)
    db.session.flush()
    notes.current_revision = revision
    notes.updated_at = utcnow()
    db.session.flush()
    return revision


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
