"""Meeting pages, answering, and the organisers' scheduling and attendee tools."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import TypeVar
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask.globals import request_ctx
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from markupsafe import Markup, escape
from sqlalchemy import case, select
from sqlalchemy.orm import joinedload
from wtforms import SelectChoice

from .. import timefmt
from ..csvsafe import to_csv
from ..database import reads_first, reads_only
from ..extensions import csrf, db
from ..forms import CancelMeetingForm, ConfirmForm, LinkRsvpForm, MeetingForm, RsvpForm, WalkInForm
from ..models import (
    ANSWERS_CHANGED,
    Answer,
    Meeting,
    Member,
    Rsvp,
    Visibility,
    parse_choice,
    parse_id,
    utcnow,
)
from ..security import is_organiser, organiser_required, prefetch_answer, prefetched_answer
from ..services import guests as guest_service
from ..services import invitations as invitation_service
from ..services import meetings as meeting_service
from ..services import messages as message_service
from ..services import notices as notice_service
from ..services import rooms as room_service
from ..services import rsvps as rsvp_service
from ..services import series as series_service
from ..services.follows import member_token
from ..wording import plural
from .form_pages import REFUSED, render_form, require_confirmation
from .link_pages import broken_link
from .public_pages import SignedIn, hole, page_for_members, part_for_many, same_for_every_visitor
from .transactions import transaction

T = TypeVar("T")

bp = Blueprint("meetings", __name__, url_prefix="/meetings")
# Pages offer only what the meeting's state allows, by the rules the actions themselves enforce.
for _rule in (meeting_service.why_not_editable, meeting_service.why_not_cancellable, meeting_service.why_not_deletable):
    bp.add_app_template_global(_rule)
# What the organiser's part of the meeting page warns of: an update waiting to go, agenda items outside the meeting.
bp.add_app_template_global(notice_service.pending_update)
bp.add_app_template_global(meeting_service.misplaced_agenda)

BLANK_ROWS = 2
# /meetings/past: the archive's address guessed from a meeting's, unless a meeting is named so.
PAST = "past"


def load_meeting(ref: str, *, details: bool = False) -> Meeting:
    """The meeting named in the URL, or 404 for anyone who may not see it."""
    meeting = meeting_service.find_meeting(ref, load_details=details)
    return _visible(meeting)


def _meeting_to_show(ref: str) -> Meeting:
    """The meeting its page shows: organisers see their own changes at once; everyone else reads the copy a process
    keeps for a few seconds (services.meetings.meeting_to_read). That copy is taken first, organisers included, so
    that the member's session, read next, reads her answer to it in the same statement."""
    copy = meeting_service.meeting_to_read(ref)
    if copy is not None:
        prefetch_answer(copy.id)
    return load_meeting(ref, details=True) if is_organiser() else _visible(copy)


def _visible(meeting: Meeting | None) -> Meeting:
    if meeting is None or (meeting.is_draft and not is_organiser()):
        abort(404)
    return meeting


def back_to(meeting: Meeting) -> ResponseReturnValue:
    """Where an action on a meeting ends: its page, which says what the action did."""
    return redirect(url_for("meetings.show", ref=meeting.slug))


def organiser_meeting(ref: str, *, details: bool = False) -> Meeting:
    """The meeting named in the URL, drafts too, for views that are @organiser_required; 404 when there is none."""
    meeting = meeting_service.find_meeting(ref, load_details=details)
    if meeting is None:
        abort(404)
    return meeting


def confirmed_meeting(ref: str) -> Meeting:
    """The meeting a one-button POST acts on: 404 when there is none, 400 when the form does not check out."""
    meeting = organiser_meeting(ref)
    require_confirmation()
    return meeting


# Public pages ---------------------------------------------------------------------------------------


@bp.route("/<ref>")
@same_for_every_visitor
@reads_only
def show(ref: str):
    if ref == PAST and meeting_service.meeting_to_read(ref) is None:
        return redirect(url_for("main.past_meetings"))
    meeting = _meeting_to_show(ref)
    if not meeting.is_public and not current_user.is_authenticated:
        flash("This meeting is for members of the network. Please sign in to see its details.", "info")
        return redirect(url_for("auth.sign_in", next=url_for("meetings.show", ref=meeting.slug)))
    return render_meeting(meeting)


def render_meeting(meeting: Meeting, form: RsvpForm | None = None, status: int = 200):
    """The meeting page as the signed-in member (or a visitor) sees it."""
    member = current_user if current_user.is_authenticated else None
    return _meeting_page(meeting, member, form, status, organiser=is_organiser())


def _rsvp_of(meeting: Meeting, member: Member | None) -> Rsvp | None:
    if member is None:
        return None
    if (found := prefetched_answer(meeting.id, member.id)) is not None:
        return found.rsvp
    return rsvp_service.rsvp_of(meeting.id, member.id)


