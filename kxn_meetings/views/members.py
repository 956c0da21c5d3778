"""Members: the organisers' directory (add, edit, import, export), and each member's own profile."""

from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, logout_user
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import ColumnElement, func, or_, select

from .. import csvsafe
from ..extensions import db
from ..forms import CsvConfirmForm, CsvImportForm, DeleteAccountForm, MemberForm, ProfileForm
from ..models import LabelledEnum, Member, Region, Sector, parse_choice
from ..security import organiser_required, safe_next
from ..services import members as member_service
from ..services.follows import followed_by
from ..services.members import CsvImportError, ImportRow
from ..text import without_controls
from .form_pages import render_form, require_confirmation
from .paging import paginate
from .transactions import created, show_refusal, transaction

bp = Blueprint("members", __name__)

PAGE_SIZE = 50


class DirectoryTab(LabelledEnum):
    """The directory's tabs besides All, as ?status=<value>; also the keys of member_service.directory_counts()."""

    ACTIVE = "active"
    INACTIVE = "inactive", "Deactivated"
    ORGANISERS = "organisers"

    @property
    def condition(self) -> ColumnElement[bool]:
        return {
            DirectoryTab.ACTIVE: Member.active.is_(True),
            DirectoryTab.INACTIVE: Member.active.is_(False),
            DirectoryTab.ORGANISERS: Member.is_organiser.is_(True),
        }[self]


MAX_IMPORT_BYTES = 2 * 1024 * 1024
# Werkzeug refuses form fields over MAX_FORM_MEMORY_SIZE (500 kB by default); stay below it.
MAX_PAYLOAD_CHARS = 450_000
PREVIEW_GOOD_ROWS = 100


def _me() -> Member:
    return current_user._get_current_object()


def _import_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="members-import")


@bp.route("/members")
@organiser_required
def directory():
    # Control characters match nothing and PostgreSQL refuses NUL outright.
    q = without_controls(request.args.get("q", ""), invisible=True).strip()[:200]
    status = parse_choice(DirectoryTab, request.args.get("status"))
    query = select(Member).order_by(func.lower(Member.name), Member.id)
    if q:
        query = query.where(
            or_(
                Member.name.icontains(q, autoescape=True),
                Member.email.icontains(q, autoescape=True),
                Member.organisation.icontains(q, autoescape=True),
            )
        )
    if status is not None:
        query = query.where(status.condition)
    return render_template(
        "members/directory.html",
        page=paginate(query, per_page=PAGE_SIZE),
        q=q,
        status=status,
        tabs=list(DirectoryTab),
        counts=member_service.directory_counts(),
    )


def _where_from(form: MemberForm | ProfileForm) -> dict:
    return {"sector": parse_choice(Sector, form.sector.data), "region": parse_choice(Region, form.region.data)}


def _member_fields(form: MemberForm) -> dict:
    """Only the fields an organiser may set; anything else posted is ignored."""
    return {
        "name": form.name.data,
        "email": form.email.data,
        "organisation": form.organisation.data or "",
        "job_title": form.job_title.data or "",
        **_where_from(form),
        "is_organiser": form.is_organiser.data,
        "active": form.active.data,
    }


@bp.route("/members/new", methods=["GET", "POST"])
@organiser_required
def new():
    form = MemberForm()
    if member := created(form, lambda: member_service.add_member(**_member_fields(form))):
        flash(f"{member.name} is added.", "success")
        return redirect(url_for("members.directory"))
    return render_form("members/form.html", form=form, member=None)


@bp.route("/members/<id:member_id>/edit", methods=["GET", "POST"])
@organiser_required
def edit(member_id: int):
    member = db.get_or_404(Member, member_id)
    # On POST the submitted form is the whole truth: a field left out must not keep the old value.
    form = MemberForm(obj=member if request.method == "GET" else None)
    if form.validate_on_submit():
        with transaction(form) as outcome:
            member_service.update_member(member, acting=_me(), **_member_fields(form))
        if not outcome.refused:
            flash(f"Changes to {member.name} are saved.", "success")
            return redirect(url_for("members.directory"))
    return render_form("members/form.html", form=form, member=member)


def _confirmed_member(member_id: int) -> Member:
    require_confirmation()
    return db.get_or_404(Member, member_id)


def _back_to_list():
    return redirect(safe_next(request.form.get("next"), url_for("members.directory")))


