"""The organisers' invite page: choose recipients, preview the exact email, send, follow up."""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from ..extensions import db
from ..forms import ConfirmForm, InviteForm
from ..models import Member
from ..security import require_organiser
from ..services import invitations as invitation_service
from ..services import meetings as meeting_service

bp = Blueprint("invitations", __name__, url_prefix="/meetings")


def _meeting(ref: str):
    require_organiser()
    meeting = meeting_service.find_meeting(ref, load_details=True)
    if meeting is None:
        abort(404)
    return meeting


def _form() -> InviteForm:
    form = InviteForm()
    form.organisations.choices = invitation_service.organisations()
    return form


def _chosen(form: InviteForm, *, create: bool) -> tuple[list[Member], list[tuple[str, str]], list[str]]:
    """Members chosen by the form, unknown (name, email) pairs, and entries that are not addresses."""
    if form.recipients.data == "organisations":
        return invitation_service.active_members(form.organisations.data or ["\0"]), [], []
    if form.recipients.data == "addresses":
        pairs, bad = invitation_service.parse_addresses(form.addresses.data or "")
        members, unknown = invitation_service.members_for_addresses(pairs, create=create)
        return [m for m in members if m.active], unknown, bad
    return invitation_service.active_members(), [], []


def _sample_email(meeting) -> tuple[str, str, str]:
    """The exact invitation as the signed-in organiser would receive it, rendered and then rolled back."""
    nested = db.session.begin_nested()
    try:
        invitation_service.invite(meeting, [current_user._get_current_object()])
        row = invitation_service.last_queued()
        return (row.subject, row.text_body, row.html_body) if row else ("", "", "")
    finally:
        nested.rollback()


@bp.route("/<ref>/invite", methods=["GET", "POST"])
def invite(ref: str):
    meeting = _meeting(ref)
    form = _form()
    try:
        invitation_service.invitable(meeting)
        problem = None
    except invitation_service.InvitationError as error:
        problem = str(error)
    preview = None
    if request.method == "POST" and not problem:
        if not form.validate_on_submit():
            abort(400)
        action = request.form.get("action", "preview")
        if form.recipients.data == "organisations" and not form.organisations.data:
            form.organisations.errors.append("Choose at least one organisation.")
        elif form.recipients.data == "addresses" and not (form.addresses.data or "").strip():
            form.addresses.errors.append("Paste at least one email address.")
        elif action == "send":
            members, unknown, bad = _chosen(form, create=form.create_members.data)
            queued = invitation_service.invite(meeting, members)
            db.session.commit()
            skipped = len(members) - queued
            note = f" {skipped} had already been invited." if skipped else ""
            if unknown:
                note += f" {len(unknown)} unknown address{'es were' if len(unknown) != 1 else ' was'} not invited."
            flash(f"{queued} invitation{'s' if queued != 1 else ''} queued.{note}", "success")
            return redirect(url_for("invitations.invite", ref=meeting.slug))
        else:
            members, unknown, bad = _chosen(form, create=False)
            subject, text, _html = _sample_email(meeting)
            preview = {"members": members, "unknown": unknown, "bad": bad, "subject": subject, "text": text}
    return render_template(
        "invitations/invite.html", meeting=meeting, form=form, preview=preview, problem=problem,
        counts=invitation_service.outbox_counts(meeting), not_replied=invitation_service.not_replied(meeting),
        confirm_form=ConfirmForm(),
    ), 400 if form.errors else 200


@bp.route("/<ref>/invite/preview.html")
def preview_html(ref: str):
    meeting = _meeting(ref)
    _subject, _text, html = _sample_email(meeting)
    response = make_response(html or "<p>(no preview)</p>")
    response.headers["Content-Security-Policy"] = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.route("/<ref>/invite/remind", methods=["POST"])
def remind(ref: str):
    meeting = _meeting(ref)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        queued = invitation_service.nudge(meeting)
    except invitation_service.InvitationError as error:
        flash(str(error), "error")
    else:
        db.session.commit()
        flash(f"{queued} reminder{'s' if queued != 1 else ''} queued to members who have not replied."
              if queued else "Nobody to remind: everyone invited has answered (or was reminded today).", "success")
    return redirect(url_for("invitations.invite", ref=meeting.slug))
