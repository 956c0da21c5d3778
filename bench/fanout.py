"""Invitation fan-out: 2,000 personal invitations queued and delivered, as a ratio to raw smtplib.

A local aiosmtpd server runs in its own process on 127.0.0.1 and counts what it receives.
(a) raw: smtplib sends 2,000 pre-built messages over one connection; the messages are our own
    invitations' bytes, so both sides move the same data.
(b) ours: services.invitations.invite() queues 2,000 invitations for 2,000 members in a temporary SQLite
    database made by the real migrations, one commit, then mail.deliver_due() delivers them.
Prints both times, the ratio and PASS/MISS against the target; always exits 0 (a benchmark reports).

    .venv/bin/python bench/fanout.py        (or `make bench`)
    KXN_BENCH_PROFILE=1 .venv/bin/python bench/fanout.py    adds a cProfile of (b)
"""

from __future__ import annotations

import cProfile
import datetime as dt
import io
import multiprocessing
import os
import pstats
import smtplib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import BENCH_SECRET, database, free_port, sample_meeting

MEMBERS = int(os.environ.get("KXN_BENCH_MEMBERS", "2000"))
TARGET_RATIO = 1.5
ROUNDS = 3  # each side is timed this often; the best time counts (the machine is shared)


def _serve(port: int, total, unique, ready, stop) -> None:
    """The SMTP server process: counts every message and every distinct Message-ID."""
    import asyncio

    from aiosmtpd.controller import Controller

    seen: set[bytes] = set()

    class Handler:
        async def handle_DATA(self, _server, _session, envelope):
            content = envelope.original_content or envelope.content
            head = content[: content.find(b"\r\n\r\n")]
            start = head.find(b"Message-ID: ")
            seen.add(head[start : head.find(b"\r\n", start)] if start >= 0 else b"")
            with total.get_lock():
                total.value += 1
                unique.value = len(seen)
            await asyncio.sleep(0)
            return "250 Message accepted"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    ready.set()
    stop.wait(600)
    controller.stop()


class Server:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.port = free_port()
        self.total = context.Value("i", 0)
        self.unique = context.Value("i", 0)
        self._ready = context.Event()
        self._stop = context.Event()
        self._process = context.Process(
            target=_serve, args=(self.port, self.total, self.unique, self._ready, self._stop), daemon=True
        )

    def __enter__(self) -> Server:
        self._process.start()
        if not self._ready.wait(30):
            raise RuntimeError("the SMTP server did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._process.join(15)
        if self._process.is_alive():
            self._process.kill()

    def wait_for(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.total.value < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.total.value} of {count} messages arrived")
            time.sleep(0.001)


def make_app(url: str, port: int):
    from kxn_meetings import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": BENCH_SECRET,
            "BASE_URL": "https://kxn.example.org",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": port,
            "CALENDAR_ADDRESS": "calendar@kxn.example.org",
        }
    )


def fill(count: int, label: str) -> tuple[int, list[int]]:
    """A published meeting and `count` active members; returns their ids."""
    from kxn_meetings.extensions import db
    from kxn_meetings.models import Member

    start = dt.datetime(2027, 3, 9, 15, 0, tzinfo=dt.UTC)
    meeting = sample_meeting(f"2027-03-09-{label}", start)
    db.session.add(meeting)
    members = [
        Member(
            name=f"Practitioner {label} {n}",
            email=f"{label}.{n}@example.org",
            organisation=["Thames Valley Police", "Lancashire VRU", "NHS England"][n % 3],
        )
        for n in range(count)
    ]
    db.session.add_all(members)
    db.session.commit()
    return meeting.id, [m.id for m in members]