def _guests(meeting: Meeting) -> Markup:
    """Who else is coming, as every member going sees it: kept for each version of the meeting's answers, and
    rendered afresh by a transaction that has just changed them."""

    def render() -> str:
        return render_template("meetings/_guests.html", guests=guest_service.guest_list(meeting))

    if db.session.info.get(ANSWERS_CHANGED):
        return Markup(render())
    return part_for_many("kxn_guest_lists", (meeting.id, meeting.answers_version), render)


def _follow_url(meeting: Meeting, member: Member | None, token: str | None) -> str | None:
    """Where the meeting page offers to follow its series: the member's own follow link on her personal link's page
    (no sign-in needed), else the series page."""
    if meeting.series is None:
        return None
    if token is not None and member is not None:
        return url_for(
            "series.follow_by_link", ref=meeting.series.slug, token=member_token(meeting.series.id, member.id)
        )
    return url_for("series.show", ref=meeting.series.slug, _anchor="follow-heading")


def _meeting_page(
    meeting: Meeting,
    member: Member | None,
    form: RsvpForm | None,
    status: int,
    *,
    organiser: bool = False,
    token: str | None = None,
    chosen: str | None = None,
    answered: str | None = None,
):
    """The meeting page for `member` (None: a visitor). With `token` it is her personal link's page: it shows
    what she may see and nothing of whoever the browser is signed in as. `chosen` is an answer picked in the
    email, shown ready to confirm; `answered` (ANSWERED), what her answer through the link just did, said from her
    answer as it now stands."""
    my_rsvp = _rsvp_of(meeting, member)
    if not organiser and _changed_within_the_lag(my_rsvp):
        # The copy of the meeting may be older than her answer: the page right after it would count the places and
        # list who is coming without her. Read afresh, it shows what her answer did.
        meeting = meeting_service.find_meeting(meeting.id, load_details=True) or meeting
    if (
        member is not None
        and form is None
        and status == 200
        and not (organiser or token or chosen or meeting.workshop_rooms)
        and not (session.get("_flashes") or request_ctx.flashes)
    ):
        return _page_for_members_alike(meeting, member, my_rsvp), status
    said = _answer_words(meeting, my_rsvp, changed=answered == ANSWERED[0]) if answered in ANSWERED else None
    return _render_meeting_page(
        meeting, member, my_rsvp, form, status, organiser=organiser, token=token, chosen=chosen, said=said
    ), status


def _changed_within_the_lag(rsvp: Rsvp | None) -> bool:
    """Whether her answer changed within the time the copy of a meeting a page shows may lag (PUBLIC_PAGE_SECONDS)."""
    lag = current_app.config["PUBLIC_PAGE_SECONDS"]
    return rsvp is not None and lag > 0 and rsvp.updated_at > utcnow() - dt.timedelta(seconds=lag)


def _page_for_members_alike(meeting: Meeting, member: Member, my_rsvp: Rsvp | None) -> str:
    """A signed-in member's page of a meeting without workshop rooms: the same for every member whose answer is in
    the same state, but for her name, what she wrote, her place on the waiting list and her CSRF token
    (public_pages.page_for_members)."""
    fill: dict[str, str] = {"name": escape(member.name)}
    state = None
    if my_rsvp is not None:
        state = (my_rsvp.answer, my_rsvp.is_waiting, bool(my_rsvp.access_needs), bool(my_rsvp.comment))
        fill.update(access_needs=escape(my_rsvp.access_needs), comment=escape(my_rsvp.comment))
        if my_rsvp.is_waiting:
            fill["position"] = str(rsvp_service.waiting_position(my_rsvp))

    def render() -> str:
        return _render_meeting_page(meeting, member, my_rsvp, None, 200, holes=True)

    return page_for_members((meeting.id, state), render, fill, copy=meeting)


