"""What the parts of the notes share: the error they raise, finding a meeting's notes, and their table of
contents."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select
from sqlalchemy.orm import selectinload

from ...extensions import db
from ...models import Meeting, MeetingNotes, NoteRevision
from ...rendering import table_of_contents
from ..errors import ServiceError

# A table of contents helps once notes have this many sections.
TOC_MIN_HEADINGS = 3


class NotesError(ServiceError):
    """A request the notes cannot honour; the message says why in plain words."""


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
