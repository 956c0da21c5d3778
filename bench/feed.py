"""Calendar files under load, as ratios to a bare Flask route served the same way.

Starts two gunicorn servers on 127.0.0.1 with the same worker settings: the app on a temporary SQLite
database (real migrations, 500 public meetings with agenda items) and a one-route Flask app. Each URL is
loaded for a few seconds by keep-alive clients in separate processes. Prints requests per second, the
ratio to the bare route and PASS/MISS against the targets; always exits 0 (a benchmark reports).

    .venv/bin/python bench/feed.py        (or `make bench`)
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MEETINGS = 500
WARM_UP_SECONDS = 1.0
MEASURE_SECONDS = float(os.environ.get("KXN_BENCH_SECONDS", "4"))
CLIENT_PROCESSES = 2
CONNECTIONS_PER_PROCESS = 2
GUNICORN_SETTINGS = ["--workers", "2", "--worker-class", "gthread", "--threads", "2", "--keep-alive", "30",
                     "--log-level", "warning"]

# The baseline: the cheapest response Flask can give, served by the same gunicorn settings.
bare_app = Flask("bare")


@bare_app.route("/bench/bare")
def bare() -> tuple[str, int, dict[str, str]]:
    return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def build_database(url: str, env: dict[str, str]) -> str:
    """Migrate a fresh SQLite database and fill it; return the slug of one meeting."""
    code = f"""
import datetime as dt
from flask_migrate import upgrade
from kxn_meetings import create_app
from kxn_meetings.extensions import db
from kxn_meetings.models import AgendaItem, Meeting, MeetingStatus, Visibility
from kxn_meetings.services.meetings import default_series

app = create_app()
with app.app_context():
    upgrade(directory=app.extensions["migrate"].directory)
    series = default_series()
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    zones = ["Europe/London"] * 7 + ["America/New_York", "Australia/Sydney", "Asia/Kolkata"]
    for n in range({MEETINGS}):
        start = now + dt.timedelta(days=n - 150, hours=n % 5)
        meeting = Meeting(
            series_id=series.id, slug=f"{{start:%Y-%m-%d}}-meeting-{{n}}",
            title=f"Policing young adults, part {{n}}: trauma-informed practice in custody; what works",
            theme="Young adults 18-25 in the justice system, and the services around them",
            description="Practitioners from police, health and youth services.",
            starts_at=start, ends_at=start + dt.timedelta(hours=2), timezone=zones[n % len(zones)],
            join_url=f"https://meet.example.org/kxn-{{n}}", location="" if n % 4 else "Police Foundation, London",
            status=MeetingStatus.CANCELLED if n % 25 == 0 else MeetingStatus.SCHEDULED,
            visibility=Visibility.PUBLIC, published_at=now, sequence=n % 3,
            agenda_items=[
                AgendaItem(position=0, start_time=dt.time(15, 0), title="Welcome and introductions"),
                AgendaItem(position=1, start_time=dt.time(15, 15), title="Lessons from the Manchester pilot",
                           speaker_name="Dr Asha Patel", speaker_organisation="University of Salford"),
                AgendaItem(position=2, start_time=dt.time(16, 30), title="Workshops and next steps"),
            ],
        )
        db.session.add(meeting)
    db.session.commit()
    print(db.session.scalar(db.select(Meeting.slug).where(Meeting.starts_at > now).order_by(Meeting.starts_at)))
"""
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True,
                            text=True, timeout=300)
    return result.stdout.strip().splitlines()[-1]


def start_gunicorn(target: str, port: int, env: dict[str, str], extra: list[str]) -> subprocess.Popen:
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    process = subprocess.Popen(
        [gunicorn, *GUNICORN_SETTINGS, "--bind", f"{HOST}:{port}", *extra, target],
        env=env, cwd=ROOT, start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn for {target} exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/bench/bare" if "bare" in target else "/calendar.ics")
            conn.getresponse().read()
            conn.close()
            return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"gunicorn for {target} did not answer on port {port}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _load(port: int, path: str, headers: dict[str, str], expect: int, seconds: float, result) -> None:
    """One keep-alive connection sending requests one after another until time is up."""
    done = errors = 0
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    warm_until = time.monotonic() + WARM_UP_SECONDS
    end = warm_until + seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == expect
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=10)
            ok = False
        if now >= warm_until:
            done += ok
            errors += not ok
    conn.close()
    result.append((done, errors))


def _client_process(args) -> tuple[int, int]:
    port, path, headers, expect, seconds = args
    results: list[tuple[int, int]] = []
    threads = [threading.Thread(target=_load, args=(port, path, headers, expect, seconds, results))
               for _ in range(CONNECTIONS_PER_PROCESS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(r[0] for r in results), sum(r[1] for r in results)


def measure(pool, port: int, path: str, *, headers: dict[str, str] | None = None, expect: int = 200) -> float:
    jobs = [(port, path, headers or {}, expect, MEASURE_SECONDS)] * CLIENT_PROCESSES
    counts = pool.map(_client_process, jobs)
    done, errors = sum(c[0] for c in counts), sum(c[1] for c in counts)
    if errors:
        print(f"   {path}: {errors} answers were not {expect}", flush=True)
    return done / MEASURE_SECONDS


def fetch(port: int, path: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    conn.close()
    return response


def cold_feed_build_ms(env: dict[str, str]) -> float:
    """Milliseconds to build the whole feed from the database once, with no cached body (for information)."""
    code = """
