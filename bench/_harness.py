"""Shared by the benchmarks: temporary databases, gunicorn servers and a small HTTP load generator.

Everything listens on 127.0.0.1 only, and every run is bounded in time.
"""

from __future__ import annotations

import http.client
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POSTGRES_ADMIN_URL = os.environ.get("KXN_TEST_POSTGRESQL_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def database(kind: str):
    """A fresh, migrated database URL of the given kind ('sqlite' or 'postgresql'), removed afterwards."""
    import sqlalchemy as sa

    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite3"
            migrate(url)
            yield url
        return
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"kxn_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def app_env(url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KXN_SQLALCHEMY_DATABASE_URI=url,
        KXN_SECRET_KEY=BENCH_SECRET,
        KXN_BASE_URL="http://127.0.0.1",
        KXN_MAIL_SERVER="",
        KXN_ACCESS_LOG="",
        KXN_INSTANCE_PATH=tempfile.gettempdir(),
    )
    env.update(extra)
    return env


BENCH_SECRET = secrets.token_hex(32)


def migrate(url: str) -> None:
    subprocess.run(
        [str(BIN / "flask"), "--app", "kxn_meetings", "kxn", "init"],
        env=app_env(url),
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )


def make_app(url: str):
    from kxn_meetings import create_app

    return create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": BENCH_SECRET, "BASE_URL": "http://127.0.0.1", "MAIL_SERVER": ""}
    )


SAMPLE_AGENDA = [
    ((15, 0), "Welcome and introductions", {}),
    (
        (15, 15),
        "Lessons from the Manchester pilot",
        {"speaker_name": "Dr Asha Patel", "speaker_organisation": "University of Salford"},
    ),
    ((16, 30), "Workshops and next steps", {}),
]


def sample_meeting(slug: str, start, **fields):
    """A published public meeting of two hours in London with a three-item agenda, as the benchmarks load it;
    `fields` override any column."""
    import datetime as dt

    from kxn_meetings.models import AgendaItem, Meeting, MeetingStatus, Visibility

    columns = {
        "title": "Meeting three: policing young adults, what works",
        "theme": "Trauma-informed practice with 18-25 year olds",
        "description": "Practitioners from police and health.",
        "ends_at": start + dt.timedelta(hours=2),
        "timezone": "Europe/London",
        "join_url": "https://meet.example.org/kxn-three",
        "status": MeetingStatus.SCHEDULED,
        "visibility": Visibility.PUBLIC,
        "agenda_items": [
            AgendaItem(position=n, start_time=dt.time(*at), title=title, **speaker)
            for n, (at, title, speaker) in enumerate(SAMPLE_AGENDA)
        ],
    }
    return Meeting(slug=slug, starts_at=start, **{**columns, **fields})


@contextmanager
def gunicorn(target: str, env: dict[str, str], *, workers: int = 2, threads: int = 4):
    """Serve a WSGI target with the project's gunicorn.conf.py; yields (port, master pid)."""
    port = free_port()
    env = dict(env, KXN_BIND=f"127.0.0.1:{port}", KXN_WORKERS=str(workers), KXN_THREADS=str(threads))
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), target],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass(frozen=True)
class Served:
    """A gunicorn serving something: where, and its master's pid (whose children are the workers)."""

    port: int
    master: int


@contextmanager
def app_and_bare_route(url: str):
    """The app on the database at `url` and the bare Flask route it is measured against, served alike; yields
    (bare route, app) as Served."""
    env = app_env(url)
    with gunicorn("bench._bare_app:app", env) as bare, gunicorn("kxn_meetings:create_app()", env) as app:
        yield Served(*bare), Served(*app)


def _workers(master_pid: int) -> dict[int, list[str]]:
    """The master's worker processes, each with the fields of its /proc/<pid>/stat after the command name."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(master_pid):
            found[int(stat.parent.name)] = fields
    return found


def worker_cpu_ticks(master_pid: int) -> dict[int, int]:
    """CPU time (user and system, in clock ticks) each of the master's workers has used so far."""
    return {pid: int(fields[11]) + int(fields[12]) for pid, fields in _workers(master_pid).items()}