def _render_meeting_page(
    meeting: Meeting,
    member: Member | None,
    my_rsvp: Rsvp | None,
    form: RsvpForm | None,
    status: int,
    *,
    organiser: bool = False,
    token: str | None = None,
    chosen: str | None = None,
    holes: bool = False,
    said: tuple[str, str] | None = None,
) -> str:
    """The meeting page; with `holes`, for page_for_members(): what is the member's own is a hole()."""

    def own(text: str, name: str) -> str:
        return hole(name) if holes and text else text

    if form is None and member is not None:
        # Only members get the form: building one for visitors would set a session cookie on a public page. A personal
        # link's form carries the link's own token, so its page sets no cookie at all.
        form = (RsvpForm if token is None else functools.partial(LinkRsvpForm, token))(
            data={
                "answer": chosen or (my_rsvp.answer.value if my_rsvp else None),
                "access_needs": own(my_rsvp.access_needs, "access_needs") if my_rsvp else "",
                "comment": own(my_rsvp.comment, "comment") if my_rsvp else "",
            }
        )
    count = rsvp_service.page_counts([meeting])[meeting.id]
    going = my_rsvp is not None and my_rsvp.is_going and bool(meeting.workshop_rooms)
    answer_url = (
        url_for("meetings.personal_answer", ref=meeting.slug, token=token)
        if token
        else url_for("meetings.rsvp", ref=meeting.slug)
    )
    if my_rsvp is None or not my_rsvp.is_waiting:
        position: str | int | None = None
    else:
        position = hole("position") if holes else rsvp_service.waiting_position(my_rsvp)
    context = {"current_user": SignedIn()} if holes else {}
    # Once it is over, a meeting is no longer offered for calendars, nor its join link to members.
    ended = meeting.ends_at <= utcnow()
    return render_template(
        "meetings/show.html",
        ended=ended,
        meeting=meeting,
        count=count,
        places_left=count.places_left(meeting.capacity),
        member=member,
        my_rsvp=my_rsvp,
        my_position=position,
        closed=rsvp_service.closed_reason(meeting),
        form=form,
        answer_url=answer_url,
        # The change-answer form starts open when it has something to say: a refusal, or an answer chosen in the
        # email that differs from the one recorded.
        change_open=status != 200 or (chosen is not None and my_rsvp is not None and chosen != my_rsvp.answer.value),
        show_join=rsvp_service.may_see_join_link(meeting, my_rsvp, organiser=organiser) and (organiser or not ended),
        ics_url=(
            url_for("calendar.personal_meeting_ics", ref=meeting.slug, token=token)
            if token
            else url_for("calendar.meeting_ics", ref=meeting.slug)
        ),
        personal=token is not None,
        follow_url=_follow_url(meeting, member, token),
        organiser_view=organiser,
        guests=_guests(meeting) if guest_service.may_see_guest_list(meeting, my_rsvp) else None,
        my_room=room_service.room_of(meeting, member) if going else None,
        # Chosen while signed in only: a personal link answers and reads, it changes nothing else.
        room_choice=room_service.room_choice(meeting, member) if going and token is None else None,
        message_log=message_service.sent_to(meeting) if organiser and not meeting.is_draft else None,
        # Shown with the flashed messages, as (category, message), without a session to carry them.
        page_messages=[(said[1], said[0])] if said else [],
        **context,
    )


@bp.route("/<ref>/rsvp", methods=["POST"])
@reads_first
@login_required
def rsvp(ref: str):
    # The answer itself locks and reads the meeting afresh (rsvp_service.answer).
    meeting = _meeting_to_show(ref)
    form = RsvpForm()
    if not form.validate_on_submit():
        return render_meeting(meeting, form, REFUSED)
    return _record_answer(meeting, current_user, form, url_for("meetings.show", ref=meeting.slug))


def _record_answer(meeting: Meeting, member: Member, form: RsvpForm, done_url: str):
    """Record a signed-in member's answer and go back to the page, with what it did flashed once committed."""
    with transaction() as outcome:
        result = rsvp_service.answer(
            meeting.id, member, Answer(form.answer.data), access_needs=_access_needs(form), comment=_comment(form)
        )
        notice_service.queue_answer_notices(result)
        # Worded before the commit, which expires what the answer loaded (afterwards it would be read again).
        said = _answer_said(result.meeting.title, result.rsvp.answer, result.waiting_position, changed=result.changed)
    if not outcome.refused:
        flash(*said)
    return redirect(f"{done_url}#rsvp")


def _record_link_answer(meeting: Meeting, token: str, form: RsvpForm, done_url: str):
    """Record an answer through a personal link and go back to its page. The link has no session to flash in: the
    page is told in its address (ANSWERED) and says it from her answer as it then stands. A link that is not (or no
    longer) an active member's to this meeting is a 404, with nothing changed."""
    with transaction() as outcome:
        result = rsvp_service.answer_through_link(
            meeting.id, token, Answer(form.answer.data), access_needs=_access_needs(form), comment=_comment(form)
        )
        if result is None:
            abort(404)
        notice_service.queue_answer_notices(result, link=result.link)
    if outcome.refused:
        return redirect(f"{done_url}#rsvp")
    return redirect(f"{done_url}?answered={ANSWERED[0] if result.changed else ANSWERED[1]}#rsvp")


def _access_needs(form: RsvpForm) -> str:
    return (form.access_needs.data or "").strip()


def _comment(form: RsvpForm) -> str:
    return (form.comment.data or "").strip()


# What an answer through a personal link tells the page it goes back to: ?answered=changed or unchanged.
ANSWERED = ("changed", "unchanged")


def _answer_words(meeting: Meeting, rsvp: Rsvp | None, *, changed: bool) -> tuple[str, str] | None:
    """What the page says of the answer just given, from her answer as it stands; nothing where she has none."""
    if rsvp is None or rsvp.is_walk_in:
        return None
    return _answer_said(meeting.title, rsvp.answer, rsvp_service.waiting_position(rsvp), changed=changed)


