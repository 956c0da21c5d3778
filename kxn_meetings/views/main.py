"""The public front: upcoming and past meetings."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import Meeting, MeetingStatus, utcnow

bp = Blueprint("main", __name__)


@bp.route("/")
def home():
    now = utcnow()
    upcoming = db.session.scalars(
        select(Meeting)
        .where(Meeting.status != MeetingStatus.DRAFT, Meeting.ends_at >= now)
        .options(selectinload(Meeting.agenda_items))
        .order_by(Meeting.starts_at)
    ).all()
    past = db.session.scalars(
        select(Meeting)
        .where(Meeting.status == MeetingStatus.SCHEDULED, Meeting.ends_at < now)
        .order_by(Meeting.starts_at.desc())
        .limit(20)
    ).all()
    return render_template("main/home.html", upcoming=upcoming, past=past)
