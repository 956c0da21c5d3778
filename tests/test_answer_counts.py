"""Pages read a meeting's answer counts once per version of its answers: every change to a counted answer moves
Meeting.answers_version in the same transaction, and anything else (a comment, the meeting's own edits) leaves it."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from kxn_meetings.extensions import db
from kxn_meetings.models import ANSWERS_CHANGED, Answer, Meeting, Rsvp
from kxn_meetings.services import meetings as meeting_service
from kxn_meetings.services import rsvps as rsvp_service

from .test_query_counts import counting_statements


def version(meeting: Meeting) -> int:
    db.session.expire(meeting, ["answers_version"])
    return meeting.answers_version


def answer(meeting: Meeting, member, choice: Answer = Answer.GOING) -> None:
    rsvp_service.answer(meeting.id, member, choice)
    db.session.commit()


def test_every_counted_change_moves_the_version_and_nothing_else_does(app, make_meeting, member):
    meeting = make_meeting()
    updated_at = meeting.updated_at
    assert version(meeting) == 0
    answer(meeting, member)
    assert version(meeting) == 1
    answer(meeting, member, Answer.MAYBE)
    assert version(meeting) == 2
    rsvp = db.session.scalars(db.select(Rsvp).where(Rsvp.meeting_id == meeting.id)).one()
    rsvp.comment = "Joining from the car"
    db.session.commit()
    assert version(meeting) == 2
    rsvp.attended = True
    db.session.commit()
    assert version(meeting) == 3
    db.session.delete(rsvp)
    db.session.commit()
    assert version(meeting) == 4
    db.session.refresh(meeting)
    assert meeting.updated_at == updated_at


def test_moving_an_answer_to_another_meeting_moves_both(app, make_meeting, member):
    first, second = make_meeting(), make_meeting()
    answer(first, member)
    rsvp = db.session.scalars(db.select(Rsvp).where(Rsvp.meeting_id == first.id)).one()
    rsvp.meeting_id = second.id
    db.session.commit()
    assert (version(first), version(second)) == (2, 1)


def test_a_rolled_back_answer_leaves_the_version(app, make_meeting, member):
    meeting = make_meeting()
    rsvp_service.answer(meeting.id, member, Answer.GOING)
    db.session.flush()
    assert db.session.info.get(ANSWERS_CHANGED)
    db.session.rollback()
    assert not db.session.info.get(ANSWERS_CHANGED)
    assert version(meeting) == 0


def test_pages_read_the_counts_once_per_version(app, make_meeting, make_member):
    meeting = make_meeting()
    answer(meeting, make_member())
    assert rsvp_service.page_counts([meeting])[meeting.id].going == 1
    with counting_statements() as statements:
        assert rsvp_service.page_counts([meeting])[meeting.id].going == 1
    assert statements == []
    answer(meeting, make_member())
    assert rsvp_service.page_counts([meeting])[meeting.id].going == 2


@pytest.mark.parametrize("change", ["insert", "update", "delete", "comment"])
def test_the_database_moves_the_version_whatever_writes_the_answers(app, make_meeting, make_member, change):
    """Written past the ORM, as no part of the app does, a change to the counted answers still moves the version, so
    no page is served counts kept for an older one; a change to anything else leaves it."""
    meeting, other = make_meeting(), make_meeting()
    answer(meeting, make_member())
    answer(other, make_member())
    assert rsvp_service.page_counts([meeting])[meeting.id].going == 1
    before, others = version(meeting), version(other)
    mine = Rsvp.meeting_id == meeting.id
    statement = {
        "insert": insert(Rsvp).values(meeting_id=meeting.id, member_id=make_member().id, answer=Answer.GOING),
        "update": update(Rsvp).where(mine).values(answer=Answer.MAYBE),
        "delete": delete(Rsvp).where(mine),
        "comment": update(Rsvp).where(mine).values(comment="Running late"),
    }[change]
    db.session.execute(statement.execution_options(synchronize_session=False))
    db.session.commit()
    going = {"insert": 2, "update": 0, "delete": 0, "comment": 1}[change]
    assert version(meeting) == (before if change == "comment" else before + 1)
    assert version(other) == others
    assert rsvp_service.page_counts([meeting])[meeting.id].going == going


def test_a_transaction_that_changed_answers_reads_them_afresh_and_keeps_nothing(app, make_meeting, make_member):
    meeting = make_meeting()
    assert rsvp_service.page_counts([meeting])[meeting.id].going == 0
    rsvp_service.answer(meeting.id, make_member(), Answer.GOING)
    db.session.flush()
    assert rsvp_service.page_counts([meeting])[meeting.id].going == 1
    db.session.rollback()
    assert rsvp_service.page_counts([meeting])[meeting.id].going == 0


def test_kept_counts_are_copies(app, make_meeting):
    meeting = make_meeting()
    rsvp_service.page_counts([meeting])[meeting.id].going = 99
    assert rsvp_service.page_counts([meeting])[meeting.id].going == 0


@pytest.mark.app_config(PUBLIC_PAGE_SECONDS=0)
def test_the_meeting_page_shows_each_answer_at_once(app, client, make_meeting, make_member):
    meeting = make_meeting(capacity=3)
    assert "3 of 3 places left" in client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    answer(meeting, make_member())
    assert "2 of 3 places left" in client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert "2 places left" in client.get("/").get_data(as_text=True)


def test_counts_are_kept_under_the_version_they_were_counted_at(app, make_meeting, make_member):
    """A page's meeting may come from another transaction than its counts (the copy a process keeps, read by an
    earlier request): counts taken before an answer must not be kept as those of the version after it."""
    meeting = make_meeting()
    db.session.scalar(select(Meeting.id).where(Meeting.id == meeting.id))  # this transaction reads from here on
    with Session(db.engine) as elsewhere:
        elsewhere.add(Rsvp(meeting_id=meeting.id, member_id=make_member().id, answer=Answer.GOING))
        elsewhere.commit()
        newer = elsewhere.get(Meeting, meeting.id)
        assert newer is not None and newer.answers_version == 1
    rsvp_service.page_counts([newer])
    db.session.rollback()
    assert rsvp_service.page_counts([meeting_service.meeting_to_read(meeting.id)])[meeting.id].going == 1
