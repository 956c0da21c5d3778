"""Meeting notes: the archive, the feed, the published page, and the organisers' writing and publishing tools."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from flask_wtf.file import FileField, FileRequired
from markupsafe import Markup
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import (
    BooleanField,
    Form,
    FormField,
    HiddenField,
    RadioField,
    SelectChoice,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from ..extensions import db
from ..forms import (
    BoundedFieldList,
    ConfirmForm,
    DateField,
    SiteForm,
    no_control_chars,
    no_control_chars_in_text,
    optional_line,
    single_line,
    single_spaced,
)
from ..models import (
    ActionItem,
    ActionStatus,
    Meeting,
    MeetingNotes,
    NoteAttachment,
    NoteRevision,
    Visibility,
    parse_choice,
    parse_id,
)
from ..rendering import render_markdown
from ..security import is_organiser, organiser_required, safe_next
from ..services import meetings as meeting_service
from ..services import notes as service
from ..services import rooms as room_service
from ..wording import plural
from .form_pages import REFUSED, has_errors, require_confirmation
from .meetings import organiser_meeting
from .paging import paginate_rows
from .public_pages import part_for_many, same_for_every_visitor
from .transactions import show_refusal, transaction

bp = Blueprint("notes", __name__)

BLANK_ACTION_ROWS = 2
PER_PAGE = 20


# Forms ----------------------------------------------------------------------------------------------


class ActionRowForm(Form):
    id = HiddenField()
    text = StringField(
        "What", validators=[Optional(), single_line, no_control_chars, Length(max=1000)], filters=[single_spaced]
    )
    owner = StringField("Owner", validators=optional_line(200), filters=[single_spaced])
    due_date = DateField("Due date", validators=[Optional()])
    done = BooleanField("Done")

    def is_blank(self) -> bool:
        return not (self.text.data or self.owner.data or self.due_date.data or self.done.data)

    def action_id(self) -> int | None:
        return parse_id(self.id.data)


class NotesForm(SiteForm):
    title = StringField(
        "Title",
        validators=[DataRequired("Enter a title."), single_line, no_control_chars, Length(max=300)],
        filters=[single_spaced],
    )
    summary = TextAreaField("Summary", validators=[Optional(), no_control_chars_in_text, Length(max=1000)])
    body = TextAreaField("Notes (Markdown)", validators=[Optional(), no_control_chars_in_text, Length(max=100_000)])
    visibility = RadioField(
        "Who can read the notes once published",
        choices=[
            SelectChoice("public", "Everyone (public, and in the notes feed)"),
            SelectChoice("members", "Members only (sign-in needed)"),
        ],
        invalid_choice_message="Choose who can read the notes: everyone, or members only.",
        default="public",
    )
    actions = BoundedFieldList(
        FormField(ActionRowForm), "One set of notes records at most {} actions.", max_entries=service.MAX_ACTIONS
    )
    notify_update = BooleanField("Email members about this update")


class AttachmentForm(SiteForm):
    file = FileField("File", validators=[FileRequired("Choose a file to upload.")])


# Loading and access ----------------------------------------------------------------------------------


def _meeting(ref: str, *, details: bool = False) -> Meeting:
    meeting = meeting_service.find_meeting(ref, load_details=details)
    if meeting is None:
        abort(404)
    return meeting


def _sign_in_first(target: str):
    flash("These notes are for members of the network. Please sign in to read them.", "info")
    return redirect(url_for("auth.sign_in", next=target))


def _readable(ref: str) -> tuple[Meeting, MeetingNotes]:
    """The meeting and its notes if they are published (any notes, for organisers); 404 otherwise.

    Members-only notes are returned too: the caller sends the public to sign in (_members_only_for).
    """
    meeting = _meeting(ref)
    notes = service.notes_for(meeting)
    if notes is None or not service.can_read(notes, signed_in=True, organiser=is_organiser()):
        abort(404)
    return meeting, notes


def _members_only_for(notes: MeetingNotes) -> bool:
    return notes.is_members_only and not current_user.is_authenticated


def _organiser_notes(ref: str) -> tuple[Meeting, MeetingNotes]:
    """For views that are @organiser_required: the meeting and its notes, drafts too; 404 when there are none."""
    meeting = organiser_meeting(ref)
    notes = service.notes_for(meeting)
    if notes is None or notes.current_revision is None:
        abort(404)
    return meeting, notes


def _confirmed_notes(ref: str) -> tuple[Meeting, MeetingNotes]:
    """For the buttons that change notes: the notes (404 when there are none), then the confirmation (400)."""
    found = _organiser_notes(ref)
    require_confirmation()
    return found


# Reading --------------------------------------------------------------------------------------------


def _year(value: str | None) -> int | None:
    if value and value.isascii() and value.isdigit() and len(value) == 4 and 1900 <= int(value) <= 9998:
        return int(value)
    return None


@bp.route("/notes")
def archive():
    signed_in = current_user.is_authenticated
    text = " ".join(request.args.get("q", "")[:200].split())
    year = _year(request.args.get("year"))
    page = paginate_rows(service.archive_query(signed_in=signed_in, text=text, year=year), per_page=PER_PAGE)
    return render_template(
        "notes/archive.html",
        page=page,
        entries=[service.ArchiveEntry(*row) for row in page.items],
        q=text,
        year=year,
        years=service.archive_years(signed_in=signed_in),
        drafts=service.drafts() if is_organiser() else [],
    )


@bp.route("/notes/feed.atom")
@same_for_every_visitor
def feed():
    response = Response(service.atom_feed(), mimetype="application/atom+xml")
    response.headers["Content-Type"] = "application/atom+xml; charset=utf-8"
    response.headers["Cache-Control"] = "public, max-age=600"
    response.add_etag()
    return response.make_conditional(request)


@bp.route("/meetings/<ref>/notes")
def show(ref: str):
    meeting, notes = _readable(ref)
    if _members_only_for(notes):
        return _sign_in_first(url_for("notes.show", ref=meeting.slug))
    revision = notes.current_revision
    if revision is None:
        abort(404)
    return _revision_page(
        "notes/show.html",
        meeting,
        notes,
        revision,
        actions=service.actions_of(meeting),
        attachments=service.attachments_of(notes),
        organiser_view=is_organiser(),
        human_size=service.human_size,
    )


def _revision_page(template: str, meeting: Meeting, notes: MeetingNotes, revision: NoteRevision, **context) -> str:
    """A page showing one revision of the notes, with its table of contents."""
    return render_template(
        template,
        meeting=meeting,
        notes=notes,
        revision=revision,
        toc=service.contents(revision.body_html),
        confirm_form=ConfirmForm(),
        **context,
    )


@dataclass
class NotesPanel:
    notes: MeetingNotes | None
    toc: list[service.Section]
    carried: service.CarriedActions | None
    organiser: bool


@bp.app_template_global("notes_panel")
def notes_panel(meeting: Meeting) -> NotesPanel:
    """What the meeting page shows of its notes, and the open actions carried from the last meeting."""
    organiser, signed_in = is_organiser(), current_user.is_authenticated
    notes = service.notes_for(meeting)
    if not service.can_read(notes, signed_in=signed_in, organiser=organiser):
        notes = None
    carried = service.carried_actions(meeting)
    if carried is not None and not service.can_read(carried.notes, signed_in=signed_in, organiser=organiser):
        carried = None
    revision = notes.current_revision if notes else None
    return NotesPanel(
        notes=notes,
        toc=service.contents(revision.body_html if revision else None),
        carried=carried,
        organiser=organiser,
    )


@bp.app_template_global()
def meeting_notes_panel(meeting: Meeting) -> Markup:
    """The notes panel of the meeting page, rendered. It is the same for every member who is not an organiser, and
    for every visitor, so a process keeps each for PUBLIC_PAGE_SECONDS; an organiser's, which offers to mark
    actions done and shows draft notes, is rendered every time."""
    if is_organiser():
        return Markup(render_template("notes/_meeting_panel.html", meeting=meeting))
    return part_for_many(
        "kxn_notes_panels",
        (meeting.id, current_user.is_authenticated),
        lambda: render_template("notes/_meeting_panel.html", meeting=meeting),
    )


# Writing --------------------------------------------------------------------------------------------


def _form_for(meeting: Meeting, notes: MeetingNotes | None) -> NotesForm:
    revision = notes.current_revision if notes else None
    data = {
        "title": revision.title if revision else meeting.title[:300],
        "summary": revision.summary if revision else "",
        "body": revision.body_markdown if revision else "",
        "visibility": (notes.visibility if notes else meeting.visibility).value,
        "actions": [
            {
                "id": str(a.id),
                "text": a.text,
                "owner": a.owner,
                "due_date": a.due_date,
                "done": a.status.is_done,
            }
            for a in service.actions_of(meeting)
        ],
    }
    return NotesForm(data=data, formdata=None)


def _with_blank_rows(form: NotesForm) -> NotesForm:
    filled = len([e for e in form.actions.entries if not e.form.is_blank()])
    while len(form.actions.entries) < filled + BLANK_ACTION_ROWS and len(form.actions.entries) < service.MAX_ACTIONS:
        form.actions.append_entry()
    return form


def _input_from(form: NotesForm) -> service.NotesInput | None:
    rows: list[service.ActionRow] = []
    for entry in form.actions.entries:
        row = entry.form
        if row.is_blank():
            continue
        if not row.text.data:
            row.text.errors.append("Say what the action is, or clear the row.")
            continue
        rows.append(
            service.ActionRow(
                text=row.text.data,
                owner=row.owner.data or "",
                due_date=row.due_date.data,
                done=bool(row.done.data),
                id=row.action_id(),
            )
        )
    if any(entry.form.text.errors for entry in form.actions.entries):
        return None
    body = (form.body.data or "").replace("\r\n", "\n").replace("\r", "\n")
    return service.NotesInput(
        title=form.title.data,
        summary=(form.summary.data or "").replace("\r\n", "\n"),
        body=body,
        visibility=parse_choice(Visibility, form.visibility.data) or Visibility.PUBLIC,
        actions=rows,
    )


def _edit_page(
    meeting: Meeting,
    notes: MeetingNotes | None,
    form: NotesForm,
    *,
    status: int = 200,
    preview: str | None = None,
    notice: str | None = None,
):
    return render_template(
        "notes/edit.html",
        meeting=meeting,
        notes=notes,
        # Once a draft exists, what scribes wrote later is offered as changes to take in.
        room_changes=room_service.changes(meeting) if notes is not None else [],
        form=_with_blank_rows(form),
        preview=preview,
        preview_toc=service.contents(preview),
        notice=notice,
        carried=service.carried_actions(meeting),
        attachments=service.attachments_of(notes),
        upload_form=AttachmentForm(formdata=None),
        confirm_form=ConfirmForm(),
        recipient_count=len(service.recipients(meeting)),
        human_size=service.human_size,
        max_upload_mb=current_app.config["NOTES_MAX_UPLOAD_MB"],
    ), status


@bp.route("/meetings/<ref>/notes/edit", methods=["GET", "POST"])
@organiser_required
def edit(ref: str):
    meeting = _meeting(ref, details=True)
    notes = service.notes_for(meeting)
    if request.method == "GET":
        form = _form_for(meeting, notes)
        notice = None
        if request.args.get("start") == "meeting":
            title, summary, body = service.outline(meeting)
            if not form.body.data:
                form.title.data, form.summary.data, form.body.data = title, form.summary.data or summary, body
                notice = "The outline of the meeting is in the form. Write it up, then save a draft."
            else:
                form.body.data = f"{form.body.data.rstrip()}\n\n{body}"
                notice = "The outline of the meeting was added after what was already written. Nothing is saved yet."
        return _edit_page(meeting, notes, form, notice=notice)

    form = NotesForm()
    if "add_action" in request.form:
        if _with_blank_rows(form).actions.at_limit:
            form.actions.errors = [form.actions.full_message]
        else:
            form.actions.append_entry()
        return _edit_page(meeting, notes, form)
    if "preview" in request.form:
        form.validate()
        # Heading ids get a prefix so a section called "Summary" cannot clash with the form's own ids.
        rendered = re.sub(
            r'<(h[234]) id="', r'<\1 id="preview-', render_markdown((form.body.data or "").replace("\r\n", "\n"))
        )
        return _edit_page(
            meeting,
            notes,
            form,
            status=REFUSED if has_errors(form) else 200,
            preview=rendered or "<p>(The notes are empty.)</p>",
        )
    if form.validate_on_submit():
        data = _input_from(form)
        if data is not None:
            with transaction(form) as outcome:
                result = service.save(meeting, data, current_user._get_current_object())
                announce = bool(form.notify_update.data) and result.notes.is_published
                emailed = service.announce_update(result.notes) if announce and result.new_revision else None
            if not outcome.refused:
                flash(_saved_message(result, emailed, announce), "success")
                return redirect(url_for("notes.edit", ref=meeting.slug))
    return _edit_page(meeting, service.notes_for(meeting), form, status=REFUSED)


def _saved_message(result: service.SaveResult, emailed: int | None, announce: bool) -> str:
    what = "draft" if not result.notes.is_published else "notes"
    text = (
        f"Saved: revision {result.revision.number} of the {what}."
        if result.new_revision
        else "Saved. The text had not changed, so no new revision was made."
    )
    if result.notes.is_published:
        text += " The published notes show it now."
    if emailed:
        text += f" {plural(emailed, 'member')} will get an email about the update."
    elif announce:
        text += " Nobody was emailed: " + (
            "everyone had already been told about this revision." if result.new_revision else "nothing had changed."
        )
    return text


# Publishing -----------------------------------------------------------------------------------------


@bp.route("/meetings/<ref>/notes/publish", methods=["POST"])
@organiser_required
def publish(ref: str):
    meeting, notes = _confirmed_notes(ref)
    email = request.form.get("email") != "no"
    confirmed = request.form.get("not_ready") == "confirmed"
    if not confirmed and (reasons := service.why_not_ready(notes)):
        return render_template(
            "notes/publish_check.html", meeting=meeting, reasons=reasons, email=email, confirm_form=ConfirmForm()
        )
    with transaction() as outcome:
        published = service.publish(notes, email_members=email, not_ready_confirmed=confirmed)
    if outcome.refused:
        return redirect(url_for("notes.edit", ref=meeting.slug))
    where = "the meeting page, the notes archive" + (" and the feed" if not notes.is_members_only else "")
    message = f"Published: the notes are on {where}."
    if published.emailed:
        message += f" {plural(published.emailed, 'member')} who went or sent apologies will get the notes by email."
    elif request.form.get("email") == "no":
        message += " Nobody was emailed."
    if published.feedback_asked:
        message += f" The feedback request is on its way to {plural(published.feedback_asked, 'member')} who came."
    flash(message, "success")
    return redirect(url_for("notes.show", ref=meeting.slug))


@bp.route("/meetings/<ref>/notes/unpublish", methods=["POST"])
@organiser_required
def unpublish(ref: str):
    meeting, notes = _confirmed_notes(ref)
    with transaction() as outcome:
        service.unpublish(notes)
    if not outcome.refused:
        flash("Unpublished: the notes are a draft again, seen only by organisers.", "success")
    return redirect(url_for("notes.edit", ref=meeting.slug))


# Revisions ------------------------------------------------------------------------------------------


@bp.route("/meetings/<ref>/notes/revisions")
@organiser_required
def history(ref: str):
    meeting, notes = _organiser_notes(ref)
    return render_template("notes/history.html", meeting=meeting, notes=notes, revisions=service.revisions(notes))


def _revision(notes: MeetingNotes, number: int) -> NoteRevision:
    revision = service.revision_by_number(notes, number)
    if revision is None:
        abort(404)
    return revision


@bp.route("/meetings/<ref>/notes/revisions/<id:number>")
@organiser_required
def revision(ref: str, number: int):
    meeting, notes = _organiser_notes(ref)
    return _revision_page("notes/revision.html", meeting, notes, _revision(notes, number))


@bp.route("/meetings/<ref>/notes/revisions/compare")
@organiser_required
def compare(ref: str):
    meeting, notes = _organiser_notes(ref)
    numbers = [r.number for r in service.revisions(notes)]
    old_number, new_number = parse_id(request.args.get("from")), parse_id(request.args.get("to"))
    if old_number is None or new_number is None:
        new_number = numbers[0]
        old_number = numbers[1] if len(numbers) > 1 else numbers[0]
    old, new = _revision(notes, old_number), _revision(notes, new_number)
    return render_template(
        "notes/compare.html",
        meeting=meeting,
        notes=notes,
        old=old,
        new=new,
        numbers=numbers,
        changes=service.diff(old, new),
    )


@bp.route("/meetings/<ref>/notes/revisions/<id:number>/restore", methods=["POST"])
@organiser_required
def restore(ref: str, number: int):
    meeting, notes = _confirmed_notes(ref)
    _revision(notes, number)
    with transaction() as outcome:
        restored = service.restore(notes, number, current_user._get_current_object())
    if outcome.refused:
        return redirect(url_for("notes.edit", ref=meeting.slug))
    flash(f"Revision {number} restored as revision {restored.number}. Nobody was emailed.", "success")
    return redirect(url_for("notes.edit", ref=meeting.slug))


# Actions --------------------------------------------------------------------------------------------


@bp.route("/meetings/<ref>/actions/<id:action_id>", methods=["POST"])
@organiser_required
def action_status(ref: str, action_id: int):
    """Mark an action done (or open again) from the meeting page, the notes or the next meeting's page."""
    meeting = organiser_meeting(ref)
    require_confirmation()
    action = db.session.get(ActionItem, action_id)
    if action is None or action.meeting_id != meeting.id:
        abort(404)
    wanted = parse_choice(ActionStatus, request.form.get("status"))
    if wanted is None:
        abort(400)
    with transaction():
        changed = service.set_action_status(action, wanted)
    if changed:
        flash(f"Action {'done' if wanted.is_done else 'open again'}: {action.text}", "success")
    else:
        flash(f"That action was already {'done' if wanted.is_done else 'open'}.", "info")
    return redirect(safe_next(request.form.get("next"), url_for("notes.show", ref=meeting.slug)))