def _answer_said(title: str, answer: Answer, waiting_position: int | None, *, changed: bool) -> tuple[str, str]:
    if waiting_position is not None and not changed:
        return f"You are already on the waiting list at position {waiting_position}. Nothing changed.", "info"
    if waiting_position is not None:
        return (
            f"The meeting is full, so you are on the waiting list at position {waiting_position}. "
            "We will email you if a place frees up.",
            "warning",
        )
    if not changed:
        return f"Your answer was already \u201c{answer.label}\u201d. Nothing changed.", "info"
    return f"Thank you. Your answer is \u201c{answer.label}\u201d for {title}.", "success"


@bp.route("/<ref>/answer/<token>", methods=["GET", "POST"])
@csrf.exempt
@reads_first
def personal_answer(ref: str, token: str):
    """The link in every invitation and notice: the whole meeting page for the one member it names, members-only
    details included, where she answers without signing in. The token opens this page and nothing else: no
    sign-in, no other meeting, nobody else's answers. GET shows the page; only the button POSTs, with the CSRF
    token of the link's form (forms.LinkRsvpForm) in place of a session's: neither sets nor needs a cookie."""
    # The copy a process keeps: the answer itself locks and reads the meeting afresh (rsvp_service.answer).
    meeting = meeting_service.meeting_to_read(ref)
    if meeting is None or meeting.is_draft:
        abort(404)
    form = LinkRsvpForm(token) if request.method == "POST" else None
    if form is not None and form.validate_on_submit():
        # The link is read with the meeting under its lock (rsvp_service.answer_through_link), in one statement.
        return _record_link_answer(
            meeting, token, form, url_for("meetings.personal_answer", ref=meeting.slug, token=token)
        )
    invitation = rsvp_service.invitation_by_token(meeting.id, token)
    if invitation is None:
        return broken_link(url_for("meetings.show", ref=meeting.slug), "meeting's page")
    member = invitation.member
    if form is not None:
        return _meeting_page(meeting, member, form, REFUSED, token=token)
    chosen = request.args.get("answer")
    return _meeting_page(
        meeting,
        member,
        None,
        200,
        token=token,
        chosen=chosen if chosen in {a.value for a in Answer} else None,
        answered=request.args.get("answered"),
    )


# Organiser tools ------------------------------------------------------------------------------------


def _contacts() -> list[SelectChoice]:
    rows = db.session.execute(
        select(Member.id, Member.name, Member.organisation).where(Member.active.is_(True)).order_by(Member.name)
    ).all()
    return [SelectChoice("0", "— nobody —")] + [
        SelectChoice(str(r.id), f"{r.name} ({r.organisation})" if r.organisation else r.name) for r in rows
    ]


def _meeting_form(**kwargs) -> MeetingForm:
    form = MeetingForm(**kwargs)
    form.contact_id.choices = _contacts()
    form.series_id.choices = [SelectChoice(str(id_), name) for id_, name in series_service.choices()]
    return form


def _prepare(form: MeetingForm) -> MeetingForm:
    """Room for more rows before the form is shown again, and the agenda rows outside the meeting's time marked."""
    if not form.timezone.data:
        form.timezone.data = current_app.config["TIMEZONE"]
    form.agenda_outside = _agenda_outside(form)
    while len(form.agenda.entries) < len(
        [e for e in form.agenda.entries if not e.form.is_blank()]
    ) + BLANK_ROWS and len(form.agenda.entries) < (form.agenda.max_entries or 40):
        form.agenda.append_entry()
    while len(form.rooms.entries) < len([e for e in form.rooms.entries if not e.form.is_blank()]) + 1 and len(
        form.rooms.entries
    ) < (form.rooms.max_entries or 20):
        form.rooms.append_entry()
    return form


def _agenda_outside(form: MeetingForm) -> frozenset[int]:
    """Which agenda rows have a time outside the meeting's, by the times in the form as they stand."""
    day, start, end = form.date.data, form.start_time.data, form.end_time.data
    if day is None or start is None or end is None:
        return frozenset()
    try:
        zone = ZoneInfo(form.timezone.data)
    except Exception:
        return frozenset()  # the form says so next to the field
    starts_at = dt.datetime.combine(day, start, tzinfo=zone)
    ends_at = dt.datetime.combine(form.end_date.data or day, end, tzinfo=zone)
    rows = {
        i: meeting_service.AgendaRow(title="", start_time=entry.form.start_time.data)
        for i, entry in enumerate(form.agenda.entries)
        if not entry.form.is_blank()
    }
    outside = meeting_service.agenda_outside(starts_at, ends_at, zone.key, list(rows.values()))
    return frozenset(i for i, row in rows.items() if any(row is other for other in outside))


class NoSuchTime(ValueError):
    pass


class RepeatedTime(ValueError):
    pass