import time
from kxn_meetings import create_app
from kxn_meetings.services import calendars
app = create_app()
with app.test_request_context():
    calendars.public_feed_bytes(calendars.public_feed_meetings())  # imports and zone rules warmed
    runs = 5
    start = time.perf_counter()
    for _ in range(runs):
        calendars.public_feed_bytes(calendars.public_feed_meetings())
    print((time.perf_counter() - start) / runs * 1000)
"""
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True,
                            text=True, timeout=300)
    return float(result.stdout.strip().splitlines()[-1])


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="kxn-bench-feed-"))
    database = workdir / "bench.sqlite3"
    app_port, bare_port = free_port(), free_port()
    env = {
        **os.environ,
        "KXN_SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
        "KXN_SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789abcdef",
        "KXN_BASE_URL": f"http://{HOST}:{app_port}",
        "KXN_INSTANCE_PATH": str(workdir / "instance"),
        "KXN_MAIL_SERVER": "",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")])),
    }
    servers: list[subprocess.Popen] = []
    try:
        print(f"Filling a SQLite database with {MEETINGS} public meetings...", flush=True)
        slug = build_database(env["KXN_SQLALCHEMY_DATABASE_URI"], env)
        servers.append(start_gunicorn("kxn_meetings:create_app()", app_port, env, []))
        servers.append(start_gunicorn("feed:bare_app", bare_port, env, []))

        feed = fetch(app_port, "/calendar.ics")
        etag = feed.getheader("ETag") or ""
        events = feed.body.count(b"BEGIN:VEVENT")  # type: ignore[attr-defined]
        one = fetch(app_port, f"/meetings/{slug}/calendar.ics")
        if feed.status != 200 or one.status != 200 or not etag:
            print(f"Unexpected answers: feed {feed.status}, meeting {one.status}, ETag {etag!r}")
            return 0
        print(f"Feed: {events} events, {len(feed.body) // 1024} KiB; "  # type: ignore[attr-defined]
              f"gunicorn {' '.join(GUNICORN_SETTINGS[:6])}; {CLIENT_PROCESSES * CONNECTIONS_PER_PROCESS} "
              f"keep-alive connections; {MEASURE_SECONDS:g} s each", flush=True)

        with multiprocessing.get_context("spawn").Pool(CLIENT_PROCESSES) as pool:
            bare_rps = measure(pool, bare_port, "/bench/bare")
            rows = [
                ("one meeting's .ics", measure(pool, app_port, f"/meetings/{slug}/calendar.ics"), 0.40),
                ("feed, full body", measure(pool, app_port, "/calendar.ics"), 0.05),
                ("feed, 304 (If-None-Match)",
                 measure(pool, app_port, "/calendar.ics", headers={"If-None-Match": etag}, expect=304), 0.70),
            ]
        print(f"\n{'':28} {'req/s':>9} {'of bare':>8} {'target':>7}")
        print(f"{'bare Flask route':28} {bare_rps:9.0f}")
        for label, rps, target in rows:
            ratio = rps / bare_rps if bare_rps else 0.0
            mark = "PASS" if ratio >= target else "MISS"
            print(f"{label:28} {rps:9.0f} {ratio:8.1%} {target:7.0%}  {mark}")
        for server in servers:
            stop(server)
        servers.clear()
        print(f"\nBuilding the whole feed without a cached body: {cold_feed_build_ms(env):.0f} ms "
              "(once per change of the feed and worker)")
    except (RuntimeError, subprocess.SubprocessError, OSError) as error:
        print(f"Benchmark could not run: {error}")
        if isinstance(error, subprocess.CalledProcessError):
            print(error.stderr)
    finally:
        for server in servers:
            stop(server)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