# Attachments ----------------------------------------------------------------------------------------


def _too_large(meeting: Meeting | None, message: str | None = None):
    limit = current_app.config["NOTES_MAX_UPLOAD_MB"]
    return render_template("notes/too_large.html", meeting=meeting, limit=limit, message=message), 413


@bp.errorhandler(RequestEntityTooLarge)
def request_too_large(error: RequestEntityTooLarge):
    ref = (request.view_args or {}).get("ref")
    meeting = meeting_service.find_meeting(ref) if isinstance(ref, str) and is_organiser() else None
    return _too_large(meeting)


@bp.route("/meetings/<ref>/notes/attachments", methods=["POST"])
@organiser_required
def upload(ref: str):
    meeting = organiser_meeting(ref)
    notes = service.notes_for(meeting)
    if notes is None:
        flash("Save the notes once before attaching files.", "error")
        return redirect(url_for("notes.edit", ref=meeting.slug))
    form = AttachmentForm()
    if not form.validate_on_submit():
        for message in form.file.errors or form.errors.get("csrf_token", []) or ["Choose a file to upload."]:
            flash(message, "error")
        return redirect(url_for("notes.edit", ref=meeting.slug, _anchor="attachments"))
    storage = form.file.data
    data = storage.stream.read(current_app.config["NOTES_MAX_UPLOAD_MB"] * 1024 * 1024 + 1)
    path: Path | None = None
    try:
        with transaction(show=False) as outcome:
            attachment = service.attach(notes, storage.filename or "", data, current_user._get_current_object())
            path = service.attachment_path(attachment)
    except Exception:
        if path is not None:  # stored, but not recorded
            path.unlink(missing_ok=True)
        raise
    if isinstance(outcome.error, service.UploadTooLarge):
        return _too_large(meeting, outcome.error.message)
    if outcome.error is not None:
        show_refusal(outcome.error)
        return redirect(url_for("notes.edit", ref=meeting.slug, _anchor="attachments"))
    flash(f"Attached “{attachment.filename}” ({service.human_size(attachment.size)}).", "success")
    return redirect(url_for("notes.edit", ref=meeting.slug, _anchor="attachments"))


