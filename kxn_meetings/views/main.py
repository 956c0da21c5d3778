"""The public front: upcoming meetings, the latest past ones, and every past meeting a page at a time."""

from __future__ import annotations

from collections.abc import Sequence

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import Select, select

from ..extensions import db
from ..models import Meeting, MeetingNotes, MeetingStatus, NotesStatus, Rsvp, utcnow
from ..security import is_organiser
from ..services import rsvps as rsvp_service
from .paging import paginate
from .public_pages import same_for_every_visitor

bp = Blueprint("main", __name__)

# Home shows this many past meetings, newest first; the rest are on the past meetings pages, so home costs the same
# however long the network has been meeting.
LATEST_PAST = 5
UPCOMING_AT_MOST = 20
PAST_PER_PAGE = 25


def _past_meetings() -> Select:
    return (
        select(Meeting)
        .where(Meeting.status == MeetingStatus.SCHEDULED, Meeting.ends_at < utcnow())
        .order_by(Meeting.starts_at.desc(), Meeting.id.desc())
    )


@bp.route("/")
@same_for_every_visitor
def home():
    upcoming = db.session.scalars(
        select(Meeting)
        .where(Meeting.status != MeetingStatus.DRAFT, Meeting.ends_at >= utcnow())
        .order_by(Meeting.starts_at)
        .limit(UPCOMING_AT_MOST)
    ).all()
    past = db.session.scalars(_past_meetings().limit(LATEST_PAST + 1)).all()
    organiser = is_organiser()
    drafts: Sequence[Meeting] = []
    if organiser:
        drafts = db.session.scalars(
            select(Meeting).where(Meeting.status == MeetingStatus.DRAFT).order_by(Meeting.starts_at)
        ).all()
    return render_template(
        "main/home.html",
        upcoming=upcoming,
        past=past[:LATEST_PAST],
        more_past=len(past) > LATEST_PAST,
        drafts=drafts,
        counts=rsvp_service.page_counts(upcoming),
        answers=_my_answers(upcoming),
        notes_by_meeting=published_notes(past),
    )


@bp.route("/past")
@same_for_every_visitor
def past_meetings():
    page = paginate(_past_meetings(), per_page=PAST_PER_PAGE)
    return render_template("main/past.html", page=page, notes_by_meeting=published_notes(page.items))


@bp.route("/meetings")
@bp.route("/meetings/")
def meetings():
    """Every meeting's address begins /meetings/: what is left of one after its name goes to the list of them, home
    (upcoming, then the latest past ones with the way to the rest), not to "Page not found"."""
    return redirect(url_for("main.home"))


def _my_answers(meetings: Sequence[Meeting]) -> dict[int, Rsvp]:
    if not current_user.is_authenticated or not meetings:
        return {}
    mine = select(Rsvp).where(Rsvp.member_id == current_user.id, Rsvp.meeting_id.in_([m.id for m in meetings]))
    return {rsvp.meeting_id: rsvp for rsvp in db.session.scalars(mine)}


def published_notes(meetings: Sequence[Meeting]) -> dict[int, bool]:
    """Which of these meetings have published notes (one query)."""
    if not meetings:
        return {}
    ids = db.session.scalars(
        select(MeetingNotes.meeting_id).where(
            MeetingNotes.meeting_id.in_([m.id for m in meetings]), MeetingNotes.status == NotesStatus.PUBLISHED
        )
    )
    return dict.fromkeys(ids, True)
