"""Published notes as readers find them: who may read a meeting's notes, the archive with its search, and the
Atom feed."""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from flask import current_app
from markupsafe import escape
from sqlalchemy import ColumnElement, Select, and_, bindparam, extract, func, or_, select

from ... import timefmt
from ...extensions import db
from ...models import Meeting, MeetingNotes, MeetingStatus, NoteRevision, NotesStatus, Visibility
from ...rendering import plain_text_summary
from ...text import without_controls
from ...urls import external_url_builder


def can_read(notes: MeetingNotes | None, *, signed_in: bool, organiser: bool) -> bool:
    """Drafts (and notes of a meeting still in draft) are for organisers; members-only notes need a sign-in."""
    if notes is None or notes.current_revision_id is None:
        return False
    if organiser:
        return True
    if not notes.is_published or notes.meeting.is_draft:
        return False
    return not notes.is_members_only or signed_in


_TERM = re.compile(r'"([^"]*)"|(\S+)')
MAX_TERMS = 8


def search_terms(query: str) -> list[str]:
    """Words, and "quoted phrases", of a search; control characters dropped (PostgreSQL refuses NUL)."""
    cleaned = without_controls((query or "")[:200], invisible=True, replacement=" ")
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


def _readable(*, signed_in: bool) -> tuple[ColumnElement[bool], ...]:
    """Published notes of a meeting past its draft; members-only notes for signed-in readers only."""
    published = (MeetingNotes.status == NotesStatus.PUBLISHED, Meeting.status != MeetingStatus.DRAFT)
    return published if signed_in else (*published, MeetingNotes.visibility == Visibility.PUBLIC)


@dataclass(frozen=True)
class ArchiveEntry:
    """One line of the archive: what the list shows of a meeting's notes, read as columns rather than as the notes,
    meeting and revision objects with their bodies, which cost more to load than the page costs to render."""

    slug: str
    title: str
    summary: str
    starts_at: dt.datetime
    timezone: str
    visibility: Visibility

    @property
    def local_start(self) -> dt.datetime:
        return self.starts_at.astimezone(ZoneInfo(self.timezone))

    @property
    def is_members_only(self) -> bool:
        return self.visibility == Visibility.MEMBERS


def archive_query(*, signed_in: bool, text: str = "", year: int | None = None) -> Select:
    """The archive's rows, each the columns of an `ArchiveEntry`, newest meeting first."""
    query = (
        select(
            Meeting.slug,
            NoteRevision.title,
            NoteRevision.summary,
            Meeting.starts_at,
            Meeting.timezone,
            MeetingNotes.visibility,
        )
        .join(MeetingNotes.meeting)
        .join(MeetingNotes.current_revision)
        .where(*_readable(signed_in=signed_in))
    )
    for term in search_terms(text):
        query = query.where(_matches(term))
    if year is not None:
        start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
        query = query.where(and_(Meeting.starts_at >= start, Meeting.starts_at < start.replace(year=year + 1)))
    return query.order_by(Meeting.starts_at.desc(), MeetingNotes.id.desc())


def archive_years(*, signed_in: bool) -> list[int]:
    """The years (UTC) with published notes, newest first: one row a year, counted in the database."""
    year = extract("year", Meeting.starts_at)
    years = db.session.scalars(
        select(year)
        .join(MeetingNotes, MeetingNotes.meeting_id == Meeting.id)
        .where(*_readable(signed_in=signed_in))
        .group_by(year)
    )
    return sorted({int(y) for y in years}, reverse=True)


ATOM = "http://www.w3.org/2005/Atom"
# The newest entries only: readers poll the feed, and its cost stays the same however many notes there are.
FEED_SIZE = 20
_SLUG_MARK = "kxn-slug-mark"


def _tag_uri(host: str, created: dt.datetime, specific: str) -> str:
    """A tag: URI (RFC 4151) that stays the same however the notes change."""
    return f"tag:{host},{created.astimezone(dt.UTC):%Y-%m-%d}:{specific}"


def _element(name: str, text: str) -> str:
    return f"<{name}>{escape(text)}</{name}>"


def _link(rel: str, type: str, href: str) -> str:
    return f'<link rel="{rel}" type="{type}" href="{escape(href)}" />'


@functools.cache
def _feed_statement() -> Select:
    """Built once per process: columns, not objects, since loading the notes, meeting and revision objects cost
    more than writing the entries."""
    return (
        select(
            MeetingNotes.id,
            MeetingNotes.created_at,
            MeetingNotes.published_at,
            Meeting.slug,
            Meeting.starts_at,
            Meeting.timezone,
            NoteRevision.title,
            NoteRevision.summary,
            NoteRevision.body_markdown,
            NoteRevision.body_html,
            NoteRevision.created_at.label("revised_at"),
        )
        .join(MeetingNotes.meeting)
        .join(MeetingNotes.current_revision)
        .where(*_readable(signed_in=False))
        .order_by(Meeting.starts_at.desc())
        .limit(bindparam("feed_size"))
    )


def atom_feed() -> bytes:
    """Atom 1.0 of the public published notes, newest meeting first. Written as text: the entries are a handful
    of escaped strings, and an element tree cost more than the query."""
    entries = db.session.execute(_feed_statement(), {"feed_size": FEED_SIZE}).all()
    network = current_app.config["NETWORK_NAME"]
    host = urlsplit(current_app.config["BASE_URL"]).hostname or "localhost"
    url_for = external_url_builder()
    updated_times = [max(t for t in (row.revised_at, row.published_at) if t is not None) for row in entries]
    parts = [
        f'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="{ATOM}">',
        _element("id", _tag_uri(host, dt.datetime(2020, 1, 1, tzinfo=dt.UTC), "notes")),
        _element("title", f"{network}: meeting notes"),
        _element("subtitle", f"The published notes of the {network}'s meetings."),
        _element(
            "updated", timefmt.iso(max(updated_times) if updated_times else dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        ),
        _link("self", "application/atom+xml", url_for("notes.feed")),
        _link("alternate", "text/html", url_for("notes.archive")),
        f"<author>{_element('name', network)}</author>",
    ]
    # The URL map is asked once for the notes address and each entry puts in its slug.
    notes_url = url_for("notes.show", ref=_SLUG_MARK)
    for row, updated in zip(entries, updated_times, strict=True):
        url = notes_url.replace(_SLUG_MARK, quote(row.slug, safe=""))
        local_start = row.starts_at.astimezone(ZoneInfo(row.timezone))
        summary = row.summary or plain_text_summary(row.body_markdown) or timefmt.day(local_start)
        parts += [
            f'<entry xml:base="{escape(url)}">',
            _element("id", _tag_uri(host, row.created_at, f"notes-{row.id}")),
            _element("title", row.title),
            _element("updated", timefmt.iso(updated)),
            _element("published", timefmt.iso(row.published_at or updated)),
            _link("alternate", "text/html", url),
            _element("summary", summary),
            f'<content type="html">{escape(row.body_html)}</content>',
            "</entry>",
        ]
    parts.append("</feed>")
    return "".join(parts).encode()
