"""Feedback after a meeting: the form behind each member's link, and the answers for organisers."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ..forms import FeedbackForm
from ..models import Meeting
from ..security import organiser_required
from ..services import feedback as feedback_service
from ..services import meetings as meeting_service
from ..services import rsvps as rsvp_service
from .form_pages import render_form
from .link_pages import broken_link
from .meetings import organiser_meeting
from .transactions import transaction

bp = Blueprint("feedback", __name__, url_prefix="/meetings")


def _published(ref: str) -> Meeting:
    meeting = meeting_service.find_meeting(ref)
    if meeting is None or meeting.is_draft:
        abort(404)
    return meeting


@bp.route("/<ref>/feedback/<token>", methods=["GET", "POST"])
def give(ref: str, token: str):
    """The link in the feedback email: the member's personal link for this meeting, which opens this form for her
    alone. GET shows it (mail scanners follow links); only the button records."""
    meeting = _published(ref)
    invitation = rsvp_service.invitation_by_token(meeting.id, token)
    if invitation is None:
        return broken_link(url_for("meetings.show", ref=meeting.slug), "meeting's page")
    member = invitation.member
    answer = feedback_service.answer_of(meeting, member)
    form = FeedbackForm(obj=answer if request.method == "GET" else None)
    closed = feedback_service.why_not_open(meeting) or (
        None if feedback_service.came(meeting, member) else "Feedback is asked of those who came to the meeting."
    )
    if not closed and form.validate_on_submit():
        with transaction(form) as outcome:
            feedback_service.record(
                meeting,
                member,
                score=form.score.data,
                do_differently=form.do_differently.data or "",
                future_topics=form.future_topics.data or "",
            )
        if not outcome.refused:
            flash("Thank you: your feedback is saved. You can change it with the same link.", "success")
            return redirect(url_for("feedback.give", ref=meeting.slug, token=token))
    return render_form(
        "feedback/give.html",
        refused_anyway=bool(closed) and request.method == "POST",
        meeting=meeting,
        member=member,
        form=form,
        answer=answer,
        closed=closed,
        closes_at=feedback_service.closes_at(meeting),
    )


@bp.route("/<ref>/feedback")
@organiser_required
def answers(ref: str):
    meeting = organiser_meeting(ref)
    given = feedback_service.answers(meeting)
    return render_template(
        "feedback/answers.html",
        meeting=meeting,
        answers=given,
        average=sum(a.score for a in given) / len(given) if given else None,
    )
