"""The `why_not_...` rules of meetings: edit, cancel, delete and attendance. Each answers None or the reason, the
operation refuses with that same reason, and the meeting page offers only what the rules allow."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, Meeting, MeetingNotes, MeetingStatus
from kxn_meetings.services import meetings
from kxn_meetings.services.errors import ServiceError

from .meeting_helpers import record_answer

NOW = dt.datetime(2030, 5, 1, 12, 0, tzinfo=dt.UTC)
CANCELLED_EDIT = "A cancelled meeting cannot be edited."
ALREADY_CANCELLED = "This meeting is already cancelled."
DRAFT_NOT_CANCELLED = "A draft has not been announced, so there is nothing to cancel."
NOT_STARTED = "Attendance can be recorded once the meeting has started."


def meeting_in(status: MeetingStatus, starts_at: dt.datetime = NOW) -> Meeting:
    return Meeting(status=status, starts_at=starts_at, ends_at=starts_at + dt.timedelta(hours=2))


@pytest.mark.parametrize(
    ("status", "reason"),
    [(MeetingStatus.DRAFT, None), (MeetingStatus.SCHEDULED, None), (MeetingStatus.CANCELLED, CANCELLED_EDIT)],
)
def test_only_a_cancelled_meeting_cannot_be_edited(status, reason):
    assert meetings.why_not_editable(meeting_in(status)) == reason


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (MeetingStatus.DRAFT, DRAFT_NOT_CANCELLED),
        (MeetingStatus.SCHEDULED, None),
        (MeetingStatus.CANCELLED, ALREADY_CANCELLED),
    ],
)
def test_only_a_scheduled_meeting_can_be_cancelled(status, reason):
    assert meetings.why_not_cancellable(meeting_in(status)) == reason


@pytest.mark.parametrize(
    ("starts_at", "reason"),
    [
        (NOW + dt.timedelta(seconds=1), NOT_STARTED),
        (NOW, None),
        (NOW - dt.timedelta(days=30), None),
    ],
)
def test_attendance_is_recorded_from_the_start_of_the_meeting(starts_at, reason):
    assert meetings.why_not_attendance(meeting_in(MeetingStatus.SCHEDULED, starts_at), NOW) == reason


def test_only_a_draft_without_notes_can_be_deleted(app, make_meeting):
    draft = make_meeting(status=MeetingStatus.DRAFT)
    published = make_meeting()
    assert meetings.why_not_deletable(draft) is None
    assert "can be cancelled instead" in (meetings.why_not_deletable(published) or "")
    db.session.add(MeetingNotes(meeting_id=draft.id))
    db.session.commit()
    assert meetings.why_not_deletable(draft) == "This draft has notes written for it, so it is kept."


def test_each_operation_refuses_with_its_rules_reason(app, make_meeting):
    cancelled = make_meeting(status=MeetingStatus.CANCELLED)
    draft = make_meeting(status=MeetingStatus.DRAFT)
    ahead = make_meeting()
    valid_edit = dataclasses.replace(meetings.next_in_series(cancelled).data, title="Renamed")
    refusals = [
        (lambda: meetings.update_meeting(cancelled, valid_edit), meetings.why_not_editable(cancelled)),
        (lambda: meetings.cancel(draft, "No speakers"), meetings.why_not_cancellable(draft)),
        (lambda: meetings.cancel(cancelled, "Again"), meetings.why_not_cancellable(cancelled)),
        (lambda: meetings.delete_draft(ahead), meetings.why_not_deletable(ahead)),
        (lambda: meetings.mark_attendance(ahead, set()), meetings.why_not_attendance(ahead, dt.datetime.now(dt.UTC))),
    ]
    for operation, reason in refusals:
        assert reason
        with pytest.raises(meetings.MeetingError) as refused:
            operation()
        assert isinstance(refused.value, ServiceError)
        assert refused.value.message == str(refused.value) == reason
        assert refused.value.field is None
        db.session.rollback()


def test_attendance_is_recorded_once_the_meeting_has_started(app, make_meeting, make_member):
    meeting = make_meeting()
    came, stayed_away = (record_answer(meeting.id, make_member(), Answer.GOING).rsvp for _ in range(2))
    meeting.starts_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    db.session.commit()
    assert meetings.mark_attendance(meeting, {came.id}).came == 1
    assert (came.attended, stayed_away.attended) == (True, False)


def test_every_problem_of_a_meeting_is_refused_at_once_each_with_its_field(app):
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    data = meetings.MeetingData(title=" ", starts_at=start, ends_at=start, timezone="Europe/London", capacity=0)
    with pytest.raises(meetings.MeetingError) as refused:
        meetings.create_meeting(data)
    assert [(problem.field, problem.message) for problem in refused.value.problems] == [
        ("title", "Enter a title."),
        (
            "end_time",
            "The meeting must end after it starts. For a meeting that ends after midnight, "
            "give the day it ends under \u201cEnds on\u201d.",
        ),
        ("date", "A new meeting cannot start in the past."),
        ("capacity", "Capacity is a whole number of at least 1, or empty for no limit."),
        ("join_url", "Give a join link for an online meeting, an address, or both."),
    ]


def test_the_meeting_page_offers_only_what_the_rules_allow(organiser_client, make_meeting):
    scheduled = make_meeting()
    draft = make_meeting(status=MeetingStatus.DRAFT)
    kept = make_meeting(status=MeetingStatus.DRAFT)
    cancelled = make_meeting(status=MeetingStatus.CANCELLED)
    db.session.add(MeetingNotes(meeting_id=kept.id))
    db.session.commit()
    offered = {
        meeting.slug: {
            button
            for button in ("Edit", "Cancel meeting", "Delete draft")
            if f">{button}</a>" in organiser_client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
        }
        for meeting in (scheduled, draft, kept, cancelled)
    }
    assert offered == {
        scheduled.slug: {"Edit", "Cancel meeting"},
        draft.slug: {"Edit", "Delete draft"},
        kept.slug: {"Edit"},
        cancelled.slug: set(),
    }
