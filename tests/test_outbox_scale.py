"""The outbox at the size of a real invitation round: several worker processes, one of them killed mid-batch,
and a mail server that is down while an organiser sends 200 invitations."""

from __future__ import annotations

import asyncio
import collections
import email
import email.policy
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
from .live_app import wait_until

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


class Ledger:
    """What the server saw on each connection, in order: every message it took in (DATA complete) and every command
    after it. A message followed by a later command on its connection was answered and its answer read (the worker
    says nothing more until it has read the verdict); the last message on a connection that then dropped may have
    had no answer, or an answer the worker never read: it was in flight."""

    def __init__(self, smtp_server, delay: float) -> None:
        self.delay = delay
        self.events: dict[tuple, list[tuple[str, str]]] = collections.defaultdict(list)
        handler = smtp_server._controller.handler
        accept = handler.handle_DATA

        async def handle_DATA(server, session, envelope):
            content = envelope.original_content or envelope.content
            message_id = str(email.message_from_bytes(content, policy=email.policy.default)["Message-ID"])
            self.events[session.peer].append(("message", message_id))
            if self.delay:
                await asyncio.sleep(self.delay)
            return await accept(server, session, envelope)

        async def handle_MAIL(server, session, envelope, address, mail_options):
            self.events[session.peer].append(("command", "MAIL"))
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            return "250 OK"

        def command(name: str, reply: str):
            async def handle(server, session, envelope, *args):
                self.events[session.peer].append(("command", name))
                return reply

            return handle

        handler.handle_DATA = handle_DATA
        handler.handle_MAIL = handle_MAIL
        handler.handle_NOOP = command("NOOP", "250 OK")
        handler.handle_RSET = command("RSET", "250 OK")
        handler.handle_QUIT = command("QUIT", "221 Bye")

    def connections(self) -> set[tuple]:
        return set(self.events)

    def taken_in(self, connections: set[tuple]) -> list[str]:
        return [value for peer in connections for kind, value in self.events[peer] if kind == "message"]

    def in_flight(self, connections: set[tuple]) -> set[str]:
        """Messages taken in on these connections with no command after them."""
        flying = set()
        for peer in connections:
            events = self.events[peer]
            if events and events[-1][0] == "message":
                flying.add(events[-1][1])
        return flying


# A worker sends only in the first half of its lease; the other half is the margin for a stalled process. Leases
# are short here so that a killed worker's messages come back within the test, and long enough that two cores
# running both database passes at once do not eat that margin.
LEASE_SECONDS = 8


def start_worker(app, smtp_server, log: Path, lease_seconds: float = LEASE_SECONDS) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        KXN_SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
        KXN_SECRET_KEY=TEST_SECRET,
        KXN_BASE_URL=app.config["BASE_URL"],
        KXN_INSTANCE_PATH=str(log.parent),
        KXN_MAIL_SERVER="127.0.0.1",
        KXN_MAIL_PORT=str(smtp_server.port),
        KXN_MAIL_TIMEOUT="10",
        KXN_OUTBOX_POLL_SECONDS="0.2",
        KXN_OUTBOX_BATCH_SIZE="20",
        KXN_OUTBOX_LEASE_SECONDS=str(lease_seconds),
        KXN_OUTBOX_RETRY_BASE_SECONDS="1",
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [FLASK, "--app", "kxn_meetings", "kxn", "outbox", "worker"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def claimed_by(process: subprocess.Popen) -> set[str]:
    """Message-IDs of the pending messages a worker process holds a claim on (its id carries the pid)."""
    db.session.rollback()
    return set(
        db.session.scalars(
            select(OutboxMessage.message_id).where(
                OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.locked_by.like(f"%-{process.pid}-%")
            )
        )
    )


def stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [7, 26])  # mid-way through the first batch of 20, and the second
def test_a_worker_killed_mid_pass_repeats_at_most_the_message_in_flight(
    app, smtp_server, make_meeting, tmp_path, kill_after
):
    meeting = invite_many(make_meeting, 60)
    assert invitations.invite(meeting, db.session.scalars(select(Member)).all()) == 60
    db.session.commit()
    expected = set(db.session.scalars(select(OutboxMessage.message_id)))
    ledger = Ledger(smtp_server, delay=0.05)  # a server that takes a while over each message
    victim = start_worker(app, smtp_server, tmp_path / "victim.log")
    survivor = None
    try:
        wait_until(
            lambda: len(ledger.taken_in(ledger.connections())) >= kill_after,
            60,
            f"{kill_after} messages to reach the server",
        )
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        time.sleep(0.2)  # the server notices the dropped connection
        killed = ledger.connections()
        in_flight = ledger.in_flight(killed)
        before_kill = ledger.taken_in(killed)
        answered = set(before_kill) - in_flight
        db.session.rollback()
        recorded_sent = set(
            db.session.scalars(select(OutboxMessage.message_id).where(OutboxMessage.status == OutboxStatus.SENT))
        )
        db.session.rollback()
        # Everything the server answered, and the worker heard, was recorded before the worker said more.
        assert answered <= recorded_sent
        assert recorded_sent <= set(before_kill)
        assert len(in_flight) <= 1

        survivor = start_worker(app, smtp_server, tmp_path / "survivor.log")
        wait_until(lambda: outbox(OutboxMessage.status != OutboxStatus.SENT) == 0, 120, "every message to be sent")
    finally:
        stop([worker for worker in (victim, survivor) if worker is not None])
    logs = "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("*.log")))
    assert survivor.returncode == 0, logs

    counts = received_ids(smtp_server)
    assert set(counts) == expected  # none lost, nothing else sent
    repeated = {message_id for message_id, n in counts.items() if n > 1}
    assert repeated <= in_flight, f"repeated {len(repeated)}, in flight at the kill {len(in_flight)}"
    assert max(counts.values()) <= 2
    assert len(before_kill) >= kill_after and len(set(before_kill)) == len(before_kill)
    assert outbox(OutboxMessage.status == OutboxStatus.SENT) == 60
    assert outbox(OutboxMessage.locked_by.is_not(None)) == 0


@pytest.mark.postgresql_only
@pytest.mark.slow
def test_three_workers_drain_a_thousand_and_a_killed_worker_loses_nothing(app, smtp_server, make_meeting, tmp_path):
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
        wait_until(lambda: outbox(OutboxMessage.status != OutboxStatus.SENT) == 0, 120, "every message to be sent")
    finally:
        stop(workers)
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
    app, client, runner, sign_in, organiser, smtp_server, make_meeting
):
    meeting = invite_many(make_meeting, 199)
    sign_in(client, organiser)
    smtp_server.stop()

    started = time.perf_counter()
    response = client.post(f"/meetings/{meeting.slug}/invite", data={"recipients": "all", "action": "send"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 302
    assert elapsed < 10, f"the organiser waited {elapsed:.1f}s"
    assert "200 invitations are on their way." in client.get(response.headers["Location"]).get_data(as_text=True)
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
