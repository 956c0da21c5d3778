"""Answers arriving at the same moment: capacity holds, the waiting list keeps arrival order, nothing is doubled.

Each thread has its own app context, so its own session and database connection, as concurrent requests do.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from contextlib import nullcontext

import pytest
from sqlalchemy import func, select

from kxn_meetings import mail
from kxn_meetings.database import writing
from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, Member, OutboxMessage, Rsvp
from kxn_meetings.services import rsvps as rsvp_service

from .meeting_helpers import record_answer


def run_together(app, count: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run work(0..count-1) in threads released at the same moment; return what they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                work(index)
            except BaseException as error:  # collected and reported by the test
                db.session.rollback()
                errors.append(error)

    threads = [threading.Thread(target=run, args=(i,), name=f"answer-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "an answer never finished"
    db.session.rollback()  # end this thread's read transaction: on SQLite it would keep seeing the old snapshot
    return errors


def everyone_answers_going(
    app, meeting_id: int, member_ids: list[int], *, reads_first: bool = False
) -> tuple[list[int], list[BaseException]]:
    """All members answer Going at once; returns member ids in the order their answers committed. `reads_first`: as
    the answer pages do (database.reads_first), each reads the meeting and her answer before the lock, and checks them
    under it."""
    committed: list[int] = []
    order_lock = threading.Lock()

    def answer(index: int) -> None:
        member = db.session.get(Member, member_ids[index])
        with writing(False) if reads_first else nullcontext():
            record_answer(meeting_id, member, Answer.GOING)
        # The meeting lock is held until COMMIT, so commits happen one at a time; recording under a lock
        # around the commit gives exactly their order.
        with order_lock:
            db.session.commit()
            committed.append(member.id)

    errors = run_together(app, len(member_ids), answer)
    return committed, errors


def rsvps_by_member(meeting_id: int) -> dict[int, Rsvp]:
    return {r.member_id: r for r in db.session.scalars(select(Rsvp).where(Rsvp.meeting_id == meeting_id))}


def check_capacity_and_order(meeting_id: int, committed: list[int], capacity: int) -> None:
    rows = rsvps_by_member(meeting_id)
    assert len(rows) == len(committed)
    going = {m for m, r in rows.items() if r.is_going}
    waiting = [m for m in committed if rows[m].is_waiting]
    assert going == set(committed[:capacity]), "the first answers to commit have the places"
    assert waiting == committed[capacity:]
    tickets = [rows[m].waitlist_position for m in waiting]
    assert all(a < b for a, b in itertools.pairwise(tickets)), f"tickets out of commit order: {tickets}"
    assert [rsvp_service.waiting_position(rows[m]) for m in waiting] == list(range(1, len(waiting) + 1))


# Fifty threads, each with a connection of its own as fifty requests would have: with the default pool of 15 the
# other 35 would queue for one, on a busy machine past the pool's 30 s timeout.
@pytest.mark.postgresql_only
@pytest.mark.app_config(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 50, "max_overflow": 0})
@pytest.mark.parametrize("reads_first", [False, True], ids=["locked-first", "reads-first"])
def test_fifty_members_answer_at_once_and_capacity_and_order_hold(
    app, make_meeting, make_member, smtp_server, reads_first
):
    meeting = make_meeting(capacity=10)
    member_ids = [make_member().id for _ in range(50)]
    db.session.rollback()  # nothing of this session's may be loaded lazily while the threads run

    committed, errors = everyone_answers_going(app, meeting.id, member_ids, reads_first=reads_first)

    assert errors == []
    assert sorted(committed) == sorted(member_ids)
    count = rsvp_service.counts(meeting)
    assert (count.going, count.waiting) == (10, 40)
    check_capacity_and_order(meeting.id, committed, 10)

    leaving = db.session.get(Member, committed[3])
    first_in_line = db.session.get(Member, committed[10])
    result = record_answer(meeting.id, leaving, Answer.DECLINED)
    db.session.commit()
    assert [r.member_id for r in result.promoted] == [first_in_line.id]
    rows = rsvps_by_member(meeting.id)
    assert rows[first_in_line.id].is_going
    assert sum(r.is_going for r in rows.values()) == 10
    assert [rsvp_service.waiting_position(rows[m]) for m in committed[11:]] == list(range(1, 40))
    promotions = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "waitlist_promoted")).all()
    assert [(m.member_id, first_in_line.email in m.recipient) for m in promotions] == [(first_in_line.id, True)]

    report = mail.deliver_due()
    assert report.failed == 0
    received = smtp_server.to(first_in_line.email)
    assert len(received) == 1
    assert received[0]["Subject"].startswith("A place is yours")


@pytest.mark.postgresql_only
@pytest.mark.parametrize("reads_first", [False, True], ids=["locked-first", "reads-first"])
def test_places_freed_at_once_go_to_the_next_in_line_once_each(app, make_meeting, make_member, reads_first):
    meeting_id = make_meeting(capacity=5).id
    member_ids = [make_member().id for _ in range(15)]
    committed, errors = everyone_answers_going(app, meeting_id, member_ids, reads_first=reads_first)
    assert errors == []

    def decline(index: int) -> None:
        with writing(False) if reads_first else nullcontext():
            record_answer(meeting_id, db.session.get(Member, committed[index]), Answer.DECLINED)
        db.session.commit()

    assert run_together(app, 5, decline) == []
    rows = rsvps_by_member(meeting_id)
    assert {m for m, r in rows.items() if r.is_going} == set(committed[5:10])
    promoted = db.session.scalars(select(OutboxMessage.member_id).where(OutboxMessage.kind == "waitlist_promoted"))
    assert sorted(promoted) == sorted(committed[5:10])


@pytest.mark.parametrize("reads_first", [False, True], ids=["locked-first", "reads-first"])
def test_ten_members_answer_at_once_and_capacity_holds(app, make_meeting, make_member, reads_first):
    """On SQLite, BEGIN IMMEDIATE queues the writers (busy_timeout) instead of failing with 'database is locked'."""
    meeting = make_meeting(capacity=3)
    member_ids = [make_member().id for _ in range(10)]
    db.session.rollback()  # nothing of this session's may be loaded lazily while the threads run

    committed, errors = everyone_answers_going(app, meeting.id, member_ids, reads_first=reads_first)

    assert errors == []
    count = rsvp_service.counts(meeting)
    assert (count.going, count.waiting) == (3, 7)
    check_capacity_and_order(meeting.id, committed, 3)


@pytest.mark.parametrize("reads_first", [False, True], ids=["locked-first", "reads-first"])
def test_the_same_answer_sent_twice_at_once_leaves_one_row(app, make_meeting, member, reads_first):
    meeting_id, member_id = make_meeting(capacity=5).id, member.id  # plain ids: threads must not touch this session

    def answer(_index: int) -> None:
        with writing(False) if reads_first else nullcontext():
            record_answer(meeting_id, db.session.get(Member, member_id), Answer.GOING)
        db.session.commit()

    for _ in range(3):
        assert run_together(app, 2, answer) == []
    assert db.session.scalar(select(func.count(Rsvp.id)).where(Rsvp.meeting_id == meeting_id)) == 1
    assert rsvps_by_member(meeting_id)[member_id].is_going
