"""What organisers are told after each step: who will get an update and when (and Send now), how many invitations,
notes and cancellations are on their way; the agenda moving with the meeting; and attendance as it really was."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from kxn_meetings import timefmt
from kxn_meetings.extensions import db
from kxn_meetings.models import AgendaItem, Answer, OutboxMessage, Rsvp, utcnow
from kxn_meetings.services import invitations, notices, rsvps
from kxn_meetings.services import meetings as meeting_service
from kxn_meetings.services import notes as notes_service

from .dates import GMT_START, YEAR
from .html_forms import form_values, text
from .meeting_helpers import record_answer
from .notes_helpers import write_notes

LONDON = ZoneInfo("Europe/London")


def queued(kind: str) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == kind)) or 0


@pytest.fixture
def invited(app, make_member, make_meeting):
    """Five members invited: two going, one maybe, one silent, one declined; one more member answered without an
    invitation, and a member who left after being invited. Four of them hold the meeting in their calendar, plus
    the one who answered uninvited: five to tell of a change."""
    meeting = make_meeting(start=GMT_START, title="Meeting three")
    people = {
        name: make_member(name=name.title(), email=f"{name}@example.org")
        for name in ("ann", "ben", "cat", "dev", "eve", "fay", "gus")
    }
    invitations.invite(meeting, [people[n] for n in ("ann", "ben", "cat", "dev", "eve", "gus")])
    db.session.commit()
    for name, choice in (("ann", Answer.GOING), ("ben", Answer.GOING), ("cat", Answer.MAYBE), ("eve", Answer.DECLINED)):
        record_answer(meeting.id, people[name], choice)
        db.session.commit()
    record_answer(meeting.id, people["fay"], Answer.GOING)
    people["gus"].active = False
    db.session.commit()
    return meeting, people


def edit(client, meeting, **changes):
    values = form_values(client.get(f"/meetings/{meeting.slug}/edit").get_data(as_text=True))
    values.update(changes)
    return client.post(f"/meetings/{meeting.slug}/edit", data=values, follow_redirects=True)


# Counts from the services ---------------------------------------------------------------------------


def test_the_count_of_those_to_tell_is_the_list_an_update_and_a_cancellation_go_to(invited):
    meeting, _people = invited
    assert notices.recipient_count(meeting) == len(notices.recipients(meeting)) == 5
    assert {m.email for m in notices.recipients(meeting)} == {
        f"{n}@example.org" for n in ("ann", "ben", "cat", "dev", "fay")
    }
    expected = notices.recipient_count(meeting)
    assert meeting_service.cancel(meeting, "Speakers unwell") == expected
    db.session.commit()
    assert queued("cancellation") == expected


@pytest.mark.app_config(UPDATE_WINDOW_SECONDS=300)
def test_an_update_waits_with_its_count_and_time_and_send_now_queues_it_once(organiser_client, invited):
    meeting, _people = invited
    assert notices.pending_update(meeting) is None
    edit(organiser_client, meeting, start_time="16:00", end_time="18:00")
    db.session.expire_all()
    pending = notices.pending_update(meeting)
    assert pending is not None and pending.recipients == 5
    assert dt.timedelta(seconds=290) < pending.due_at - utcnow() <= dt.timedelta(seconds=300)
    assert queued("update") == 0

    assert notices.send_pending_update_now(meeting) == 5
    db.session.commit()
    assert queued("update") == 5
    assert notices.pending_update(meeting) is None
    assert notices.send_pending_update_now(meeting) == 0  # pressed twice
    assert notices.queue_due_updates(now=utcnow() + dt.timedelta(hours=1)) == 0  # the window closing later
    db.session.commit()
    assert queued("update") == 5


@pytest.mark.app_config(UPDATE_WINDOW_SECONDS=300)
def test_send_now_after_the_window_closed_sends_nothing_twice(organiser_client, invited):
    meeting, _people = invited
    edit(organiser_client, meeting, location="Police Foundation, London")
    assert notices.queue_due_updates(now=utcnow() + dt.timedelta(minutes=6)) == 5
    db.session.commit()
    assert notices.send_pending_update_now(meeting) == 0
    db.session.commit()
    assert queued("update") == 5


def test_the_notes_go_to_as_many_as_the_page_said(app, invited, organiser):
    meeting, people = invited
    meeting.starts_at = utcnow() - dt.timedelta(days=2)
    meeting.ends_at = meeting.starts_at + dt.timedelta(hours=2)
    db.session.commit()
    meeting_service.mark_attendance(meeting, {r.id for r in db.session.scalars(select(Rsvp)) if r.is_going})
    meeting_service.record_walk_in(meeting, people["dev"].id)
    db.session.commit()
    notes = write_notes(meeting, organiser, publish=False)
    promised = len(notes_service.recipients(meeting))
    assert promised == 5  # ann, ben, fay went; eve sent apologies; dev walked in
    assert notes_service.publish(notes, email_members=True).emailed == promised


# Pages: what the organiser reads --------------------------------------------------------------------


@pytest.mark.app_config(UPDATE_WINDOW_SECONDS=300)
def test_after_an_edit_the_page_says_who_will_be_told_when_and_offers_send_now(organiser_client, invited):
    meeting, _people = invited
    page = text(edit(organiser_client, meeting, start_time="16:00", end_time="18:00").get_data(as_text=True))
    db.session.expire_all()
    when = timefmt.clock_in_zone(meeting.update_due_at, "Europe/London")
    assert when.endswith("(London time)")
    assert f"Meeting updated. 5 members will get an update at {when}." in page
    assert f"5 members will get an update at {when}. Edits until then go out with it. Send now" in page

    response = organiser_client.post(f"/meetings/{meeting.slug}/send-update", follow_redirects=True)
    page = text(response.get_data(as_text=True))
    assert "Update queued: it is on its way to 5 members." in page
    assert "Send now" not in page
    response = organiser_client.post(f"/meetings/{meeting.slug}/send-update", follow_redirects=True)
    assert "No update was waiting: it has already gone to the outbox." in text(response.get_data(as_text=True))
    assert queued("update") == 5


def test_send_now_needs_the_form_and_an_organiser(client, member_client, organiser_client, invited):
    meeting, _people = invited
    assert client.post(f"/meetings/{meeting.slug}/send-update").status_code == 302  # to sign in
    assert member_client.post(f"/meetings/{meeting.slug}/send-update").status_code == 403


@pytest.mark.app_config(UPDATE_WINDOW_SECONDS=0)
def test_an_update_sent_at_once_says_so(organiser_client, invited):
    meeting, _people = invited
    page = text(edit(organiser_client, meeting, location="Police Foundation, London").get_data(as_text=True))
    assert "Meeting updated. The update is on its way to 5 members." in page
    assert queued("update") == 5


def test_a_minor_correction_says_nobody_is_told(organiser_client, invited):
    meeting, _people = invited
    page = text(edit(organiser_client, meeting, title="Meeting three (typo)", minor_correction="y").get_data(True))
    assert "Meeting updated. Members are not told of this minor correction." in page
    assert "Send now" not in page


def test_an_edit_nobody_can_hear_of_says_nobody_will_get_it(organiser_client, make_meeting):
    meeting = make_meeting(start=GMT_START)
    page = text(edit(organiser_client, meeting, location="Police Foundation, London").get_data(as_text=True))
    assert "Nobody will get an update: no member has been invited, or everyone invited has declined." in page
    assert "Send now" not in page


def test_the_cancel_page_says_how_many_will_be_told_before_and_after(organiser_client, invited, make_meeting):
    meeting, _people = invited
    page = text(organiser_client.get(f"/meetings/{meeting.slug}/cancel").get_data(as_text=True))
    assert "5 members (everyone invited or who answered, except those who declined) will be told by email" in page
    response = organiser_client.post(
        f"/meetings/{meeting.slug}/cancel", data={"reason": "Speakers unwell"}, follow_redirects=True
    )
    assert "The meeting is cancelled. The cancellation is on its way to 5 members." in text(response.get_data(True))
    assert queued("cancellation") == 5

    lonely = make_meeting(start=GMT_START)
    page = text(organiser_client.get(f"/meetings/{lonely.slug}/cancel").get_data(as_text=True))
    assert "Nobody has been invited yet, so nobody will be told." in page


# The agenda moves with the meeting ------------------------------------------------------------------


def last_sunday_of_march(year: int) -> dt.date:
    day = dt.date(year, 3, 31)
    return day - dt.timedelta(days=(day.weekday() + 1) % 7)


def london(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=LONDON).astimezone(dt.UTC)


def rows(*times: str) -> list[meeting_service.AgendaRow]:
    return [meeting_service.AgendaRow(title=t, start_time=dt.time.fromisoformat(t)) for t in times]


def test_agenda_times_keep_their_place_on_the_wall_clock_across_the_march_change():
    change = last_sunday_of_march(YEAR)
    friday, monday = change - dt.timedelta(days=2), change + dt.timedelta(days=1)
    agenda = rows("14:00", "14:30", "15:45")

    meeting_service.move_agenda(agenda, london(friday, 14), "Europe/London", london(monday, 14), "Europe/London")
    assert [r.start_time for r in agenda] == [dt.time(14), dt.time(14, 30), dt.time(15, 45)]
    assert london(monday, 14) - london(friday, 14) == dt.timedelta(days=3, hours=-1)  # what a UTC shift would add

    meeting_service.move_agenda(agenda, london(monday, 14), "Europe/London", london(friday, 15), "Europe/London")
    assert [r.start_time for r in agenda] == [dt.time(15), dt.time(15, 30), dt.time(16, 45)]


def test_moving_the_meeting_on_the_form_moves_its_agenda_unless_unticked(organiser_client, make_meeting):
    change = last_sunday_of_march(YEAR)
    friday, monday = change - dt.timedelta(days=2), change + dt.timedelta(days=1)
    meeting = make_meeting(start=london(friday, 14), title="Meeting three")
    meeting.agenda_items = [
        AgendaItem(position=i, title=title, start_time=dt.time.fromisoformat(at))
        for i, (at, title) in enumerate((("14:00", "Welcome"), ("14:30", "Talk"), ("15:45", "Close")))
    ]
    db.session.commit()
    page = organiser_client.get(f"/meetings/{meeting.slug}/edit").get_data(as_text=True)
    assert form_values(page)["move_agenda"] == "y"  # ticked unless the organiser unticks it

    edit(organiser_client, meeting, date=monday.isoformat(), start_time="15:00", end_time="17:00")
    db.session.expire_all()
    assert meeting.starts_at == london(monday, 15)
    assert [a.start_time for a in meeting.agenda_items] == [dt.time(15), dt.time(15, 30), dt.time(16, 45)]

    values = form_values(organiser_client.get(f"/meetings/{meeting.slug}/edit").get_data(as_text=True))
    values.pop("move_agenda")
    values.update(start_time="16:00", end_time="18:00")
    organiser_client.post(f"/meetings/{meeting.slug}/edit", data=values)
    db.session.expire_all()
    assert [a.start_time for a in meeting.agenda_items] == [dt.time(15), dt.time(15, 30), dt.time(16, 45)]


def test_agenda_items_outside_the_meeting_are_found_on_each_of_its_days():
    day = dt.date(YEAR, 6, 9)
    found = meeting_service.agenda_outside(
        london(day, 15), london(day, 17), "Europe/London", rows("14:59", "15:00", "16:59", "17:00")
    )
    assert [r.title for r in found] == ["14:59", "17:00"]
    late = meeting_service.agenda_outside(
        london(day, 22),
        london(day + dt.timedelta(days=1), 1),
        "Europe/London",
        rows("21:00", "23:30", "00:30", "01:00"),
    )
    assert [r.title for r in late] == ["21:00", "01:00"]


def test_an_agenda_item_outside_the_meeting_is_flagged_on_the_form_and_the_page_but_saved(
    organiser_client, make_meeting
):
    meeting = make_meeting(start=GMT_START, title="Meeting three")
    page = edit(
        organiser_client,
        meeting,
        **{
            "agenda-0-start_time": "14:30",
            "agenda-0-title": "Coffee",
            "agenda-1-start_time": "15:30",
            "agenda-1-title": "Talk",
        },
    )
    assert page.status_code == 200
    shown = text(page.get_data(as_text=True))
    assert "1 agenda item is outside the meeting's time: check the agenda." in shown
    assert "1 agenda item is outside the meeting's time (15:00–17:00): 14:30 Coffee Edit the agenda" in shown
    db.session.expire_all()
    assert [a.title for a in meeting.agenda_items] == ["Coffee", "Talk"]
    form = organiser_client.get(f"/meetings/{meeting.slug}/edit").get_data(as_text=True)
    assert text(form).count("This time is outside the meeting's time") == 1
    member_view = text(organiser_client.get(f"/meetings/{meeting.slug}").get_data(as_text=True))
    assert "14:30 Coffee" in member_view


# Attendance -----------------------------------------------------------------------------------------


@pytest.fixture
def attended(app, make_member, make_meeting):
    """Four going (three came), two maybe (one came), one Can't go who came, one on the waiting list who came, and
    one who never answered but came (recorded by the organiser)."""
    meeting = make_meeting(start=GMT_START, capacity=4)
    names = ["g1", "g2", "g3", "g4", "m1", "m2", "declined", "waiting", "walker"]
    people = {n: make_member(name=n.title(), email=f"{n}@example.org", organisation="") for n in names}
    for name in ("g1", "g2", "g3", "g4", "waiting"):
        record_answer(meeting.id, people[name], Answer.GOING)
    for name in ("m1", "m2"):
        record_answer(meeting.id, people[name], Answer.MAYBE)
    record_answer(meeting.id, people["declined"], Answer.DECLINED)
    db.session.commit()
    meeting.starts_at = utcnow() - dt.timedelta(days=1)
    meeting.ends_at = meeting.starts_at + dt.timedelta(hours=2)
    db.session.commit()
    by_member = {r.member.name.lower(): r.id for r in db.session.scalars(select(Rsvp))}
    came = {by_member[n] for n in ("g1", "g2", "g3", "m1", "declined", "waiting")}
    meeting_service.mark_attendance(meeting, came)
    meeting_service.record_walk_in(meeting, people["walker"].id)
    db.session.commit()
    return meeting, people


def test_attendance_is_those_going_who_came_with_maybe_walk_ins_and_no_shows_apart(attended):
    meeting, _people = attended
    figures = rsvps.attendance(meeting)
    assert (figures.going, figures.came_going, figures.came_maybe) == (4, 3, 1)
    assert figures.rate == 0.75
    assert sorted(r.member.name for r in figures.walk_ins) == ["Declined", "Waiting", "Walker"]
    assert [r.member.name for r in figures.no_shows] == ["G4"]
    counts = rsvps.counts(meeting)
    assert (counts.going, counts.maybe, counts.declined, counts.waiting, counts.attended) == (4, 2, 1, 1, 7)


def test_a_walk_in_is_recorded_once_and_forgotten_when_unticked(attended, make_member):
    meeting, people = attended
    again = meeting_service.record_walk_in(meeting, people["walker"].id).rsvp
    assert db.session.scalar(select(func.count(Rsvp.id)).where(Rsvp.member_id == people["walker"].id)) == 1
    assert again.is_walk_in and again.attended and again.answer_label == "No answer"
    came = {r.id for r in db.session.scalars(select(Rsvp)) if r.attended and not r.is_walk_in}
    meeting_service.mark_attendance(meeting, came)
    db.session.commit()
    assert db.session.scalar(select(func.count(Rsvp.id)).where(Rsvp.member_id == people["walker"].id)) == 0
    assert sorted(r.member.name for r in rsvps.attendance(meeting).walk_ins) == ["Declined", "Waiting"]


def test_a_walk_in_waits_for_the_meeting_to_start(make_meeting, member):
    ahead = make_meeting()
    with pytest.raises(meeting_service.MeetingError, match="once the meeting has started"):
        meeting_service.record_walk_in(ahead, member.id)


def test_the_attendees_page_shows_the_honest_figure_and_records_a_walk_in(organiser_client, attended, make_member):
    meeting, _people = attended
    late = make_member(name="Late Arrival", email="late@example.org", organisation="")
    page = text(organiser_client.get(f"/meetings/{meeting.slug}/attendees").get_data(as_text=True))
    assert "75% of those going came (3 of 4) 1 who answered Maybe came 3 came without answering Going 1 no-show" in page
    assert "Going, but did not come (1) G4" in page
    assert "Came without answering Going (3) Waiting (waiting list) Declined (can't go) Walker (no answer)" in page

    response = organiser_client.post(
        f"/meetings/{meeting.slug}/walk-in", data={"member_id": str(late.id)}, follow_redirects=True
    )
    page = text(response.get_data(as_text=True))
    assert "Late Arrival is recorded as having come." in page
    assert "4 came without answering Going" in page
    assert "Late Arrival (no answer)" in page

    refused = organiser_client.post(f"/meetings/{meeting.slug}/walk-in", data={"member_id": "999999"})
    assert refused.status_code == 422
    assert "Choose a member from the list." in text(refused.get_data(as_text=True))