def worker_peak_memory_mib(master_pid: int) -> float:
    """Largest peak resident size (VmHWM) among the master's worker processes."""
    peak = 0
    for pid in _workers(master_pid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        peak = max(peak, int(fields.get("VmHWM", "0 kB").split()[0]))
    return peak / 1024


@dataclass
class Result:
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def p95_ms(self) -> float:
        if not self.latencies:
            return float("nan")
        return (
            statistics.quantiles(self.latencies, n=100)[94] * 1000
            if len(self.latencies) > 1
            else self.latencies[0] * 1000
        )


def load(port: int, make_request, *, connections: int = 16, seconds: float = 4.0, warmup: float = 2.0) -> Result:
    """Run `make_request(conn, worker_index, n)` in `connections` keep-alive threads for a fixed time.

    make_request sends one request on an http.client connection and returns True when the answer is right.
    """
    stop_at = time.monotonic() + warmup + seconds
    measure_from = time.monotonic() + warmup
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}

    def run(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        n = 0
        local: list[float] = []
        ok = errors = 0
        while True:
            now = time.monotonic()
            if now >= stop_at:
                break
            started = time.perf_counter()
            try:
                good = make_request(conn, index, n)
            except (OSError, http.client.HTTPException):
                good = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            elapsed = time.perf_counter() - started
            n += 1
            if now >= measure_from:
                local.append(elapsed)
                ok += good
                errors += not good
        conn.close()
        with lock:
            latencies.extend(local)
            counts["ok"] += ok
            counts["errors"] += errors

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Result(requests=counts["ok"], seconds=seconds, latencies=latencies, errors=counts["errors"])


def get(path: str, expect: int = 200, headers: dict | None = None):
    def request(conn: http.client.HTTPConnection, _index: int, _n: int) -> bool:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status == expect

    return request


def verdict(value: float, target: float, *, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "MISS"


# wrk: the load generator, a C program that the servers, not it, limit ----------------------------------------

WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("KXN-WRK %d %d %d %.3f %.3f\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50) / 1000, latency:percentile(95) / 1000))
end
"""


def ensure_wrk() -> str:
    """wrk's path; Debian's package when it is missing (as `make test` installs chromium)."""
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and could not be installed: apt-get install wrk")
    return found


@dataclass
class Measured:
    """One wrk run: requests answered 2xx/3xx, errors of any kind, and latency percentiles; `workers`, each worker's
    share of the CPU the server used meanwhile, when measured (best_of_rounds)."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    workers: tuple[float, ...] = ()

    @property
    def balanced(self) -> bool:
        """Whether every worker did at least BALANCED_SHARE of the work the busiest one did (or nobody measured)."""
        return not self.workers or min(self.workers) >= BALANCED_SHARE * max(self.workers)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk(
    port: int,
    path: str = "/",
    *,
    connections: int = 16,
    threads: int = 2,
    seconds: int = 2,
    headers: dict[str, str] | None = None,
    script: str = "",
) -> Measured:
    """Load `path` with wrk for `seconds` on keep-alive connections; `script` (Lua) may define request()."""
    lines = [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in (headers or {}).items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write("\n".join(lines) + "\n" + script + WRK_REPORT)
    try:
        done = subprocess.run(
            [
                ensure_wrk(),
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                lua.name,
                f"http://127.0.0.1:{port}{path}",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
    finally:
        os.unlink(lua.name)
    report = next(line for line in done.stdout.splitlines() if line.startswith("KXN-WRK "))
    requests, duration_us, errors, p50, p95 = report.split()[1:]
    good = int(requests) - int(errors)
    return Measured(good, int(duration_us) / 1e6, int(errors), float(p50), float(p95))


# wrk opens its connections at once and keeps them; which worker accepts each is a race, and now and then one
# worker takes (nearly) all of them while the other idles: that round measures one worker, not the configuration,
# at a quarter to a half of its rate. Such a round is run again, up to UNBALANCED_RETRIES times, for the bare route
# and the app alike.
BALANCED_SHARE = 0.5
UNBALANCED_RETRIES = 3


def balanced_wrk(served: Served, *, seconds: float, connections: int, **load) -> Measured:
    """wrk() on `served`, run again while one of its workers did less than BALANCED_SHARE of the busiest one's
    work; the last run, with each worker's share of the CPU."""
    for _ in range(UNBALANCED_RETRIES + 1):
        before = worker_cpu_ticks(served.master)
        measured = wrk(served.port, seconds=seconds, connections=connections, **load)
        after = worker_cpu_ticks(served.master)
        used = [after[pid] - before.get(pid, 0) for pid in after]
        total = sum(used) or 1
        measured.workers = tuple(sorted((u / total for u in used), reverse=True))
        if measured.balanced:
            break
    return measured


def best_of_rounds(
    bare: Served, app: Served, loads: dict[str, dict], *, rounds: int, seconds: float, connections: int
) -> dict[str, Measured]:
    """Each load on the app, and the bare route as "bare", in interleaved rounds after a one-second warm-up, so a
    busy spell on the machine hits every side alike; the best round of each, among rounds in which both workers
    took their part (balanced_wrk)."""
    wrk(bare.port, seconds=1, connections=connections)
    for load in loads.values():
        wrk(app.port, seconds=1, connections=connections, **load)
    results: dict[str, list[Measured]] = {name: [] for name in ["bare", *loads]}
    for _ in range(rounds):
        results["bare"].append(balanced_wrk(bare, seconds=seconds, connections=connections))
        for name, load in loads.items():
            results[name].append(balanced_wrk(app, seconds=seconds, connections=connections, **load))
    return {name: max(measured, key=lambda m: (m.balanced, m.rps)) for name, measured in results.items()}


def shares(measured: Measured) -> str:
    """Each worker's share of the CPU in a round, and a warning when one did much less than the other."""
    text = " / ".join(f"{share:.0%}" for share in measured.workers)
    return f"workers {text}" + ("" if measured.balanced else " UNBALANCED")


def wrk_rounds(rounds: int, seconds: float, connections: int) -> str:
    return f"wrk -t2 -c{connections}, best of {rounds} interleaved rounds of {seconds:g} s"


def report(
    title: str, run: Callable[[str], tuple[list[str], bool]], kinds: Iterable[str] = ("sqlite", "postgresql")
) -> NoReturn:
    """Print what a benchmark measures, run it on each database kind, print its lines as they come, and exit 1 if
    any target was missed."""
    print(title, flush=True)
    missed = False
    for kind in kinds:
        lines, kind_missed = run(kind.strip())
        for line in lines:
            print(line, flush=True)
        missed |= kind_missed
    sys.exit(1 if missed else 0)
