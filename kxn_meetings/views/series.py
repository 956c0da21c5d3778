"""Series: their list and pages, organisers' editing and followers, and following from a page or an email link."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required

from ..extensions import csrf
from ..forms import ConfirmForm, FollowForm, SeriesForm
from ..models import MeetingSeries, Member, StandingAnswer, parse_choice
from ..security import is_organiser, organiser_required, signed_in_member
from ..services import follows
from ..services import series as series_service
from ..services.follows import member_by_token
from ..wording import plural
from .form_pages import render_form, require_confirmation
from .link_pages import broken_link
from .transactions import created, transaction

bp = Blueprint("series", __name__, url_prefix="/series")


def _series(ref: str) -> MeetingSeries:
    series = series_service.find_series(ref)
    if series is None:
        abort(404)
    return series


@bp.route("")
def index():
    return render_template("series/index.html", rows=series_service.overview(), organiser=is_organiser())


@bp.route("/new", methods=["GET", "POST"])
@organiser_required
def new():
    form = SeriesForm()
    if series := created(form, lambda: series_service.create_series(form.name.data, form.description.data or "")):
        flash(f"Series \u201c{series.name}\u201d created. Choose it in a meeting's form to add meetings.", "success")
        return redirect(url_for("series.show", ref=series.slug))
    return render_form("series/form.html", form=form, series=None)


@bp.route("/<ref>/edit", methods=["GET", "POST"])
@organiser_required
def edit(ref: str):
    series = _series(ref)
    form = SeriesForm(obj=series if request.method == "GET" else None)
    if form.validate_on_submit():
        with transaction(form) as outcome:
            series_service.update_series(series, form.name.data, form.description.data or "")
        if not outcome.refused:
            flash("Series saved. Its page and calendar show the new name and description.", "success")
            return redirect(url_for("series.show", ref=series.slug))
    return render_form("series/form.html", form=form, series=series)


def _follow_form(follow) -> FollowForm:
    if request.method == "POST":
        return FollowForm()
    if follow is None:
        return FollowForm(formdata=None)
    return FollowForm(formdata=None, standing=follow.standing.value, in_feed=follow.in_feed)


@bp.route("/<ref>")
def show(ref: str):
    series = _series(ref)
    me = signed_in_member()
    return _page(series, me, None)


def _page(series: MeetingSeries, me: Member | None, form: FollowForm | None):
    """The series page; `form` is a refused follow form to show again, else the member's current choice."""
    page = series_service.page(series, member=me, organiser=is_organiser())
    if form is None and me is not None:
        form = _follow_form(page.following)
    return render_form(
        "series/show.html",
        page=page,
        series=series,
        organiser=is_organiser(),
        form=form,
        unfollow_form=ConfirmForm(formdata=None),
    )


def _followed_message(series: MeetingSeries, result: series_service.Followed) -> str:
    standing = result.follow.standing
    said = "You follow" if result.created else "You still follow"
    message = f"{said} \u201c{series.name}\u201d: "
    if standing.is_going:
        message += "you are counted in for each new meeting unless you say otherwise."
    else:
        message += "you will be invited to each new meeting."
    if result.answered:
        waiting = sum(1 for r in result.answered if r.rsvp.is_waiting)
        message += f" Your answer to {plural(len(result.answered), 'upcoming meeting')} is now Going"
        message += (
            f" ({waiting} on the waiting list); a confirmation is on its way."
            if waiting
            else "; a confirmation is on its way."
        )
    return message


def _follow(series: MeetingSeries, member: Member, form: FollowForm, done_url: str):
    standing = parse_choice(StandingAnswer, form.standing.data) or StandingAnswer.INVITE
    with transaction(form) as outcome:
        result = series_service.follow(series, member, standing, in_feed=bool(form.in_feed.data))
    if outcome.refused:
        return None
    flash(_followed_message(series, result), "success")
    return redirect(done_url)


@bp.route("/<ref>/follow", methods=["POST"])
@login_required
def follow(ref: str):
    series = _series(ref)
    form = FollowForm()
    me = signed_in_member()
    assert me is not None
    if form.validate_on_submit():
        done = _follow(series, me, form, url_for("series.show", ref=series.slug))
        if done is not None:
            return done
    return _page(series, me, form)


@bp.route("/<ref>/unfollow", methods=["POST"])
@login_required
def unfollow(ref: str):
    series = _series(ref)
    require_confirmation()
    me = signed_in_member()
    assert me is not None
    with transaction():
        stopped = series_service.unfollow(series, me)
    flash(
        f"You no longer follow \u201c{series.name}\u201d. Your answers to its meetings stay as they are."
        if stopped
        else f"You were not following \u201c{series.name}\u201d.",
        "success" if stopped else "info",
    )
    return redirect(url_for("series.show", ref=series.slug))


@bp.route("/<ref>/follow/<token>", methods=["GET", "POST"])
def follow_by_link(ref: str, token: str):
    """The follow link in every email about a meeting of the series: the choice for the member it names, without
    signing in. GET shows the choice (mail scanners follow links); only the button follows."""
    series = _series(ref)
    member = member_by_token(series, token)
    if member is None:
        return broken_link(url_for("series.show", ref=series.slug), "series page")
    current = series_service.follow_of(series, member)
    form = _follow_form(current)
    done_url = url_for("series.follow_by_link", ref=series.slug, token=token)
    if form.validate_on_submit():
        done = _follow(series, member, form, done_url)
        if done is not None:
            return done
    return render_form(
        "series/follow.html",
        series=series,
        member=member,
        form=form,
        following=current,
        unfollow_url=url_for("series.unfollow_by_link", ref=series.slug, token=token),
    )


@bp.route("/<ref>/unfollow/<token>", methods=["GET", "POST"])
@csrf.exempt
def unfollow_by_link(ref: str, token: str):
    """The unfollow link of series emails and their List-Unsubscribe header. GET asks; a POST unfollows, whether
    the page's button or a mail client's one-click unsubscribe (RFC 8058: `List-Unsubscribe=One-Click`, no
    session, no CSRF token: the signed link is the authority, and it names one member and one series)."""
    series = _series(ref)
    member = member_by_token(series, token)
    if member is None:
        return broken_link(url_for("series.show", ref=series.slug), "series page")
    if request.method == "POST":
        with transaction():
            stopped = series_service.unfollow(series, member)
        return render_template("series/unfollowed.html", series=series, member=member, stopped=stopped, token=token)
    return render_template(
        "series/unfollow.html", series=series, member=member, following=series_service.follow_of(series, member)
    )


@bp.route("/<ref>/followers")
@organiser_required
def followers(ref: str):
    series = _series(ref)
    return render_template("series/followers.html", series=series, follows=follows.followers(series))