def _local(day: dt.date, clock: dt.time, zone: ZoneInfo, fold: int | None = 0) -> dt.datetime:
    """A wall-clock time in a zone as a UTC instant. NoSuchTime when the clocks skip that time (or the calendar
    runs out, for year 1 or 9999 in a zone far from UTC); RepeatedTime when they go back over it and `fold`
    (0 for the first time, 1 for the second) is None."""
    local = dt.datetime.combine(day, clock, tzinfo=zone)
    try:
        repeated = timefmt.repeated_times(day, clock, zone)
        if repeated and fold is None:
            raise RepeatedTime(
                f"{clock:%H:%M} happens twice in {zone.key} on that day, as the clocks go back: choose which."
            )
        local = local.replace(fold=fold or 0)
        instant = local.astimezone(dt.UTC)
        back = instant.astimezone(zone)
    except OverflowError:
        raise NoSuchTime("Check the year: that date is too far away.") from None
    if back.replace(tzinfo=None, fold=0) != local.replace(tzinfo=None, fold=0):
        raise NoSuchTime(f"That time does not exist in {zone.key} on that day: the clocks go forward.")
    return instant


def _offer_repeated(form: MeetingForm, name: str, day: dt.date | None, clock: dt.time | None, zone: ZoneInfo) -> None:
    """Show the choice between the two times when the clocks go back over the one given."""
    choice = form[FOLD_FIELDS[name]]
    choice.choices = (
        [SelectChoice(str(fold), label) for fold, label in timefmt.repeated_times(day, clock, zone)]
        if day is not None and clock is not None
        else []
    )


FOLD_FIELDS = {"start_time": "start_fold", "end_time": "end_fold"}


def _form_to_data(form: MeetingForm) -> meeting_service.MeetingData | None:
    """The meeting the form describes, or None when its times cannot be read. An agenda item without a title is
    marked on the form (_agenda_refused) and still read, so that the meeting's rules can be checked as well."""
    zone_name = form.timezone.data
    try:
        zone = ZoneInfo(zone_name)
    except Exception:
        form.timezone.errors.append("Choose a time zone from the list.")
        return None
    times = {}
    for name, day, clock in (
        ("start_time", form.date.data, form.start_time.data),
        ("end_time", form.end_date.data or form.date.data, form.end_time.data),
        ("rsvp_deadline_time", form.rsvp_deadline_date.data, form.rsvp_deadline_time.data or dt.time(23, 59)),
    ):
        if day is None:
            continue
        fold: int | None = 0  # a deadline in a repeated hour is the first: the earlier, never too late
        if name in FOLD_FIELDS:
            _offer_repeated(form, name, day, clock, zone)
            chosen = form[FOLD_FIELDS[name]].data
            fold = int(chosen) if chosen in ("0", "1") else None
        try:
            times[name] = _local(day, clock, zone, fold)
        except NoSuchTime as problem:
            form[name].errors.append(str(problem))
        except RepeatedTime as problem:
            form[FOLD_FIELDS[name]].errors.append(str(problem))
    if len(times) < 2 + bool(form.rsvp_deadline_date.data):
        return None
    starts_at, ends_at, deadline = times["start_time"], times["end_time"], times.get("rsvp_deadline_time")
    if form.rsvp_deadline_time.data and not form.rsvp_deadline_date.data:
        form.rsvp_deadline_date.errors.append("Give the date of the answer-by time too.")
        return None
    agenda = [
        meeting_service.AgendaRow(
            title=e.form.title.data or e.form.speaker_name.data or "",
            start_time=e.form.start_time.data,
            speaker_name=e.form.speaker_name.data or "",
            speaker_role=e.form.speaker_role.data or "",
            speaker_organisation=e.form.speaker_organisation.data or "",
        )
        for e in form.agenda.entries
        if not e.form.is_blank()
    ]
    untitled = [
        e for e in form.agenda.entries if not e.form.is_blank() and not (e.form.title.data or e.form.speaker_name.data)
    ]
    for entry in untitled:
        entry.form.title.errors.append("Give this agenda item a title or a speaker.")
    rooms = [
        meeting_service.RoomRow(
            name=e.form.name.data or f"Room {i + 1}",
            questions=[q.strip() for q in (e.form.questions.data or "").splitlines() if q.strip()],
        )
        for i, e in enumerate(form.rooms.entries)
        if not e.form.is_blank()
    ]
    return meeting_service.MeetingData(
        title=form.title.data or "",
        theme=form.theme.data or "",
        description=form.description.data or "",
        starts_at=starts_at,
        ends_at=ends_at,
        timezone=zone_name,
        join_url=form.join_url.data or "",
        location=form.location.data or "",
        capacity=form.capacity.data,
        rsvp_deadline=deadline,
        visibility=parse_choice(Visibility, form.visibility.data) or Visibility.PUBLIC,
        contact_id=form.contact_id.data or None,
        series_id=form.series_id.data or None,
        agenda=agenda,
        rooms=rooms,
    )


_WHEN_FIELDS = (
    "date",
    "start_time",
    "end_time",
    "end_date",
    "timezone",
    "start_fold",
    "end_fold",
    "rsvp_deadline_date",
    "rsvp_deadline_time",
)


