"""The outbox at the size of a real invitation round: several worker processes, one of them killed mid-batch,
and a mail server that is down while an organiser sends 200 invitations."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kxn_meetings.extensions import db
from kxn_meetings.models import Meeting, Member, OutboxMessage, OutboxStatus
from kxn_meetings.services import invitations

from .conftest import TEST_SECRET
from .dates import GMT_START

ROOT = Path(__file__).resolve().parent.parent
FLASK = str(Path(sys.executable).parent / "flask")
START = GMT_START


def invite_many(make_meeting, count: int) -> Meeting:
    meeting = make_meeting(start=START, title="Meeting three", slug="meeting-three")
    db.session.add_all(Member(name=f"Practitioner {n}", email=f"practitioner{n}@example.org") for n in range(count))
    db.session.commit()
    return meeting


def outbox(*where) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count(OutboxMessage.id)).where(*where)) or 0


def received_ids(smtp_server) -> collections.Counter:
    with smtp_server.lock:
        return collections.Counter(str(m["Message-ID"]) for m in smtp_server.messages)


class SlowServer:
    """Holds each DATA for `delay` seconds while set, so workers are caught holding claimed messages."""

    def __init__(self, smtp_server) -> None:
        self.delay = 0.0
        handler = smtp_server._controller.handler
        accept = handler.handle_DATA

        async def handle_DATA(server, session, envelope):
            if self.delay:
                await asyncio.sleep(self.delay)
            return await accept(server, session, envelope)

        handler.handle_DATA = handle_DATA


def start_worker(app, smtp_server, log: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        KXN_SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"], KXN_SECRET_KEY=TEST_SECRET,
        KXN_BASE_URL=app.config["BASE_URL"], KXN_INSTANCE_PATH=str(log.parent),
        KXN_MAIL_SERVER="127.0.0.1", KXN_MAIL_PORT=str(smtp_server.port), KXN_MAIL_TIMEOUT="10",
        KXN_OUTBOX_POLL_SECONDS="0.2", KXN_OUTBOX_BATCH_SIZE="20", KXN_OUTBOX_LEASE_SECONDS="3",
        KXN_OUTBOX_RETRY_BASE_SECONDS="1",
    )
    with log.open("wb") as out:
        return subprocess.Popen([FLASK, "--app", "kxn_meetings", "kxn", "outbox", "worker"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def claimed_by(process: subprocess.Popen) -> set[str]:
    """Message-IDs of the pending messages a worker process holds a claim on (its id carries the pid)."""
    db.session.rollback()
    return set(db.session.scalars(select(OutboxMessage.message_id).where(
        OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.locked_by.like(f"%-{process.pid}-%"))))


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.postgresql_only
@pytest.mark.slow
def test_three_workers_drain_a_thousand_and_a_killed_worker_loses_nothing(app, smtp_server, make_meeting,
                                                                         tmp_path):
    meeting = invite_many(make_meeting, 1000)
    assert invitations.invite(meeting, db.session.scalars(select(Member)).all()) == 1000
    db.session.commit()
    expected = set(db.session.scalars(select(OutboxMessage.message_id)))
    slow = SlowServer(smtp_server)
    slow.delay = 0.1
    workers = [start_worker(app, smtp_server, tmp_path / f"worker{n}.log") for n in range(3)]
    try:
        victim = workers[0]
        wait_until(lambda: len(claimed_by(victim)) >= 10, 60, "the first worker to hold a batch")
        wait_until(lambda: len(smtp_server.messages) >= 5, 60, "the first deliveries")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        held = claimed_by(victim)
        assert held, "the killed worker held claimed messages"
        slow.delay = 0.0
        wait_until(lambda: outbox(OutboxMessage.status != OutboxStatus.SENT) == 0, 120,
                   "every message to be sent")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    logs = "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("worker*.log")))
    assert workers[1].returncode == workers[2].returncode == 0, logs
    assert "Outbox worker stopped." in logs

    counts = received_ids(smtp_server)
    assert set(counts) == expected  # every message arrived, nothing else did
    twice = {message_id for message_id, n in counts.items() if n > 1}
    assert twice <= held, "only a message the killed worker had claimed may arrive twice"
    assert max(counts.values()) <= 2
    assert outbox(OutboxMessage.status == OutboxStatus.SENT) == 1000
    assert outbox(OutboxMessage.locked_by.is_not(None)) == 0


@pytest.mark.app_config(OUTBOX_DELIVER_AFTER_COMMIT=True)
def test_invitations_to_200_while_the_mail_server_is_down_go_out_once_it_is_back(
        app, client, runner, sign_in, organiser, smtp_server, make_meeting):
    meeting = invite_many(make_meeting, 199)
    sign_in(client, organiser)
    smtp_server.stop()

    started = time.perf_counter()
    response = client.post(f"/meetings/{meeting.slug}/invite", data={"recipients": "all", "action": "send"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 302
    assert elapsed < 2, f"the organiser waited {elapsed:.1f}s"
    assert "200 invitations queued." in client.get(response.headers["Location"]).get_data(as_text=True)
    assert outbox(OutboxMessage.status == OutboxStatus.PENDING) == 200
    assert outbox(OutboxMessage.attempts > 0) == 0  # an outage is not the messages' fault
    assert smtp_server.messages == []

    smtp_server.start()
    result = runner.invoke(args=["kxn", "outbox", "send"])
    assert result.exit_code == 0, result.output
    assert "Sent 200;" in result.output
    smtp_server.wait_for(200)
    counts = received_ids(smtp_server)
    db.session.rollback()
    assert set(counts) == set(db.session.scalars(select(OutboxMessage.message_id)))
    assert set(counts.values()) == {1}
    assert "Nothing to send." in runner.invoke(args=["kxn", "outbox", "send"]).output
    assert len(smtp_server.messages) == 200