@bp.route("/members/<id:member_id>/deactivate", methods=["POST"])
@organiser_required
def deactivate(member_id: int):
    member = _confirmed_member(member_id)
    with transaction() as outcome:
        member_service.deactivate(member, acting=_me())
    if not outcome.refused:
        flash(f"{member.name} is deactivated and signed out everywhere. They can no longer sign in.", "success")
    return _back_to_list()


@bp.route("/members/<id:member_id>/reactivate", methods=["POST"])
@organiser_required
def reactivate(member_id: int):
    member = _confirmed_member(member_id)
    with transaction():
        member_service.reactivate(member)
    flash(f"{member.name} is active again and can sign in.", "success")
    return _back_to_list()


@bp.route("/members/import", methods=["GET", "POST"])
@organiser_required
def import_upload():
    form = CsvImportForm()
    if form.validate_on_submit():
        data = form.file.data.stream.read(MAX_IMPORT_BYTES + 1)
        try:
            if len(data) > MAX_IMPORT_BYTES:
                raise CsvImportError(
                    f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB. Split it into smaller files."
                )
            check = member_service.preview_import(data)
            payload = _import_serializer().dumps([row.as_list() for row in check.good])
            if len(payload) > MAX_PAYLOAD_CHARS:
                raise CsvImportError("The file holds too much text to import at once. Split it into smaller files.")
        except CsvImportError as error:
            show_refusal(error, form)
        else:
            return render_template(
                "members/import_preview.html",
                check=check,
                confirm=CsvConfirmForm(payload=payload),
                shown=PREVIEW_GOOD_ROWS,
            )
    return render_form("members/import.html", form=form)


@bp.route("/members/import/confirm", methods=["POST"])
@organiser_required
def import_confirm():
    form = CsvConfirmForm()
    if not form.validate_on_submit():
        abort(400, "The import form was incomplete. Nothing was imported; please upload the file again.")
    try:
        rows = [ImportRow.from_list(values) for values in _import_serializer().loads(form.payload.data)]
    except (BadData, ValueError, TypeError):
        abort(400, "The list to import could not be verified. Nothing was imported; please upload the file again.")
    with transaction() as outcome:
        result = member_service.import_members(rows)
    if outcome.refused:
        return redirect(url_for("members.import_upload"))
    flash(f"Imported {len(result.good)} member{'' if len(result.good) == 1 else 's'}.", "success")
    return render_template("members/import_done.html", result=result)


@bp.route("/members/export.csv")
@organiser_required
def export():
    body = csvsafe.to_csv(member_service.export_rows())
    filename = f"kxn-members-{dt.date.today().isoformat()}.csv"
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# --- A member's own profile ---------------------------------------------------------------------------


def _render_profile(profile_form: ProfileForm, delete_form: DeleteAccountForm):
    return render_form(
        "members/profile.html",
        member=current_user,
        form=profile_form,
        delete_form=delete_form,
        followed=followed_by(_me()),
    )


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    form = ProfileForm(obj=current_user if request.method == "GET" else None)
    if form.validate_on_submit():
        with transaction():
            member_service.update_profile(
                _me(),
                name=form.name.data,
                organisation=form.organisation.data or "",
                job_title=form.job_title.data or "",
                **_where_from(form),
                show_name_to_attendees=bool(form.show_name_to_attendees.data),
            )
        flash("Your profile is saved.", "success")
        return redirect(url_for("members.profile"))
    return _render_profile(form, DeleteAccountForm(prefix="delete"))


@bp.route("/profile/data.json")
@login_required
def my_data():
    data = member_service.personal_data(_me())
    body = json.dumps(data, ensure_ascii=False, indent=2)
    return Response(
        body, mimetype="application/json", headers={"Content-Disposition": 'attachment; filename="kxn-my-data.json"'}
    )


@bp.route("/profile/delete", methods=["POST"])
@login_required
def delete_account():
    form = DeleteAccountForm(prefix="delete")
    me = _me()
    if form.validate_on_submit():
        if form.email.data.lower() != me.email.lower():
            form.email.errors = [
                *form.email.errors,
                "That is not the email address of this account. Type it exactly to confirm.",
            ]
        else:
            with transaction(form) as outcome:
                member_service.delete_account(me)
            if not outcome.refused:
                logout_user()
                session.clear()
                flash(
                    "Your account is deleted and you are signed out. Your past answers to meetings are "
                    "kept without your name.",
                    "success",
                )
                return redirect(url_for("main.home"))
    return _render_profile(ProfileForm(obj=me, formdata=None), form)
