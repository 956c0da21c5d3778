"""Calendar files under gunicorn, as ratios to a bare route served the same way.

A temporary SQLite database (real migrations) holds 500 public meetings with agenda items. Measured: one
meeting's .ics, the whole feed (no conditional headers) and the feed answered 304 (If-None-Match), each in
interleaved rounds, the best round counting (other work on the machine only ever slows a round down).

The baseline is bench/_bare_app.py, a plain Flask app with one route returning "ok", served by the same
gunicorn configuration; `/bench/bare`, the same route added to our app, shows what the app's own per-request
work (session, security headers) costs. Two figures: requests per second of wall-clock time, and requests per
CPU-second spent by the server's workers (from /proc). The load generator shares the machine, so the
targets are judged on the second, which other work hardly moves. Always exits 0: a benchmark reports.
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _harness as harness

MEETINGS = 500
ROUNDS = 5  # the figures of a 2 s round vary by a quarter on a quiet machine; five rounds settle the best one
SECONDS = 2.0
WARMUP = 0.5
CONNECTIONS = 4
TARGETS = {"ics": 0.40, "feed": 0.05, "304": 0.70}


def bench_app():
    """The app with a bare route added, served by gunicorn as `bench.feed:bench_app()`."""
    from kxn_meetings import create_app

    app = create_app()
    app.add_url_rule("/bench/bare", "bench_bare", lambda: "ok")
    return app


def seed(url: str) -> str:
    """500 public meetings from five months ago to a year ahead, in four zones; the slug of an upcoming one."""
    from kxn_meetings.extensions import db
    from kxn_meetings.models import Meeting, MeetingStatus
    from kxn_meetings.services.series import default_series

    app = harness.make_app(url)
    with app.app_context():
        series = default_series()
        now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
        zones = ["Europe/London"] * 7 + ["America/New_York", "Australia/Sydney", "Asia/Kolkata"]
        for n in range(MEETINGS):
            start = now + dt.timedelta(days=n - 150, hours=n % 5)
            db.session.add(
                harness.sample_meeting(
                    f"{start:%Y-%m-%d}-meeting-{n}",
                    start,
                    series_id=series.id,
                    title=f"Policing young adults, part {n}: trauma-informed practice in custody; what works",
                    theme="Young adults 18-25 in the justice system, and the services around them",
                    description="Practitioners from police, health and youth services.",
                    timezone=zones[n % len(zones)],
                    join_url=f"https://meet.example.org/kxn-{n}",
                    location="" if n % 4 else "Police Foundation, London",
                    status=MeetingStatus.CANCELLED if n % 25 == 0 else MeetingStatus.SCHEDULED,
                    published_at=now,
                    sequence=n % 3,
                )
            )
        db.session.commit()
        slug = db.session.scalar(db.select(Meeting.slug).where(Meeting.starts_at > now).order_by(Meeting.starts_at))
        db.engine.dispose()
    return slug


def cold_feed_build_ms(url: str) -> float:
    """Building the whole feed from the database without a stored body (after each change, once a worker)."""
    from kxn_meetings.services import calendars

    app = harness.make_app(url)
    with app.test_request_context():
        calendars.public_feed_bytes(calendars.public_feed_meetings())  # zone rules worked out and cached
        start = time.perf_counter()
        for _ in range(3):
            calendars.public_feed_bytes(calendars.public_feed_meetings())
        return (time.perf_counter() - start) / 3 * 1000


def workers_cpu_seconds(master_pid: int) -> float:
    """CPU time of a gunicorn master's workers, live ones and those it has recycled (its children's time)."""

    def ticks(pid: int | str, *fields: int) -> int:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(stat[i]) for i in fields)

    total = ticks(master_pid, 13, 14)  # cutime, cstime: workers that have exited
    for pid in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split():
        try:
            total += ticks(pid, 11, 12)  # utime, stime
        except OSError:
            pass  # recycled between listing and reading: counted in the master's figures next time
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    wall: float = 0.0  # requests per second
    cpu: float = 0.0  # requests per CPU-second of the server's workers


def measure(port: int, master: int, path: str, headers: dict[str, str] | None = None, expect: int = 200) -> Figures:
    result: list[harness.Result] = []
    runner = threading.Thread(
        target=lambda: result.append(
            harness.load(
                port, harness.get(path, expect, headers), connections=CONNECTIONS, seconds=SECONDS, warmup=WARMUP
            )
        )
    )
    runner.start()
    time.sleep(WARMUP)
    before = workers_cpu_seconds(master)
    time.sleep(SECONDS)
    used = workers_cpu_seconds(master) - before
    runner.join()
    [outcome] = result
    if outcome.errors:
        print(f"   {path}: {outcome.errors} answers were not {expect}", flush=True)
    return Figures(outcome.rps, outcome.requests / used if used > 0 else 0.0)


def fetch(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def main() -> None:
    with harness.database("sqlite") as url:
        slug = seed(url)
        env = harness.app_env(url)
        with (
            harness.gunicorn("bench._bare_app:app", env) as (plain_port, plain_master),
            harness.gunicorn("bench.feed:bench_app()", env) as (port, master),
        ):
            status, headers, body = fetch(port, "/calendar.ics")
            if status != 200 or fetch(port, f"/meetings/{slug}/calendar.ics")[0] != 200:
                print(f"feed: unexpected answers (feed {status}); nothing measured")
                return
            etag = headers["ETag"]
            print(
                f"feed: {body.count(b'BEGIN:VEVENT')} events, {len(body) // 1024} KiB; gunicorn.conf.py with 2 "
                f"workers x 4 threads; {CONNECTIONS} keep-alive connections; best of {ROUNDS} rounds of "
                f"{SECONDS:g} s",
                flush=True,
            )
            urls = {
                "plain": (plain_port, plain_master, "/", None, 200),
                "bare": (port, master, "/bench/bare", None, 200),
                "ics": (port, master, f"/meetings/{slug}/calendar.ics", None, 200),
                "feed": (port, master, "/calendar.ics", None, 200),
                "304": (port, master, "/calendar.ics", {"If-None-Match": etag}, 304),
            }
            best = {key: Figures() for key in urls}
            for _ in range(ROUNDS):
                for key, args in urls.items():
                    figures = measure(*args)
                    best[key] = Figures(max(best[key].wall, figures.wall), max(best[key].cpu, figures.cpu))
        report(best)
        print(
            f"feed: building the whole feed without a stored body takes {cold_feed_build_ms(url):.0f} ms "
            "(once a worker after each change to the feed)"
        )


def report(best: dict[str, Figures]) -> None:
    plain = best["plain"]
    print(f"{'':32}{'req/s':>8}{'of plain':>10}{'req/CPU-s':>11}{'of plain':>10}{'target':>8}")
    rows = [
        ("plain Flask app, bare route", "plain"),
        ("app, /bench/bare", "bare"),
        ("one meeting's .ics", "ics"),
        ("feed, full body", "feed"),
        ("feed, 304 (If-None-Match)", "304"),
    ]
    for label, key in rows:
        f = best[key]
        line = f"{label:32}{f.wall:8.0f}{f.wall / plain.wall:10.1%}{f.cpu:11.0f}{f.cpu / plain.cpu:10.1%}"
        if key in TARGETS:
            line += f"{TARGETS[key]:8.0%}  {harness.verdict(f.cpu / plain.cpu, TARGETS[key])}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