def _content_disposition(filename: str) -> str:
    """Both forms of the name: a plain ASCII one for old clients and the real one (RFC 6266, RFC 5987)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename)
    return f"attachment; filename=\"{fallback or 'attachment'}\"; filename*=UTF-8''{quote(filename, safe='')}"


@bp.route("/meetings/<ref>/notes/attachments/<id:attachment_id>")
def download(ref: str, attachment_id: int):
    meeting, notes = _readable(ref)
    attachment = db.session.get(NoteAttachment, attachment_id)
    if attachment is None or attachment.notes_id != notes.id:
        abort(404)
    if _members_only_for(notes):
        return _sign_in_first(url_for("notes.show", ref=meeting.slug))
    path = service.attachment_path(attachment)
    if not path.is_file():
        abort(404)
    public = notes.is_published and not notes.is_members_only
    response = send_file(
        path,
        mimetype=attachment.content_type,
        conditional=True,
        etag=attachment.stored_name,
        last_modified=attachment.created_at,
        max_age=3600 if public else None,
    )
    response.headers["Content-Disposition"] = _content_disposition(attachment.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    if not public:
        response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/meetings/<ref>/notes/attachments/<id:attachment_id>/delete", methods=["POST"])
@organiser_required
def delete_attachment(ref: str, attachment_id: int):
    meeting, notes = _confirmed_notes(ref)
    attachment = db.session.get(NoteAttachment, attachment_id)
    if attachment is None or attachment.notes_id != notes.id:
        abort(404)
    name = attachment.filename
    with transaction():
        path = service.remove_attachment(attachment)
    path.unlink(missing_ok=True)
    flash(f"Removed “{name}”.", "success")
    return redirect(url_for("notes.edit", ref=meeting.slug, _anchor="attachments"))