def ours(app, server: Server, meeting_id: int, member_ids: list[int]) -> tuple[float, float]:
    """Seconds from invite() for every member to the last message received, and of those the queueing."""
    from sqlalchemy import select

    from kxn_meetings.extensions import db
    from kxn_meetings.mail import deliver_due
    from kxn_meetings.models import Meeting, Member
    from kxn_meetings.services import invitations

    with app.app_context():
        before = server.total.value
        started = time.perf_counter()
        meeting = db.session.get(Meeting, meeting_id)
        members = db.session.scalars(select(Member).where(Member.id.in_(member_ids)).order_by(Member.id)).all()
        queued = invitations.invite(meeting, members)
        db.session.commit()
        queueing = time.perf_counter() - started
        # The invite page's request ends here; a worker (or `kxn outbox send`) delivers with a fresh session.
        db.session.remove()
        del meeting, members
        while server.total.value < before + queued:
            report = deliver_due()
            if report.failed or (report.sent == 0 and report.retrying):
                raise RuntimeError(f"delivery failed: {report.errors[:3]}")
        server.wait_for(before + len(member_ids))
        elapsed = time.perf_counter() - started
        db.session.remove()
    if queued != len(member_ids):
        raise RuntimeError(f"{queued} queued for {len(member_ids)} members")
    return elapsed, queueing


def prebuilt(app, meeting_id: int) -> list[tuple[str, str, bytes]]:
    """The invitations just delivered, as bytes ready for smtplib: same sizes, same content."""
    from sqlalchemy import select

    from kxn_meetings.extensions import db
    from kxn_meetings.mail import build_message
    from kxn_meetings.models import OutboxMessage

    with app.app_context():
        rows = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.meeting_id == meeting_id).order_by(OutboxMessage.id)
        ).all()
        messages = []
        for row in rows:
            message = build_message(row)
            messages.append(
                (message["From"].addresses[0].addr_spec, message["To"].addresses[0].addr_spec, message.as_bytes())
            )
        db.session.remove()
    return messages


def raw(server: Server, messages: list[tuple[str, str, bytes]]) -> float:
    before = server.total.value
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as smtp:
        for sender, recipient, data in messages:
            smtp.sendmail(sender, [recipient], data)
    server.wait_for(before + len(messages))
    return time.perf_counter() - started


def main() -> int:
    profile = os.environ.get("KXN_BENCH_PROFILE") == "1"
    with database("sqlite") as url, Server() as server:
        app = make_app(url, server.port)
        with app.app_context():
            warm_meeting, warm_members = fill(20, "warm")
            rounds = [fill(MEMBERS, f"r{n}") for n in range(ROUNDS)]
        ours(app, server, warm_meeting, warm_members)  # imports, templates and zone rules loaded once
        # The two sides take turns, so both see the same load on a shared machine.
        ours_times: list[tuple[float, float]] = []
        raw_times: list[float] = []
        messages: list[tuple[str, str, bytes]] = []
        for n, (meeting_id, member_ids) in enumerate(rounds):
            profiler = cProfile.Profile() if profile and n == 0 else None
            if profiler:
                profiler.enable()
            ours_times.append(ours(app, server, meeting_id, member_ids))
            if profiler:
                profiler.disable()
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
                print(out.getvalue())
            messages = messages or prebuilt(app, meeting_id)
            raw_times.append(raw(server, messages))
        size = sum(len(m[2]) for m in messages) / len(messages)
        unique_ours = server.unique.value
    best_raw, (best_ours, queueing) = min(raw_times), min(ours_times)
    ratio = best_ours / best_raw
    verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
    print(f"fan-out of {MEMBERS} invitations (average message {size / 1024:.1f} KiB), best of {ROUNDS}:")
    print(
        f"  raw smtplib, one connection:        {best_raw:6.2f} s  ({MEMBERS / best_raw:6.0f} msg/s)"
        f"  runs: {', '.join(f'{t:.2f}' for t in raw_times)}"
    )
    print(
        f"  invite() + deliver_due() (SQLite):  {best_ours:6.2f} s  ({MEMBERS / best_ours:6.0f} msg/s)"
        f"  runs: {', '.join(f'{t:.2f}' for t, _ in ours_times)}"
    )
    print(f"    of which invite() and the commit:  {queueing:6.2f} s; delivery {best_ours - queueing:.2f} s")
    print(f"  ratio {ratio:.2f}x (target <= {TARGET_RATIO}x): {verdict}")
    print(f"  distinct Message-IDs received: {unique_ours}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
