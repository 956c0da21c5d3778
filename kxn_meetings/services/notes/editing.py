"""Writing the notes: the outline a draft starts from, saving what the organiser wrote (a new revision when the
text changed, and the actions), and the drafts still being written."""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import contains_eager

from ... import timefmt
from ...extensions import db
from ...models import ActionItem, ActionStatus, Meeting, MeetingNotes, Member, NoteRevision, NotesStatus, Visibility
from ...urls import external_url
from ..locking import lock_meeting
from ..rooms.answers import answers_by_question, take_in
from .actions import actions_of, carried_actions, next_meeting
from .common import NotesError, notes_for
from .revisions import _add_revision

MAX_ACTIONS = 30
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+|!~&])")


def md(text: str) -> str:
    """Text from the agenda as literal Markdown: no accidental emphasis, links, entities, lists or headings."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join((text or "").split()))
    escaped = re.sub(r"^(\d+)([.)])", r"\1\\\2", escaped)
    return "\\" + escaped if escaped.startswith(("-", "=")) else escaped


class Prompt(enum.StrEnum):
    """The outline's prompts: written in italics where the organiser is to write, and looked for before publishing."""

    OPENING = "Open with two or three sentences on what the meeting was about and why it mattered."
    TALK = "What the speaker presented, and the points members took away."
    SPEAKERS = "Who spoke, their role and organisation, and what they talked about."
    ROOM = "what the room discussed."
    LESSONS = "What members have learned, with **key points** in bold."
    PRACTICE = "what it is doing, and what others can learn from it."
    NEXT_MEETING = "The date of the next meeting, and what it will discuss."


def prompts_left(markdown: str) -> list[Prompt]:
    """The outline's prompts still in `markdown`, once per time each is left."""
    return [prompt for prompt in Prompt for _ in range(markdown.count(f"{prompt}_"))]


def outline(meeting: Meeting) -> tuple[str, str, str]:
    """(title, summary, Markdown body) pre-filled from the agenda, to be written up after the meeting."""
    parts: list[str] = []
    when = timefmt.when(meeting.starts_at, meeting.ends_at, meeting.timezone)
    theme = f", on {md(meeting.theme)}" if meeting.theme else ""
    parts.append(f"The network met on {when}{theme}. _{Prompt.OPENING}_")

    talks = [item for item in meeting.agenda_items if item.speaker_name]
    parts.append("## Speakers")
    if talks:
        for item in talks:
            who = ", ".join(md(x) for x in (item.speaker_role, item.speaker_organisation) if x)
            parts.append(
                f"### {md(item.title or item.speaker_name)}\n\n**{md(item.speaker_name)}**"
                f"{', ' + who if who else ''}.\n\n_{Prompt.TALK}_"
            )
    else:
        parts.append(f"_{Prompt.SPEAKERS}_")

    # A question asked in several rooms is one section, with what each room wrote under it.
    questions = answers_by_question(meeting)
    if questions:
        parts.append(
            "## Workshop questions\n\nAfter the talks, members split into workshop rooms to discuss:\n\n"
            + "\n".join(f"{n}. {md(question.text)}" for n, question in enumerate(questions, start=1))
        )
        for question in questions:
            rooms = [
                f"**{md(room.room_name)}**: {room.text}" if room.text else f"_{md(room.room_name)}: {Prompt.ROOM}_"
                for room in question.rooms
            ]
            parts.append(f"### {md(question.text)}\n\n" + "\n\n".join(rooms))

    parts.append(f"## Lessons learned\n\n_{Prompt.LESSONS}_")
    parts.append(f"## Emerging practice\n\n- **Organisation**: _{Prompt.PRACTICE}_")

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
        parts.append(f"## Next meeting\n\n_{Prompt.NEXT_MEETING}_")

    title = meeting.title[:300]
    return title, meeting.theme, "\n\n".join(parts) + "\n"


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
        # The first draft starts from the outline, which holds what the rooms wrote so far: later edits by a scribe
        # are the changes the organiser is shown to take in.
        take_in(meeting)
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
