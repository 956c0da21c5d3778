"""Workshop rooms: the organisers' rooms page (who sits where, scribes, breakout instructions), every room's progress
during the meeting, and the scribe page a scribe link opens."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from wtforms import BooleanField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from .. import timefmt
from ..csvsafe import to_csv
from ..forms import SiteForm, no_control_chars_in_text
from ..models import Meeting, parse_id, utcnow
from ..security import client_address, hit_rate_limit, organiser_required
from ..services import meetings as meeting_service
from ..services import rooms as room_service
from ..services.rooms.plan import MAX_INSTRUCTIONS
from ..services.rooms.scribes import MAX_ANSWER
from ..wording import plural
from .form_pages import REFUSED, render_form, require_confirmation
from .transactions import transaction

bp = Blueprint("rooms", __name__, url_prefix="/meetings")
bp.add_app_template_global(room_service.why_not_changeable, "why_not_rooms_changeable")

NOT_PLACED = "0"


@bp.after_request
def never_cached(response):
    """Every rooms page is for one organiser or one scribe (a scribe page's address is its key): never kept by a
    cache, whether or not the view happened to ask who is signed in."""
    response.headers.setdefault("Cache-Control", "private, no-store")
    return response


class AssignForm(SiteForm):
    start_again = BooleanField("Start again: move members already placed too")


class InstructionsForm(SiteForm):
    instructions = TextAreaField(
        "Breakout instructions",
        validators=[Length(max=MAX_INSTRUCTIONS), no_control_chars_in_text],
        description="How to reach the room in the online meeting; each member sees them with her room.",
    )


class ScribeForm(SiteForm):
    room = SelectField("Room", choices=[])
    member = SelectField("Scribe", choices=[])


def _meeting(ref: str) -> Meeting:
    meeting = meeting_service.find_meeting(ref, load_details=True)
    if meeting is None:
        abort(404)
    return meeting


def _places_form(meeting: Meeting, seats: list[room_service.Seat]) -> SiteForm:
    """A select per member going, named by her id: the rooms of this meeting, or not placed."""
    choices = [SelectChoice(NOT_PLACED, "Not placed")]
    choices += [SelectChoice(str(room.id), room.name) for room in meeting.workshop_rooms]
    fields = {
        f"member_{seat.member.id}": SelectField(
            seat.member.name, choices=choices, default=str(seat.room_id or NOT_PLACED)
        )
        for seat in seats
    }
    return type("PlacesForm", (SiteForm,), fields)()


def _scribe_form(meeting: Meeting, going) -> ScribeForm:
    form = ScribeForm()
    form.room.choices = [SelectChoice(str(room.id), room.name) for room in meeting.workshop_rooms]
    form.member.choices = [
        SelectChoice(str(m.id), f"{m.name} ({m.organisation})" if m.organisation else m.name) for m in going
    ]
    return form


def _rooms_page(meeting: Meeting, **forms) -> ResponseReturnValue:
    seats = room_service.seats(meeting)
    plan = room_service.plan_of(meeting)
    scribes = room_service.scribes_of(meeting)
    forms.setdefault("assign_form", AssignForm(formdata=None))
    forms.setdefault("places_form", _places_form(meeting, seats))
    forms.setdefault(
        "instructions_form",
        InstructionsForm(formdata=None, instructions=plan.breakout_instructions if plan else ""),
    )
    forms.setdefault("scribe_form", _scribe_form(meeting, [seat.member for seat in seats]))
    return render_form(
        "rooms/index.html",
        meeting=meeting,
        seats=seats,
        plan=plan,
        scribes=[(scribe, room_service.scribe_url(scribe)) for scribe in scribes],
        **forms,
    )


def _back(meeting: Meeting) -> ResponseReturnValue:
    return redirect(url_for("rooms.index", ref=meeting.slug))


@bp.route("/<ref>/rooms")
@organiser_required
def index(ref: str):
    return _rooms_page(_meeting(ref))


def _form_post(ref: str, name: str, make_form, change, done: str) -> ResponseReturnValue:
    """A form of the rooms page: checked, then `change(meeting, form)` in one transaction; refused, the page again
    with the messages next to the fields, otherwise back to the page with `done` (or what `change` returned)."""
    meeting = _meeting(ref)
    form = make_form(meeting)
    if form.validate_on_submit():
        with transaction(form) as outcome:
            done = change(meeting, form) or done
        if not outcome.refused:
            flash(done, "success")
            return _back(meeting)
    return _rooms_page(meeting, **{name: form})


def _button(ref: str, change, done: str, back: str = "rooms.index") -> ResponseReturnValue:
    """A one-button action on a meeting's rooms; a refusal is flashed."""
    meeting = _meeting(ref)
    require_confirmation()
    with transaction() as outcome:
        change(meeting)
    if not outcome.refused:
        flash(done, "success")
    return redirect(url_for(back, ref=meeting.slug))


@bp.route("/<ref>/rooms/assign", methods=["POST"])
@organiser_required
def assign(ref: str):
    def place(meeting: Meeting, form: AssignForm) -> str:
        placed = room_service.assign_automatically(meeting, start_again=form.start_again.data)
        if not placed:
            return "Nobody is going yet, so there is nobody to place."
        return f"{plural(placed, 'member')} placed in {plural(len(meeting.workshop_rooms), 'room')}."

    return _form_post(ref, "assign_form", lambda meeting: AssignForm(), place, "")


@bp.route("/<ref>/rooms/places", methods=["POST"])
@organiser_required
def places(ref: str):
    def place(meeting: Meeting, form: SiteForm) -> None:
        prefix = "member_"
        choices = {
            int(name[len(prefix) :]): parse_id(f.data) for name, f in form._fields.items() if name.startswith(prefix)
        }
        room_service.assign_by_hand(meeting, choices)

    return _form_post(
        ref, "places_form", lambda meeting: _places_form(meeting, room_service.seats(meeting)), place, "Rooms saved."
    )


@bp.route("/<ref>/rooms/lock", methods=["POST"])
@organiser_required
def lock(ref: str):
    done = "Rooms locked: each member going now sees her room on the meeting page."
    return _button(ref, room_service.lock, done)


@bp.route("/<ref>/rooms/unlock", methods=["POST"])
@organiser_required
def unlock(ref: str):
    done = "Rooms unlocked: members no longer see their room until you lock them again."
    return _button(ref, room_service.unlock, done)


@bp.route("/<ref>/rooms/instructions", methods=["POST"])
@organiser_required
def instructions(ref: str):
    return _form_post(
        ref,
        "instructions_form",
        lambda meeting: InstructionsForm(),
        lambda meeting, form: room_service.set_instructions(meeting, form.instructions.data or ""),
        "Breakout instructions saved.",
    )


@bp.route("/<ref>/rooms/scribes", methods=["POST"])
@organiser_required
def add_scribe(ref: str):
    def name(meeting: Meeting, form: ScribeForm) -> None:
        room_service.name_scribe(meeting, int(form.room.data), int(form.member.data))

    return _form_post(
        ref,
        "scribe_form",
        lambda meeting: _scribe_form(meeting, room_service.going_members(meeting)),
        name,
        "Scribe named: their scribe link is on its way to them by email.",
    )


_SCRIBE_ACTIONS = {
    "send": (room_service.send_link_again, "The scribe link is on its way again by email."),
    "remove": (room_service.remove_scribe, "Scribe removed: their link no longer works."),
}


@bp.route("/<ref>/rooms/scribes/<id:scribe_id>/<any(send, remove):action>", methods=["POST"])
@organiser_required
def scribe_action(ref: str, scribe_id: int, action: str):
    """Email a scribe's link again, or take it back."""
    change, done = _SCRIBE_ACTIONS[action]
    return _button(ref, lambda meeting: change(meeting, scribe_id), done)


@bp.route("/<ref>/rooms.csv")
@organiser_required
def export(ref: str):
    """Who sat in which room and what each scribe wrote, as a spreadsheet."""
    meeting = _meeting(ref)
    filename = f"rooms-{meeting.slug}.csv"
    return Response(
        to_csv(room_service.export_rows(meeting)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.route("/<ref>/rooms/progress")
@organiser_required
def progress(ref: str):
    meeting = _meeting(ref)
    return render_template("rooms/progress.html", meeting=meeting, rooms=room_service.progress(meeting))


# The scribe page ------------------------------------------------------------------------------------


def _scribe_page(meeting, scribe, token: str, form: SiteForm | None = None, status: int = 200):
    room = scribe.room
    written = room_service.answers_in_room(room)
    mine = {a.question_id: a for answers in written.values() for a in answers if a.scribe_id == scribe.id}
    if form is None:
        form = _answers_form(room)(formdata=None, **{f"q{qid}": answer.body for qid, answer in mine.items()})
    page = render_template(
        "rooms/scribe.html", meeting=meeting, scribe=scribe, token=token, form=form, mine=mine, written=written
    )
    return page, status


def _answers_form(room) -> type[SiteForm]:
    fields = {
        f"q{question.id}": TextAreaField(question.text, validators=[Length(max=MAX_ANSWER), no_control_chars_in_text])
        for question in room.questions
    }
    return type("AnswersForm", (SiteForm,), fields)


@bp.route("/<ref>/rooms/<id:room_id>/scribe/<token>", methods=["GET", "POST"])
def scribe(ref: str, room_id: int, token: str):
    """The page a scribe link opens, without signing in: the room's questions, each with the scribe's own text.
    GET only reads; the Save button (or the page's script, as the scribe types) POSTs."""
    meeting = meeting_service.find_meeting(ref, load_details=True)
    if meeting is None or meeting.is_draft:
        abort(404)
    found = room_service.scribe_by_token(meeting, room_id, token)
    if found is None:
        # Guessing is counted per client address, as for sign-in links: a 429 long before a secret could be found.
        config = current_app.config
        with transaction():
            hit_rate_limit(
                f"scribe-link:ip:{client_address()}",
                limit=config["LOGIN_RATE_LIMIT_PER_CLIENT"],
                window_seconds=config["LOGIN_RATE_WINDOW_SECONDS"],
            )
        abort(404)
    closed = room_service.why_not_writable(meeting)
    if closed:
        return render_template("rooms/scribe_closed.html", meeting=meeting, reason=closed), 410
    if request.method == "GET":
        return _scribe_page(meeting, found, token)
    form = _answers_form(found.room)()
    quiet = request.headers.get("X-Requested-With") == "fetch"
    if not form.validate_on_submit():
        if quiet:
            return jsonify(saved=False, errors=form.errors), REFUSED
        return _scribe_page(meeting, found, token, form, REFUSED)
    texts = {
        question.id: form[f"q{question.id}"].data or ""
        for question in found.room.questions
        if f"q{question.id}" in request.form
    }
    with transaction(form, show=not quiet) as outcome:
        room_service.save_answers(found, texts)
    if quiet:
        if outcome.error is not None:
            return jsonify(saved=False, errors={"": [outcome.error.message]}), REFUSED
        return jsonify(saved=True, saved_at=timefmt.clock_in_zone(utcnow(), meeting.timezone))
    if outcome.refused:
        return _scribe_page(meeting, found, token, form, REFUSED)
    flash("Saved.", "success")
    return redirect(url_for("rooms.scribe", ref=meeting.slug, room_id=room_id, token=token))


# Taking the rooms' later changes into the notes -------------------------------------------------------


@bp.route("/<ref>/rooms/answers/<id:answer_id>/taken-in", methods=["POST"])
@organiser_required
def take_in(ref: str, answer_id: int):
    return _button(ref, lambda meeting: room_service.take_in(meeting, answer_id), "Marked taken in.", "notes.edit")


@bp.route("/<ref>/rooms/answers/taken-in", methods=["POST"])
@organiser_required
def take_in_all(ref: str):
    done = "Every change from the rooms marked taken in."
    return _button(ref, room_service.take_in, done, "notes.edit")


# A member's preferred room ------------------------------------------------------------------------------


class PreferenceForm(SiteForm):
    room = StringField("Which room would you like to be in?")


@bp.route("/<ref>/rooms/preference", methods=["POST"])
@login_required
def preference(ref: str):
    meeting = meeting_service.find_meeting(ref, load_details=True)
    if meeting is None or meeting.is_draft:
        abort(404)
    form = PreferenceForm()
    if not form.validate_on_submit():
        abort(400)
    with transaction() as outcome:
        room_service.set_preference(meeting, current_user, parse_id(form.room.data))
    if not outcome.refused:
        flash("Your choice of room is saved.", "success")
    return redirect(url_for("meetings.show", ref=meeting.slug, _anchor="rooms-heading"))
