"""Writers wait their turn: an invitation round, answers through personal links, the outbox worker and an organiser
saving a meeting all write to one database at once, and none of them fails with "database is locked".

On SQLite this is about BEGIN IMMEDIATE (see kxn_meetings/database.py); on PostgreSQL the same runs prove the
paths hold up with several processes and real row locks.
"""

from __future__ import annotations

import collections
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import event, func, select

from kxn_meetings import database
from kxn_meetings.database import BUSY_TIMEOUT_MS
from kxn_meetings.extensions import db
from kxn_meetings.models import (
    Invitation,
    Meeting,
    MeetingNotes,
    Member,
    NotesStatus,
    OutboxMessage,
    OutboxStatus,
)
from kxn_meetings.services import invitations

from .conftest import DATABASE
from .live_app import ROOT, Browser, csrf_token, flask_command, gunicorn, outbox_worker, process_env, wait_until
from .meeting_helpers import meeting_form

ANSWERING = 40
ROUND = 500
CLIENTS = 8


def _members(count: int, prefix: str) -> list[Member]:
    members = [
        Member(name=f"{prefix.title()} {n}", email=f"{prefix}{n}@example.org", organisation="Kent Police")
        for n in range(count)
    ]
    db.session.add_all(members)
    db.session.commit()
    return members


