"""Signing in (one-time link or code, organiser password) and out."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from ..forms import CodeForm, ConfirmForm, PasswordSignInForm, SetPasswordForm, SignInForm
from ..models import Member
from ..security import client_address, hit_rate_limit, organiser_required, safe_next
from ..services import auth as auth_service
from .form_pages import render_form
from .transactions import transaction

bp = Blueprint("auth", __name__)


@bp.after_request
def never_cached(response):
    """Sign-in pages carry a form key and the address typed: never kept by a cache. Said here for every answer,
    since the signed-in check that sets it elsewhere depends on what the view happened to touch."""
    response.headers.setdefault("Cache-Control", "private, no-store")
    return response


def _limit(kind: str, email: str | None = None) -> None:
    """Count an attempt per client address and, when given, per email address.

    Offices share one public address, so the client limit is the larger one.
    """
    config = current_app.config
    window = config["LOGIN_RATE_WINDOW_SECONDS"]
    hit_rate_limit(f"{kind}:ip:{client_address()}", limit=config["LOGIN_RATE_LIMIT_PER_CLIENT"], window_seconds=window)
    if email is not None:
        hit_rate_limit(f"{kind}:email:{email.lower()}", limit=config["LOGIN_RATE_LIMIT"], window_seconds=window)


def _password_form(**values) -> PasswordSignInForm:
    # A prefix keeps its field ids apart from the email-link form shown on the same page.
    return PasswordSignInForm(prefix="password", **values)


def _sign_in(member: Member | None) -> bool:
    """Start a session on this browser for `member`; False, changing nothing, when there is none or their account is
    closed."""
    if member is None or not member.active:
        return False
    if current_user.is_authenticated:
        # Signing in again (maybe as someone else) must not leave the previous session usable.
        auth_service.end_session(current_user.session_id)
    session.clear()
    auth_service.start_session(member)
    login_user(member)
    return True


def _welcome(member: Member, next_path: str):
    flash(f"Signed in as {member.name}.", "success")
    return redirect(safe_next(next_path))


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    form = SignInForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        email = form.email.data.lower()
        with transaction():
            _limit("sign-in", email)
            auth_service.send_sign_in_link(email, safe_next(form.next.data))
        return redirect(url_for("auth.enter_code", email=email, next=safe_next(form.next.data)))
    return render_form("auth/sign_in.html", form=form, password_form=_password_form(next=form.next.data))


@bp.route("/sign-in/code", methods=["GET", "POST"])
def enter_code():
    form = CodeForm(email=request.args.get("email", ""), next=request.args.get("next", ""))
    if form.validate_on_submit():
        with transaction():
            _limit("code", form.email.data)
            token = auth_service.use_code(form.email.data, form.code.data)
            signed_in = _sign_in(token.member if token is not None else None)
        if token is not None and signed_in:
            return _welcome(token.member, form.next.data or token.next_path)
        form.code.errors.append("That code is not right or has expired. Check the latest email, or ask for a new link.")
    return render_form("auth/code.html", form=form)


@bp.route("/sign-in/link/<token>", methods=["GET", "POST"])
def link(token: str):
    form = ConfirmForm()
    if request.method == "POST" and not form.validate_on_submit():
        abort(400)
    with transaction():
        # Counted before the link is looked at, whether it turns out good or not: a guess that succeeds is a guess.
        _limit("link")
        used = auth_service.use_link(token) if request.method == "POST" else None
        signed_in = _sign_in(used.member if used is not None else None)
    if used is not None and signed_in:
        return _welcome(used.member, used.next_path)
    if request.method == "POST" or auth_service.peek_link(token) is None:
        return render_template("auth/link_invalid.html"), 410
    return render_template("auth/link.html", form=form)


@bp.route("/sign-in/password", methods=["POST"])
def password():
    form = _password_form()
    if form.validate_on_submit():
        with transaction():
            _limit("password", form.email.data)
            member = auth_service.check_password(form.email.data, form.password.data)
            signed_in = _sign_in(member)
        if member is not None and signed_in:
            return _welcome(member, form.next.data)
        form.password.errors.append("That email address and password do not match.")
    return render_form("auth/sign_in.html", form=SignInForm(next=form.next.data), password_form=form)


@bp.route("/sign-out", methods=["POST"])
def sign_out():
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    if current_user.is_authenticated:
        with transaction():
            auth_service.end_session(current_user.session_id)
    logout_user()
    session.clear()
    flash("You are signed out.", "success")
    return redirect(url_for("main.home"))


@bp.route("/account/password", methods=["GET", "POST"])
@organiser_required
def set_password():
    form = SetPasswordForm()
    if form.validate_on_submit():
        with transaction():
            auth_service.set_password(current_user, form.password.data)
        flash("Your password is set. You can now sign in with it as well as by email link.", "success")
        return redirect(url_for("members.profile"))
    return render_form("auth/set_password.html", form=form)