def _check_the_rest(form: MeetingForm, *, is_new: bool, copied_from: Meeting | None = None) -> None:
    """A form its own checks refused still has the meeting's rules applied to what could be read, so that the
    organiser sees every problem at once rather than one more after each correction. A field with a message
    already keeps it alone."""
    if any(form[name].errors for name in _WHEN_FIELDS) or None in (
        form.date.data,
        form.start_time.data,
        form.end_time.data,
    ):
        return
    data = _form_to_data(form)
    if data is not None:
        _apply_rules(form, data, is_new=is_new, copied_from=copied_from)


def _agenda_refused(form: MeetingForm) -> bool:
    return any(entry.form.title.errors for entry in form.agenda.entries)


def _apply_rules(
    form: MeetingForm, data: meeting_service.MeetingData, *, is_new: bool, copied_from: Meeting | None = None
) -> None:
    try:
        meeting_service.validate(data, is_new=is_new, copied_from=copied_from)
    except meeting_service.MeetingError as error:
        for problem in error.problems:
            if problem.field and problem.field in form and not form[problem.field].errors:
                form[problem.field].errors = [*form[problem.field].errors, problem.message]


def _data_to_form(data: meeting_service.MeetingData) -> MeetingForm:
    zone = ZoneInfo(data.timezone)
    start, end = data.starts_at.astimezone(zone), data.ends_at.astimezone(zone)
    deadline = data.rsvp_deadline.astimezone(zone) if data.rsvp_deadline else None
    values = {
        "start_fold": str(start.fold),
        "end_fold": str(end.fold),
        "title": data.title,
        "theme": data.theme,
        "description": data.description,
        "date": start.date(),
        "start_time": start.time().replace(tzinfo=None),
        "end_time": end.time().replace(tzinfo=None),
        "end_date": end.date() if end.date() != start.date() else None,
        "timezone": data.timezone,
        "join_url": data.join_url,
        "location": data.location,
        "capacity": data.capacity,
        "rsvp_deadline_date": deadline.date() if deadline else None,
        "rsvp_deadline_time": deadline.time().replace(tzinfo=None) if deadline else None,
        "visibility": data.visibility.value,
        "contact_id": data.contact_id or 0,
        "series_id": data.series_id or 0,
        "agenda": [vars(row) for row in data.agenda],
        "rooms": [{"name": r.name, "questions": "\n".join(r.questions)} for r in data.rooms],
    }
    form = _meeting_form(data=values, formdata=None)
    _offer_repeated(form, "start_time", start.date(), start.time(), zone)
    _offer_repeated(form, "end_time", end.date(), end.time(), zone)
    return form


def _wants_more_rows() -> bool:
    return "add_agenda_row" in request.form or "add_room" in request.form


def _with_more_rows(form: MeetingForm, meeting: Meeting | None, proposal=None) -> str:
    """The form again with one more agenda row or room, as the button pressed asks: it works without scripts. At the
    limit the form says so, with every row as typed."""
    rows = form.agenda if "add_agenda_row" in request.form else form.rooms
    if rows.at_limit:
        rows.errors = [rows.full_message]
    else:
        rows.append_entry()
    return render_template("meetings/form.html", form=_prepare(form), meeting=meeting, proposal=proposal)


@bp.route("/new", methods=["GET", "POST"])
@organiser_required
def new():
    form = _meeting_form()
    source = request.values.get("from")
    copied_from = meeting_service.find_meeting(source, load_details=True) if source else None
    if source and copied_from is None:
        abort(404)
    proposal = meeting_service.next_in_series(copied_from) if copied_from is not None else None
    if request.method == "GET":
        if proposal is not None:
            form = _data_to_form(proposal.data)
        else:
            form.timezone.data = current_app.config["TIMEZONE"]
    if request.method == "POST" and _wants_more_rows():
        return _with_more_rows(form, None, proposal=proposal)
    if form.validate_on_submit():
        data = _form_to_data(form)
        if data is not None and _agenda_refused(form):
            _apply_rules(form, data, is_new=True, copied_from=proposal.copied_from if proposal else None)
        elif data is not None:
            with transaction(form) as outcome:
                if proposal is not None:
                    data.series_id = proposal.copied_from.series_id
                meeting = meeting_service.create_meeting(data, copied_from=proposal.copied_from if proposal else None)
            if not outcome.refused:
                flash("Meeting saved as a draft. Check it, then publish it when it is ready.", "success")
                return back_to(meeting)
    elif request.method == "POST":
        _check_the_rest(form, is_new=True, copied_from=proposal.copied_from if proposal else None)
    return render_form(
        "meetings/form.html",
        form=_prepare(form),
        meeting=None,
        proposal=proposal,
        refused_anyway=request.method == "POST",
    )


