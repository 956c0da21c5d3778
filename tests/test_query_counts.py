"""Pages run the same number of SQL statements whether they show five rows or five hundred."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading

import pytest
from sqlalchemy import event, insert

from kxn_meetings.extensions import db
from kxn_meetings.models import (
    AgendaItem,
    Answer,
    Meeting,
    MeetingStatus,
    Member,
    Rsvp,
    Visibility,
    WorkshopQuestion,
    WorkshopRoom,
)


@contextlib.contextmanager
def counting_statements():
    """The statements this thread runs: a thread another test left behind (a server, a mail delivery) may run its own
    on the same engine at any moment, and they are not this test's."""
    statements: list[str] = []
    thread = threading.get_ident()

    def count(_conn, _cursor, statement, *_args):
        if threading.get_ident() == thread:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def build(*, meetings: int, answers: int, agenda: int, viewer: Member | None) -> dict[str, str]:
    """`meetings` upcoming and past meetings; the first has `answers` RSVPs, `agenda` items and rooms."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    made = []
    for i in range(meetings):
        start = now + dt.timedelta(days=7 * (i + 1)) if i % 3 else now - dt.timedelta(days=7 * (i + 1))
        if i == 0:
            start = now + dt.timedelta(days=3)
        made.append(
            Meeting(
                slug=f"m-{meetings}-{i}",
                title=f"Meeting {i}",
                theme=f"Theme {i}",
                starts_at=start,
                ends_at=start + dt.timedelta(hours=2),
                timezone="Europe/London",
                join_url="https://meet.example.org/x",
                location="Leeds" if i % 2 else "",
                capacity=answers // 2 if i % 4 == 0 else None,
                status=MeetingStatus.CANCELLED if i % 5 == 4 else MeetingStatus.SCHEDULED,
                visibility=Visibility.MEMBERS if i % 2 else Visibility.PUBLIC,
                contact=viewer,
                description="Some **words**",
                agenda_items=[
                    AgendaItem(
                        position=n, title=f"Item {n}", speaker_name=f"Speaker {n}", start_time=dt.time(15, n % 60)
                    )
                    for n in range(agenda)
                ],
                workshop_rooms=[
                    WorkshopRoom(position=n, name=f"Room {n}", questions=[WorkshopQuestion(position=0, text="Why?")])
                    for n in range(max(1, agenda // 5))
                ],
            )
        )
    db.session.add_all(made)
    db.session.flush()
    # Members and answers in bulk: the ORM would take a second per size to add the 2,000 answers one by one.
    people = db.session.scalars(
        insert(Member).returning(Member.id, sort_by_parameter_order=True),
        [
            {"name": f"Person {n}", "email": f"person{meetings}-{n}@example.org", "organisation": "NHS"}
            for n in range(answers)
        ],
    ).all()
    choices = [Answer.GOING, Answer.MAYBE, Answer.DECLINED, Answer.GOING]
    db.session.execute(
        insert(Rsvp),
        [
            {
                "meeting_id": meeting.id,
                "member_id": person_id,
                "answer": choices[n % 4],
                "waitlist_position": n if choices[n % 4] == Answer.GOING and n > answers // 2 else None,
                "access_needs": "Captions" if n % 7 == 0 else "",
                "comment": f"Comment {n}",
            }
            for meeting in made[:4]
            for n, person_id in enumerate(people)
        ],
    )
    if viewer is not None:
        db.session.add_all(Rsvp(meeting_id=m.id, member_id=viewer.id, answer=Answer.GOING) for m in made[:4])
    db.session.commit()
    first = {"slug": made[0].slug, "id": str(made[0].id)}
    db.session.expunge_all()
    return first


def statements_for(client, path: str) -> int:
    db.session.expunge_all()
    with counting_statements() as statements:
        response = client.get(path)
    assert response.status_code == 200, path
    return len(statements)


PAGES = [
    (viewer, page)
    for viewer in ("organiser", "member", "anonymous")
    for page in ("/", "/past", "/meetings/{slug}", "/meetings/{id}", "/notes", "/notes/feed.atom", "/calendar.ics")
]
PAGES += [("anonymous", "/meetings/{slug}/calendar.ics")]
PAGES += [("organiser", "/meetings/{slug}/attendees"), ("organiser", "/meetings/{slug}/attendees.csv")]


@pytest.mark.parametrize(("viewer", "page"), PAGES)
def test_pages_run_a_constant_number_of_statements(app, make_member, sign_in, viewer, page):
    results = []
    for meetings, answers, agenda in ((4, 5, 2), (24, 500, 20)):
        client = app.test_client()
        person = None
        if viewer != "anonymous":
            person = make_member(is_organiser=viewer == "organiser")
            sign_in(client, person)
        first = build(meetings=meetings, answers=answers, agenda=agenda, viewer=person)
        path = page.format(**first)
        statements_for(client, path)  # the first request warms per-process caches
        results.append(statements_for(client, path))
    small, large = results
    assert small == large, f"{page}: {small} statements for a small network, {large} for a large one"
