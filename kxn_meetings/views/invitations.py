"""The organisers' invite page: choose recipients, preview the exact email, send, follow up."""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from ..forms import ConfirmForm, InviteForm
from ..models import Meeting
from ..security import organiser_required
from ..services import invitations as invitation_service
from ..services import meetings as meeting_service
from ..wording import plural
from .form_pages import REFUSED, require_confirmation
from .transactions import transaction

bp = Blueprint("invitations", __name__, url_prefix="/meetings")

# The HTML email is shown in a sandboxed frame: its inline styles are allowed there and nowhere else.
PREVIEW_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox allow-same-origin"
)


def _meeting(ref: str) -> Meeting:
    meeting = meeting_service.find_meeting(ref, load_details=True)
    if meeting is None:
        abort(404)
    return meeting


def _form() -> InviteForm:
    form = InviteForm()
    form.organisations.choices = invitation_service.organisations()
    return form


def _check_choice(form: InviteForm) -> bool:
    """Errors next to the field for a choice that names nobody; True when the form can be acted on."""
    if form.recipients.data == "organisations":
        known = set(form.organisations.choices)
        chosen = [o for o in form.organisations.data or [] if o in known]
        form.organisations.data = chosen
        if not chosen:
            form.organisations.errors = ["Choose at least one organisation."]
    elif form.recipients.data == "addresses" and not (form.addresses.data or "").strip():
        form.addresses.errors = ["Paste at least one email address."]
    return not form.errors


def _choice(form: InviteForm, *, create: bool) -> dict:
    """The form's choice of recipients, as the invitation service takes it."""
    return {"organisations": form.organisations.data, "addresses": form.addresses.data or "", "create": create}


def _send(meeting: Meeting, form: InviteForm):
    with transaction() as outcome:
        queued, chosen = invitation_service.invite_chosen(
            meeting, form.recipients.data, **_choice(form, create=form.create_members.data)
        )
    if outcome.refused:
        return redirect(url_for("invitations.invite", ref=meeting.slug))
    members, unknown = chosen.members, chosen.unknown
    note = (
        f"{plural(queued, 'invitation is', 'invitations are')} on {'its' if queued == 1 else 'their'} way."
        if queued
        else "No invitation was sent."
    )
    if len(members) > queued:
        note += f" {len(members) - queued} had already been invited."
    if chosen.added:
        note += f" {plural(chosen.added, 'new member was', 'new members were')} added to the members list."
    if unknown:
        note += (
            f" {plural(len(unknown), 'address was', 'addresses were')} not invited because "
            f"{'it is not a member' if len(unknown) == 1 else 'they are not members'} yet."
        )
    flash(note, "success")
    return redirect(url_for("invitations.invite", ref=meeting.slug))


@bp.route("/<ref>/invite", methods=["GET", "POST"])
@organiser_required
def invite(ref: str):
    meeting = _meeting(ref)
    form = _form()
    try:
        invitation_service.invitable(meeting)
        problem = None
    except invitation_service.InvitationError as error:
        problem = str(error)
    preview = None
    status = 200
    if request.method == "POST" and not problem:
        if form.validate_on_submit() and _check_choice(form):
            if request.form.get("action") == "send":
                return _send(meeting, form)
            chosen = invitation_service.choose_recipients(
                form.recipients.data, **_choice(form, create=False), series_id=meeting.series_id
            )
            sample = invitation_service.preview(meeting, current_user)
            members = invitation_service.not_invited_yet(meeting, chosen.members)
            preview = {
                "members": members,
                "invited_before": len(chosen.members) - len(members),
                "unknown": chosen.unknown,
                "bad": chosen.bad,
                "subject": sample.subject,
                "text": sample.text,
            }
        else:
            status = REFUSED
    elif request.method == "POST":
        status = REFUSED
    return render_template(
        "invitations/invite.html",
        meeting=meeting,
        form=form,
        preview=preview,
        problem=problem,
        counts=invitation_service.outbox_counts(meeting),
        not_replied=invitation_service.not_replied(meeting),
        confirm_form=ConfirmForm(),
    ), status


@bp.route("/<ref>/invite/preview.html")
@organiser_required
def preview_html(ref: str):
    meeting = _meeting(ref)
    try:
        invitation_service.invitable(meeting)
    except invitation_service.InvitationError:
        abort(404)
    response = make_response(invitation_service.preview(meeting, current_user).html)
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.route("/<ref>/invite/nudge", methods=["POST"])
@organiser_required
def nudge(ref: str):
    """Nudge those invited who have not answered (a reminder is something else: the email before the meeting)."""
    meeting = _meeting(ref)
    require_confirmation()
    with transaction() as outcome:
        queued = invitation_service.nudge(meeting)
    if not outcome.refused:
        flash(
            f"{plural(queued, 'nudge')} queued to members who have not replied."
            if queued
            else "Nobody to nudge: everyone invited has answered, or was nudged today.",
            "success",
        )
    return redirect(url_for("invitations.invite", ref=meeting.slug))