@bp.route("/<ref>/edit", methods=["GET", "POST"])
@organiser_required
def edit(ref: str):
    meeting = organiser_meeting(ref, details=True)
    if problem := meeting_service.why_not_editable(meeting):
        flash(problem, "error")
        return back_to(meeting)
    form = _meeting_form() if request.method == "POST" else _data_to_form(meeting_service.MeetingData.of(meeting))
    if request.method == "POST" and _wants_more_rows():
        return _with_more_rows(form, meeting)
    if form.validate_on_submit():
        data = _form_to_data(form)
        if data is not None and _agenda_refused(form):
            _apply_rules(form, data, is_new=False)
        elif data is not None:
            with transaction(form) as outcome:
                update = meeting_service.update_meeting(
                    meeting,
                    data,
                    notify=not form.minor_correction.data,
                    move_agenda_times=bool(form.move_agenda.data),
                )
            if not outcome.refused:
                flash(_updated(meeting, update), "success")
                if misplaced := meeting_service.misplaced_agenda(meeting):
                    flash(
                        f"{plural(len(misplaced), 'agenda item is', 'agenda items are')} outside the meeting's time: "
                        "check the agenda.",
                        "warning",
                    )
                return back_to(meeting)
    elif request.method == "POST":
        _check_the_rest(form, is_new=False)
    return render_form(
        "meetings/form.html", form=_prepare(form), meeting=meeting, refused_anyway=request.method == "POST"
    )


def _updated(meeting: Meeting, update: meeting_service.MeetingUpdate) -> str:
    """What an edit did and who will hear of it, and when."""
    text = "Meeting updated."
    if promoted := len(update.promoted):
        text += (
            f" {plural(promoted, 'person', 'people')} from the waiting list now "
            f"{'has' if promoted == 1 else 'have'} a place"
            + (f" and {'is' if promoted == 1 else 'are'} told by email." if meeting.is_scheduled else ".")
        )
    if (pending := notice_service.pending_update(meeting)) is not None:
        text += " " + pending_update_sentence(pending, meeting)
    elif update.announced:
        text += f" The update is on its way to {plural(update.announced, 'member')}."
    elif update.announced is None and update.changes and meeting.is_scheduled:
        text += " Members are not told of this minor correction."
    return text


@bp.app_template_global()
def pending_update_sentence(pending: notice_service.PendingUpdate, meeting: Meeting) -> str:
    """'29 members will get an update at 14:05 (London time).', in the meeting's zone with the zone named."""
    if not pending.recipients:
        return "Nobody will get an update: no member has been invited, or everyone invited has declined."
    when = timefmt.clock_in_zone(pending.due_at, meeting.timezone)
    return f"{plural(pending.recipients, 'member')} will get an update at {when}."


def _change_and_say(ref: str, change: Callable[[Meeting], T], say: Callable[[T], tuple[str, str]]):
    """A one-button change to a confirmed meeting, then back to it with what the change did (or its refusal)."""
    meeting = confirmed_meeting(ref)
    with transaction() as outcome:
        result = change(meeting)
    if not outcome.refused:
        flash(*say(result))
    return back_to(meeting)


def _update_sent(queued: int) -> tuple[str, str]:
    if queued:
        return f"Update queued: it is on its way to {plural(queued, 'member')}.", "success"
    return "No update was waiting: it has already gone to the outbox.", "info"


def _published(told: series_service.PublishedToFollowers) -> tuple[str, str]:
    message = "Published: the meeting is now on the meetings page and in the calendar feed."
    if not told.invited:
        message += " Nobody has been emailed yet: Invite sends the members their personal invitations."
    if told.invited:
        message += f" {plural(told.invited, 'follower of its series is', 'followers of its series are')} invited"
        counted = [f"{told.going} counted in as Going"] if told.going else []
        counted += [f"{told.waiting} on the waiting list"] if told.waiting else []
        message += f" ({', '.join(counted)})." if counted else "."
    return message, "success"


@bp.route("/<ref>/send-update", methods=["POST"])
@organiser_required
def send_update(ref: str):
    """Send now: the update waiting for its batch window goes to the outbox at once."""
    return _change_and_say(ref, notice_service.send_pending_update_now, _update_sent)


@bp.route("/<ref>/publish", methods=["POST"])
@organiser_required
def publish(ref: str):
    return _change_and_say(ref, meeting_service.publish, _published)


@bp.route("/<ref>/cancel", methods=["GET", "POST"])
@organiser_required
def cancel(ref: str):
    meeting = organiser_meeting(ref)
    form = CancelMeetingForm()
    if problem := meeting_service.why_not_cancellable(meeting):
        flash(problem, "info")
        return back_to(meeting)
    if form.validate_on_submit():
        with transaction() as outcome:
            told = meeting_service.cancel(meeting, form.reason.data)
        if not outcome.refused:
            flash(
                f"The meeting is cancelled. The cancellation is on its way to {plural(told, 'member')}."
                if told
                else "The meeting is cancelled. Nobody had been invited, so nobody is told.",
                "success",
            )
        return back_to(meeting)
    return render_form(
        "meetings/cancel.html", meeting=meeting, form=form, to_tell=notice_service.recipient_count(meeting)
    )


