"""Organisers message one group of a meeting's members: write, preview, send, and the log on the meeting page."""

from __future__ import annotations

import secrets

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import timefmt
from ..forms import MessageMembersForm, SelectChoice
from ..models import Audience, MessageKind, parse_choice
from ..security import organiser_required
from ..services import messages as message_service
from ..services.outbox import render_email
from ..urls import external_url
from .form_pages import render_form
from .meetings import organiser_meeting
from .transactions import show_refusal, transaction

bp = Blueprint("messages", __name__, url_prefix="/meetings")


def _form_page(meeting, form: MessageMembersForm, *, refused_anyway: bool = False):
    sizes = message_service.audience_sizes(meeting)
    form.audience.choices = [
        SelectChoice(audience.value, f"{audience.label} ({sizes[audience]})")
        for audience in Audience
        if not message_service.why_not_message(meeting, audience)
    ]
    return render_form(
        "messages/write.html",
        meeting=meeting,
        form=form,
        refusal=message_service.why_not_message(meeting),
        log=message_service.sent_to(meeting),
        refused_anyway=refused_anyway,
    )


@bp.route("/<ref>/message", methods=["GET", "POST"])
@organiser_required
def write(ref: str):
    """GET: the form. POST: a preview of the message as members will get it, with Send and Change."""
    meeting = organiser_meeting(ref, details=True)
    form = MessageMembersForm()
    if request.method == "GET":
        if (chosen := parse_choice(Audience, request.args.get("to"))) is not None:
            form.audience.data = chosen.value
        return _form_page(meeting, form)
    if not form.validate_on_submit() or request.form.get("change"):
        return _form_page(meeting, form)
    try:
        draft = message_service.check(meeting, Audience(form.audience.data), form.subject.data, form.body.data)
    except message_service.MessageError as error:
        show_refusal(error, form)
        return _form_page(meeting, form)
    members = message_service.members_in(meeting, draft.audience)
    if not members:
        form.audience.errors = [
            f"Nobody is in “{draft.audience.label}” for this meeting, so there is nobody to send to."
        ]
        return _form_page(meeting, form, refused_anyway=True)
    sample = render_email(
        kind=MessageKind.MESSAGE,
        to=members[0],
        subject=draft.subject,
        context={
            "meeting": meeting,
            "when": timefmt.when(meeting.starts_at, meeting.ends_at, meeting.timezone),
            "meeting_url": external_url("meetings.show", ref=meeting.slug),
            "answer_url": external_url("meetings.show", ref=meeting.slug),
            "rsvp": None,
            "body": draft.body,
            "sent_by": message_service.signature(current_user._get_current_object()),
        },
    )
    form.send_key.data = secrets.token_urlsafe(24)
    return render_template(
        "messages/preview.html", meeting=meeting, form=form, draft=draft, members=members, sample=sample
    )


@bp.route("/<ref>/message/send", methods=["POST"])
@organiser_required
def send(ref: str):
    meeting = organiser_meeting(ref, details=True)
    form = MessageMembersForm()
    if not form.validate_on_submit() or not form.send_key.data:
        flash("The message could not be sent as it was; check it and preview it again.", "error")
        return _form_page(meeting, form, refused_anyway=True)
    with transaction(form) as outcome:
        draft = message_service.check(meeting, Audience(form.audience.data), form.subject.data, form.body.data)
        logged = message_service.send(
            meeting, draft, sender=current_user._get_current_object(), send_key=form.send_key.data
        )
    if outcome.refused:
        return _form_page(meeting, form, refused_anyway=True)
    flash(message_service.what_happens_next(logged), "success")
    return redirect(url_for("meetings.show", ref=meeting.slug, _anchor="messages"))
