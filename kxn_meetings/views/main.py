"""The public front: upcoming and past meetings."""

from __future__ import annotations

from collections.abc import Sequence

from flask import Blueprint, render_template
from flask_login import current_user
from sqlalchemy import select

from ..extensions import db
from ..models import Meeting, MeetingNotes, MeetingStatus, NotesStatus, Rsvp, utcnow
from ..security import is_organiser
from ..services import rsvps as rsvp_service
from .public_pages import same_for_every_visitor

bp = Blueprint("main", __name__)


@bp.route("/")
@same_for_every_visitor
def home():
    now = utcnow()
    upcoming = db.session.scalars(
        select(Meeting).where(Meeting.status != MeetingStatus.DRAFT, Meeting.ends_at >= now).order_by(Meeting.starts_at)
    ).all()
    past = db.session.scalars(
        select(Meeting)
        .where(Meeting.status == MeetingStatus.SCHEDULED, Meeting.ends_at < now)
        .order_by(Meeting.starts_at.desc())
        .limit(50)
    ).all()
    drafts: Sequence[Meeting] = []
    organiser = is_organiser()
    if organiser:
        drafts = db.session.scalars(
            select(Meeting).where(Meeting.status == MeetingStatus.DRAFT).order_by(Meeting.starts_at)
        ).all()
    counts = rsvp_service.counts_for([m.id for m in upcoming])
    answers: dict[int, Rsvp] = {}
    if current_user.is_authenticated and upcoming:
        answers = {
            r.meeting_id: r
            for r in db.session.scalars(
                select(Rsvp).where(Rsvp.member_id == current_user.id, Rsvp.meeting_id.in_([m.id for m in upcoming]))
            )
        }
    return render_template(
        "main/home.html",
        upcoming=upcoming,
        past=past,
        drafts=drafts,
        counts=counts,
        answers=answers,
        organiser=organiser,
        notes_by_meeting=published_notes(past),
    )


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
