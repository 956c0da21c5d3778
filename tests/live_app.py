"""The app as production runs it, for tests that need several processes on one database: gunicorn with the
project's gunicorn.conf.py, `flask kxn ...` commands and the outbox worker as subprocesses, and a small HTTP client.

Everything listens on 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from .conftest import TEST_SECRET
from .smtp import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def process_env(database_url: str, instance_path: Path, smtp_port: int, **extra: str) -> dict[str, str]:
    """Environment of an app process on the test's database, sending mail to the test's SMTP server."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(
        KXN_SQLALCHEMY_DATABASE_URI=database_url,
        KXN_SECRET_KEY=TEST_SECRET,
        KXN_BASE_URL="https://kxn.test",
        KXN_MAIL_SERVER="127.0.0.1",
        KXN_MAIL_PORT=str(smtp_port),
        KXN_INSTANCE_PATH=str(instance_path),
        KXN_CALENDAR_ADDRESS="calendar@kxn.test",
        KXN_OUTBOX_POLL_SECONDS="0.2",
        KXN_OUTBOX_RETRY_BASE_SECONDS="1",
        KXN_ACCESS_LOG="",
    )
    env.update(extra)
    return env


def flask_command(*args: str) -> list[str]:
    return [str(BIN / "flask"), "--app", "kxn_meetings", "kxn", *args]


@dataclass
class Server:
    port: int
    process: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def gunicorn(env: dict[str, str], log: Path, *, workers: int = 2, threads: int = 4) -> Iterator[Server]:
    """The app under gunicorn with the project's settings (gthread workers); its stderr goes to `log`."""
    port = free_port()
    env = dict(env, KXN_BIND=f"127.0.0.1:{port}", KXN_WORKERS=str(workers), KXN_THREADS=str(threads))
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "kxn_meetings:create_app()"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    server = Server(port, process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start:\n{server.log_text()[-3000:]}") from None
                time.sleep(0.1)
        yield server
    finally:
        stop(process)


@contextmanager
def outbox_worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with open(log, "wb") as output:
        process = subprocess.Popen(
            flask_command("outbox", "worker"), env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


class Browser:
    """One visitor: a keep-alive connection and a cookie jar of one cookie (the session)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookie: str | None = None
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                text = response.read().decode("utf-8", "replace")
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # gunicorn closed an idle keep-alive connection: what a browser does, open a new one
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        found = response.getheader("Set-Cookie")
        if found:
            self.cookie = found.split(";", 1)[0]
        return response.status, {k.lower(): v for k, v in response.getheaders()}, text

    def close(self) -> None:
        self.connection.close()


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def csrf_token(page: str) -> str:
    match = CSRF_FIELD.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)