@pytest.mark.slow
def test_invitation_round_while_members_answer_and_the_worker_sends(app, make_meeting, smtp_server, tmp_path):
    import subprocess

    meeting = make_meeting(title="Serious violence duty: one year on")
    answering = _members(ANSWERING, "answering")
    _members(ROUND, "invited")
    invitations.invite(meeting, answering)
    db.session.commit()
    links = [
        f"/meetings/{meeting.slug}/answer/{token}"
        for token in db.session.scalars(
            select(Invitation.token).where(Invitation.meeting_id == meeting.id).order_by(Invitation.member_id)
        )
    ]
    db.session.rollback()
    env = process_env(str(db.engine.url.render_as_string(hide_password=False)), tmp_path / "instance", smtp_server.port)

    statuses: collections.Counter[int] = collections.Counter()
    problems: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def answer_again_and_again(index: int, port: int) -> None:
        browser = Browser(port)
        choices = ("going", "maybe", "declined")
        n = 0
        try:
            while not stop.is_set():
                link = links[(index + n * CLIENTS) % len(links)]
                status, _, page = browser.request("GET", link)
                outcome = [status]
                if status == 200:
                    status, _, page = browser.request(
                        "POST",
                        link,
                        {"csrf_token": csrf_token(page), "answer": choices[n % 3], "comment": "", "access_needs": ""},
                    )
                    outcome.append(status)
                with lock:
                    statuses.update(outcome)
                    if any(code >= 500 for code in outcome):
                        problems.append(f"{link}: {outcome} {page[:300]}")
                n += 1
        finally:
            browser.close()

    with gunicorn(env, tmp_path / "gunicorn.log") as server, outbox_worker(env, tmp_path / "worker.log"):
        clients = [threading.Thread(target=answer_again_and_again, args=(i, server.port)) for i in range(CLIENTS)]
        for client in clients:
            client.start()
        wait_until(lambda: statuses[302] >= 5, 60, "answers are flowing before the round starts")
        started = time.monotonic()
        invite = subprocess.run(
            flask_command("invite", meeting.slug, "--all"),
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        invite_seconds = time.monotonic() - started
        time.sleep(0.5)  # and keep flowing while the worker sends
        wait_until(lambda: statuses[302] > 20, 60, "enough answers went through to prove anything")
        stop.set()
        for client in clients:
            client.join(timeout=30)
        everyone = ANSWERING + ROUND
        smtp_server.wait_for(everyone, timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            received = [m for m in list(smtp_server.messages) if str(m["Subject"]).startswith("Invitation:")]
            if len(received) >= everyone:
                break
            time.sleep(0.2)
        time.sleep(0.5)  # anything sent twice would arrive now
        log = server.log_text()

    print(
        f"\ninvite took {invite_seconds:.1f}s; answers: {dict(statuses)}; messages received: "
        f"{len(smtp_server.messages)}"
    )
    assert invite.returncode == 0, invite.stderr[-2000:]
    assert f"Queued {ROUND} invitation(s)" in invite.stdout
    assert not problems, problems[:5]
    assert statuses[302] > 20, f"too few answers went through to prove anything: {dict(statuses)}"
    assert "database is locked" not in log, log[-3000:]
    invited_addresses = collections.Counter(str(m["To"]).rsplit("<", 1)[-1].rstrip(">") for m in received)
    assert len(invited_addresses) == everyone, "every member is invited"
    assert set(invited_addresses.values()) == {1}, "nobody is invited twice"
    db.session.rollback()
    assert (
        db.session.scalar(
            select(func.count(OutboxMessage.id)).where(
                OutboxMessage.kind == "invitation", OutboxMessage.status == OutboxStatus.SENT
            )
        )
        == everyone
    )


class WorkerHoldingTheLock:
    """What `make run` has beside the web app: an outbox worker on the same SQLite file, taking the write lock over
    and over (a claim, a batch marked sent) and holding it a while each time."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stop = threading.Event()
        self.holding = threading.Event()
        self.times = 0
        self.hold_for = 0.1
        # When set, the worker holds the lock from its first claim until this is set, however slow the machine.
        self.released: threading.Event | None = None
        self.thread = threading.Thread(target=self._write)

    def _write(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=15)
        try:
            while not self.stop.is_set():
                connection.execute("BEGIN IMMEDIATE")
                connection.execute("UPDATE outbox_messages SET locked_by = 'worker' WHERE id < 0")
                self.holding.set()
                if self.released is not None:
                    self.released.wait(timeout=30)
                else:
                    time.sleep(self.hold_for)
                self.holding.clear()
                connection.execute("COMMIT")
                self.times += 1
                time.sleep(0.005)
        finally:
            connection.close()

    def __enter__(self) -> WorkerHoldingTheLock:
        db.session.commit()
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop.set()
        if self.released is not None:
            self.released.set()
        self.thread.join(timeout=30)

    def post(self, client, path: str, data: dict | None = None) -> int:
        """POST once the worker holds the lock, as a request arriving in the middle of its write."""
        assert self.holding.wait(timeout=15)
        status = client.post(path, data=data or {}).status_code
        db.session.rollback()  # what the end of a real request does; the test client shares this session
        return status


sqlite_only = pytest.mark.skipif(DATABASE != "sqlite", reason="SQLite's single write lock")


@sqlite_only
def test_saving_new_meetings_waits_for_the_worker(app, organiser_client):
    with WorkerHoldingTheLock(db.engine.url.database) as worker:
        codes = [
            worker.post(organiser_client, "/meetings/new", meeting_form(title=f"Round table {n}")) for n in range(10)
        ]
    assert codes == [302] * 10
    assert worker.times >= 10
    assert db.session.scalar(select(func.count(Meeting.id))) == 10


@sqlite_only
def test_sending_invitations_from_the_invite_page_waits_for_the_worker(app, organiser_client, make_meeting):
    meeting = make_meeting()
    _members(30, "page")
    with WorkerHoldingTheLock(db.engine.url.database) as worker:
        code = worker.post(
            organiser_client, f"/meetings/{meeting.slug}/invite", {"recipients": "all", "action": "send"}
        )
    assert code == 302
    invited = db.session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "invitation"))
    assert invited == 31  # and the organiser


@sqlite_only
def test_publishing_notes_waits_for_the_worker(app, organiser_client, organiser, make_meeting):
    from .notes_helpers import past_meeting, write_notes

    meeting = past_meeting(make_meeting)
    write_notes(meeting, organiser, title="What we learned", publish=False)
    with WorkerHoldingTheLock(db.engine.url.database) as worker:
        code = worker.post(organiser_client, f"/meetings/{meeting.slug}/notes/publish", {"email": "yes"})
    assert code == 302
    assert (
        db.session.scalar(select(MeetingNotes.status).where(MeetingNotes.meeting_id == meeting.id))
        == NotesStatus.PUBLISHED
    )


@sqlite_only
def test_a_writer_that_waits_past_the_busy_timeout_is_asked_to_try_again(app, organiser_client, monkeypatch):
    # Every connection opened from here on waits 200 ms rather than 15 s; the pool is emptied before and after, so
    # the request's connection is a new one and later tests get the real timeout again.
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 200)
    db.session.commit()
    db.session.close()
    db.engine.dispose()
    worker = WorkerHoldingTheLock(db.engine.url.database)
    worker.released = threading.Event()
    try:
        with worker:
            assert worker.holding.wait(timeout=15)
            started = time.monotonic()
            response = organiser_client.post("/meetings/new", data=meeting_form())
            waited = time.monotonic() - started
            db.session.rollback()
            worker.released.set()
    finally:
        db.session.close()
        db.engine.dispose()
        monkeypatch.undo()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "Please try again in a moment" in response.text
    assert waited < BUSY_TIMEOUT_MS / 1000, "the request gave up at its connection's busy timeout"
    assert db.session.scalar(select(func.count(Meeting.id))) == 0


@sqlite_only
def test_a_read_only_request_that_writes_after_reading_is_logged(app, client, caplog):
    from kxn_meetings.models import RateLimitHit, utcnow

    def reads_then_writes():
        db.session.scalar(select(func.count(Member.id)))
        db.session.add(RateLimitHit(key="example", created_at=utcnow()))
        db.session.flush()
        db.session.rollback()
        return "done"

    app.add_url_rule("/reads-then-writes", "reads_then_writes", reads_then_writes)
    db.session.rollback()
    assert client.get("/reads-then-writes").status_code == 200
    assert "GET /reads-then-writes writes after reading" in caplog.text


@sqlite_only
def test_a_sign_in_link_that_does_not_work_counts_the_attempt_with_the_write_lock(app, client, caplog):
    db.session.rollback()
    assert client.get("/sign-in/link/not-a-real-token").status_code == 410
    assert "writes after reading" not in caplog.text


# Taking turns before SQLite is asked -------------------------------------------------------------------------------

HOLD_THE_TURN = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.lockf(fd, fcntl.LOCK_EX, 1, 0)
print("holding", flush=True)
seen = "nobody waited"
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 1)
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, 1)
    except OSError:
        seen = "a writer waits"
        break
    time.sleep(0.01)
print(seen, flush=True)
sys.stdin.readline()
"""


@sqlite_only
def test_a_writer_waits_for_the_turn_another_process_holds(app, organiser_client):
    """Another app process in the middle of a write holds the turn: a request that writes waits for it in the queue,
    says so to the holder (which lets a waiting process go next), and goes on once the turn is given back."""
    db.session.commit()
    seen: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_TURN, f"{db.engine.url.database}-writers"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:

        def give_back_once_seen() -> None:
            seen.append(holder.stdout.readline().strip())
            holder.stdin.write("\n")
            holder.stdin.flush()

        try:
            assert holder.stdout.readline().strip() == "holding"
            giver = threading.Thread(target=give_back_once_seen)
            giver.start()
            status = organiser_client.post("/meetings/new", data=meeting_form()).status_code
            giver.join(timeout=30)
        finally:
            holder.kill()
    assert seen == ["a writer waits"]
    assert status == 302
    assert db.session.scalar(select(func.count(Meeting.id))) == 1


@sqlite_only
def test_writers_of_one_process_queue_before_they_ask_sqlite(app):
    """SQLite's own wait polls with sleeps of up to 100 ms: a second writer must not be left to it while the first
    holds the lock, but wait its turn and begin the moment the first commits."""
    began: list[str] = []
    second_ready = threading.Event()
    engine = db.engine

    def note(_conn, _cursor, statement, *_args):
        if statement.startswith("BEGIN IMMEDIATE"):
            began.append(threading.current_thread().name)

    def second() -> None:
        with database.writing(), engine.connect() as connection:
            second_ready.set()
            connection.exec_driver_sql("SELECT 1")
            connection.commit()

    db.session.commit()
    event.listen(engine, "before_cursor_execute", note)
    try:
        with database.writing(), engine.connect() as first:
            first.exec_driver_sql("SELECT 1")
            thread = threading.Thread(target=second, name="second")
            thread.start()
            assert second_ready.wait(timeout=15)
            time.sleep(0.2)
            waiting = list(began)
            first.commit()
        thread.join(timeout=15)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert waiting == [threading.current_thread().name]
    assert began == [threading.current_thread().name, "second"]


@pytest.mark.parametrize("how", ["personal link", "signed in"])
def test_an_answer_reads_without_the_write_lock_and_takes_it_only_to_write(
    app, client, member_client, make_meeting, member, how
):
    """Members answering at once read in parallel and queue only for their short write."""
    meeting = make_meeting()
    if how == "signed in":
        client, path = member_client, f"/meetings/{meeting.slug}/rsvp"
    else:
        path = f"/meetings/{meeting.slug}/answer/{invitations.personal_link(meeting, member).token}"
    db.session.commit()
    db.session.close()  # the request begins its own transaction, as it would in its own app context
    statements: list[str] = []

    def note(_conn, _cursor, statement, *_args):
        statements.append(statement.split(None, 1)[0] + (" IMMEDIATE" if "IMMEDIATE" in statement[:20] else ""))

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        response = client.post(path, data={"answer": "going"})
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert response.status_code == 302
    if DATABASE == "sqlite":
        locked = statements.index("BEGIN IMMEDIATE")
        assert statements[0] == "BEGIN" and "SELECT" in statements[:locked]
        assert all(verb in ("BEGIN", "SELECT") for verb in statements[:locked])
    assert statements.count("UPDATE") + statements.count("INSERT") >= 1