@bp.route("/<ref>/delete", methods=["GET", "POST"])
@organiser_required
def delete(ref: str):
    meeting = organiser_meeting(ref)
    if problem := meeting_service.why_not_deletable(meeting):
        flash(problem, "info")
        return back_to(meeting)
    form = ConfirmForm()
    if form.validate_on_submit():
        title = meeting.title
        with transaction() as outcome:
            meeting_service.delete_draft(meeting)
        if outcome.refused:
            return back_to(meeting)
        flash(f"Deleted the draft \u201c{title}\u201d.", "success")
        return redirect(url_for("main.home"))
    return render_form("meetings/delete.html", meeting=meeting, form=form)


@bp.route("/<ref>/attendees")
@organiser_required
def attendees(ref: str):
    meeting = organiser_meeting(ref)
    return _attendees_page(meeting, _walk_in_form(meeting))


def _walk_in_form(meeting: Meeting) -> WalkInForm:
    form = WalkInForm()
    form.member_id.choices = [
        SelectChoice(str(m.id), f"{m.name} ({m.organisation})" if m.organisation else m.name)
        for m in meeting_service.walk_in_candidates(meeting)
    ]
    return form


def _attendees_page(meeting: Meeting, walk_in_form: WalkInForm, *, refused: bool = False):
    rows = _attendee_rows(meeting)
    return render_form(
        "meetings/attendees.html",
        refused_anyway=refused,
        meeting=meeting,
        rows=rows,
        count=rsvp_service.counts(meeting),
        no_reply=invitation_service.not_replied(meeting),
        positions=_waiting_positions(rows),
        attendance=rsvp_service.attendance(meeting),
        form=ConfirmForm(),
        walk_in_form=walk_in_form,
        attendance_refused=meeting_service.why_not_attendance(meeting, utcnow()),
    )


@bp.route("/<ref>/walk-in", methods=["POST"])
@organiser_required
def walk_in(ref: str):
    """Record a member who came without answering."""
    meeting = organiser_meeting(ref)
    form = _walk_in_form(meeting)
    if not form.validate_on_submit():
        return _attendees_page(meeting, form)
    with transaction(form) as outcome:
        recorded = meeting_service.record_walk_in(meeting, form.member_id.data)
    if outcome.refused:
        return _attendees_page(meeting, form, refused=True)
    name = recorded.rsvp.member.name if recorded.rsvp.member else "The member"
    asked = " The feedback request is on its way to them." if recorded.feedback_asked else ""
    flash(f"{name} is recorded as having come.{asked}", "success")
    return redirect(url_for("meetings.attendees", ref=meeting.slug))


def _attendee_rows(meeting: Meeting) -> list[Rsvp]:
    answer_order = case((Rsvp.answer == Answer.GOING, 0), (Rsvp.answer == Answer.MAYBE, 1), else_=2)
    return list(
        db.session.scalars(
            select(Rsvp)
            .where(Rsvp.meeting_id == meeting.id)
            .options(joinedload(Rsvp.member))  # one query however many rows (selectinload batches by 500)
            .order_by(
                answer_order, Rsvp.waitlist_position.is_not(None), Rsvp.waitlist_position, Rsvp.answered_at, Rsvp.id
            )
        )
    )


def _waiting_positions(rows: list[Rsvp]) -> dict[int, int]:
    waiting = sorted((r for r in rows if r.is_waiting), key=lambda r: r.waitlist_position or 0)
    return {r.id: i for i, r in enumerate(waiting, start=1)}


@bp.route("/<ref>/attendees.csv")
@organiser_required
def attendees_csv(ref: str):
    meeting = organiser_meeting(ref)
    rows = _attendee_rows(meeting)
    positions = _waiting_positions(rows)
    table = [
        [
            "Name",
            "Email",
            "Organisation",
            "Answer",
            "Waiting list",
            "Access needs",
            "Comment",
            "Answered",
            "How",
            "Attended",
            "Room",
        ]
    ]
    rooms = room_service.room_names(meeting)
    for r in rows:
        member = r.member
        table.append(
            [
                member.name if member else "(deleted account)",
                member.email if member else "",
                member.organisation if member else "",
                r.answer_label,
                str(positions.get(r.id, "")),
                r.access_needs,
                r.comment,
                timefmt.instant(r.answered_at, meeting.timezone),
                r.source.label,
                {True: "yes", False: "no", None: ""}[r.attended],
                rooms.get(r.member_id or 0, ""),
            ]
        )
    filename = f"attendees-{meeting.slug}.csv"
    return Response(
        to_csv(table), mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@bp.route("/<ref>/attendance", methods=["POST"])
@organiser_required
def attendance(ref: str):
    meeting = confirmed_meeting(ref)
    ticked = {rsvp_id for value in request.form.getlist("attended") if (rsvp_id := parse_id(value)) is not None}
    with transaction() as outcome:
        saved = meeting_service.mark_attendance(meeting, ticked)
    if not outcome.refused:
        message = f"Attendance saved: {saved.came} attended."
        if saved.feedback_asked:
            message += (
                f" The feedback request is on its way to {plural(saved.feedback_asked, 'member')} newly recorded as "
                "having come."
            )
        flash(message, "success")
    return redirect(url_for("meetings.attendees", ref=meeting.slug))
