"""PostgreSQL ends the app's connections (a failover, a restart, an administrator) while pages are being served and
mail is being sent: readers never see an error page, writers are asked to try again, and no message is lost."""

from __future__ import annotations

import collections
import threading
import time

import flask
import pytest
import sqlalchemy as sa
from sqlalchemy import select

from kxn_meetings.extensions import db
from kxn_meetings.models import Invitation, Member, OutboxMessage, OutboxStatus
from kxn_meetings.services import invitations

from .live_app import Browser, csrf_token, gunicorn, outbox_worker, process_env

TERMINATE = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
READERS = 3
QUEUED = 300


def warm_up(port: int, path: str) -> None:
    """A page from each gunicorn worker before the test starts counting: a cold worker takes seconds to answer."""
    browser = Browser(port)
    try:
        deadline = time.monotonic() + 60
        fast = 0
        while fast < 4 and time.monotonic() < deadline:
            started = time.monotonic()
            status, _, _ = browser.request("GET", path)
            fast = fast + 1 if status == 200 and time.monotonic() - started < 0.5 else 0
            browser.close()
            browser = Browser(port)
    finally:
        browser.close()


@pytest.mark.postgresql_only
@pytest.mark.slow
def test_pages_and_mail_carry_on_when_postgresql_ends_every_connection(app, make_meeting, smtp_server, tmp_path):
    meeting = make_meeting(title="Missing children: what the first hour decides")
    members = [
        Member(name=f"Member {n}", email=f"restart{n}@example.org", organisation="Essex Police") for n in range(QUEUED)
    ]
    db.session.add_all(members)
    db.session.commit()
    invitations.invite(meeting, members)
    db.session.commit()
    links = [
        f"/meetings/{meeting.slug}/answer/{token}"
        for token in db.session.scalars(select(Invitation.token).where(Invitation.meeting_id == meeting.id).limit(20))
    ]
    url = db.engine.url.render_as_string(hide_password=False)
    meeting_page = f"/meetings/{meeting.slug}"
    db.session.rollback()
    # A worker sending at 60 messages a second is still busy when the connections go; a short lease brings back
    # quickly any batch it had claimed when its connection went.
    env = process_env(
        url,
        tmp_path / "instance",
        smtp_server.port,
        KXN_OUTBOX_SEND_RATE="60",
        KXN_OUTBOX_BATCH_SIZE="20",
        KXN_OUTBOX_LEASE_SECONDS="6",
    )

    gets: collections.Counter[int] = collections.Counter()
    posts: collections.Counter[int] = collections.Counter()
    problems: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def read_the_meeting_page(port: int) -> None:
        browser = Browser(port)
        try:
            while not stop.is_set():
                status, _, page = browser.request("GET", meeting_page)
                with lock:
                    gets[status] += 1
                    if status != 200:
                        problems.append(f"GET {status}: {page[:200]}")
        finally:
            browser.close()

    def answer(port: int) -> None:
        browser = Browser(port)
        n = 0
        try:
            while not stop.is_set():
                link = links[n % len(links)]
                status, _, page = browser.request("GET", link)
                with lock:
                    gets[status] += 1
                    if status != 200:
                        problems.append(f"GET {link} {status}: {page[:200]}")
                if status == 200:
                    status, headers, page = browser.request(
                        "POST", link, {"csrf_token": csrf_token(page), "answer": ("going", "declined")[n % 2]}
                    )
                    with lock:
                        posts[status] += 1
                        if status == 503 and not headers.get("retry-after"):
                            problems.append("503 without Retry-After")
                        elif status not in (302, 503):
                            problems.append(f"POST {status}: {page[:200]}")
                n += 1
        finally:
            browser.close()

    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    terminated = []
    with gunicorn(env, tmp_path / "gunicorn.log") as server:
        warm_up(server.port, meeting_page)
        clients = [threading.Thread(target=read_the_meeting_page, args=(server.port,)) for _ in range(READERS)]
        clients.append(threading.Thread(target=answer, args=(server.port,)))
        with outbox_worker(env, tmp_path / "worker.log") as worker:
            for client in clients:
                client.start()
            try:
                smtp_server.wait_for(20, timeout=30)  # the worker is sending
                for _ in range(3):
                    progress = sum(gets.values())
                    deadline = time.monotonic() + 20
                    while sum(gets.values()) < progress + 10 and time.monotonic() < deadline:
                        time.sleep(0.1)  # pages are being served
                    time.sleep(0.5)
                    with admin.connect() as conn:
                        terminated.append(conn.exec_driver_sql(TERMINATE).scalar())
                time.sleep(1.5)
            finally:
                stop.set()
                for client in clients:
                    client.join(timeout=30)
            # Everything queued, the invitations and the answers' confirmations alike, is delivered.
            deadline = time.monotonic() + 60
            with admin.connect() as conn:
                while time.monotonic() < deadline:
                    pending = conn.execute(
                        select(sa.func.count(OutboxMessage.id)).where(OutboxMessage.status != OutboxStatus.SENT)
                    ).scalar()
                    if pending == 0:
                        break
                    time.sleep(0.5)
                queued = set(conn.execute(select(OutboxMessage.message_id)).scalars())
            time.sleep(0.5)
            assert worker.poll() is None, "the worker is still running"
        log, worker_log = server.log_text(), (tmp_path / "worker.log").read_text()
    admin.dispose()

    retried = log.count("trying again on a fresh one")
    received = collections.Counter(str(m["Message-ID"]) for m in list(smtp_server.messages))
    print(
        f"\nterminated {terminated} connections; GET {dict(gets)}; POST {dict(posts)}; GETs retried {retried}; "
        f"worker database errors {worker_log.count('Database error')}; queued {len(queued)}, "
        f"received {sum(received.values())} ({sum(c - 1 for c in received.values())} sent again)"
    )
    assert all(terminated), "each round ended some of the app's connections"
    assert not problems, problems[:5]
    assert gets[200] > 30 and not any(code >= 500 for code in gets)
    assert pending == 0, f"{pending} messages never went"
    assert queued <= set(received), "every queued message reached the mail server"
    assert "Traceback" not in log, log[-3000:]


class _Lost(Exception):
    """What the driver raises when the server has closed the connection."""


def _connection_lost() -> sa.exc.OperationalError:
    return sa.exc.OperationalError(
        "SELECT 1", {}, _Lost("server closed the connection unexpectedly"), connection_invalidated=True
    )


def _flaky_routes(app, failures: int):
    """Routes whose first `failures` calls lose the database connection, as a restart does mid-request."""
    calls = collections.Counter()

    def page(name):
        calls[name] += 1
        if calls[name] <= failures:
            raise _connection_lost()
        db.session.execute(select(1))
        return f"{name} served"

    app.add_url_rule("/flaky/page", "flaky_page", lambda: page("page"), methods=["GET", "POST"])
    app.add_url_rule("/flaky/feed.ics", "flaky_feed", lambda: page("feed"))
    return calls


def test_a_read_that_loses_its_connection_is_served_on_a_fresh_one(app, client, caplog):
    calls = _flaky_routes(app, failures=1)
    response = client.get("/flaky/page")
    assert response.status_code == 200 and response.text == "page served"
    assert calls["page"] == 2
    assert "trying again on a fresh one" in caplog.text


def test_a_read_that_loses_its_connection_twice_is_served_on_a_third(app, client):
    calls = _flaky_routes(app, failures=2)
    response = client.get("/flaky/page")
    assert response.status_code == 200 and response.text == "page served"
    assert calls["page"] == 3


def test_a_read_that_loses_its_connection_three_times_asks_to_try_again(app, client):
    calls = _flaky_routes(app, failures=3)
    response = client.get("/flaky/page")
    assert calls["page"] == 3, "two retries, no more"
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "Please try again in a moment" in response.text and "<nav" in response.text


def test_a_write_that_loses_its_connection_is_not_repeated_and_asks_to_try_again(app, client):
    calls = _flaky_routes(app, failures=1)
    response = client.post("/flaky/page")
    assert calls["page"] == 1, "a write is never run twice by the server"
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "sending it again is safe" in response.text


def test_a_calendar_app_gets_a_plain_try_again(app, client):
    _flaky_routes(app, failures=3)
    response = client.get("/flaky/feed.ics")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.mimetype == "text/plain" and "<" not in response.text


def test_other_database_errors_stay_errors(app, client):
    def broken():
        db.session.execute(sa.text("SELECT * FROM no_such_table"))

    app.add_url_rule("/flaky/broken", "flaky_broken", broken)
    assert client.get("/flaky/broken").status_code == 500


@pytest.mark.postgresql_only
def test_ending_a_session_whose_connection_was_terminated_does_not_fail(app, make_member):
    from kxn_meetings.database import discard_session

    make_member(name="Still Here")
    pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()  # a transaction is open
    admin = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    discard_session()
    assert db.session.scalar(select(sa.func.count(Member.id))) == 1


@pytest.mark.postgresql_only
@pytest.mark.app_config(OUTBOX_POLL_SECONDS=0.1)
def test_the_worker_carries_on_when_its_connection_is_ended_mid_transaction(
    app, runner, make_meeting, make_member, smtp_server, monkeypatch
):
    import os
    import signal

    from kxn_meetings import mail

    meeting = make_meeting()
    invitations.invite(meeting, [make_member() for _ in range(3)])
    db.session.commit()
    real_deliver = mail.deliver_due
    passes = []

    def deliver_due(**kwargs):
        passes.append(len(passes) + 1)
        if len(passes) == 1:  # the database goes while the worker is inside a transaction
            pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            admin = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
            with admin.connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.dispose()
        report = real_deliver(**kwargs)
        if report.sent:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does: the worker stops after this pass
        return report

    monkeypatch.setattr(mail, "deliver_due", deliver_due)
    result = runner.invoke(args=["kxn", "outbox", "worker"])
    assert result.exit_code == 0, result.output
    assert "Database error, trying again" in result.output
    assert "Sent 3;" in result.output and "Outbox worker stopped." in result.output
    assert len(passes) == 2
    assert len(smtp_server.messages) == 3


@pytest.mark.postgresql_only
def test_after_postgresql_ends_idle_connections_a_form_is_checked_onto_a_live_one_and_a_page_runs_again(
    app, make_meeting, member, member_client
):
    """Forms cannot run twice, so each checks its pooled connection first; pages skip that round trip and are run
    again instead. Either way, nobody sees an error."""
    meeting = make_meeting(title="Youth engagement")
    path = f"/meetings/{meeting.slug}"
    pings = collections.Counter()
    dialect = db.engine.dialect
    ping = dialect.do_ping

    def counted(dbapi_connection):
        pings[flask.request.method if flask.has_request_context() else "none"] += 1
        return ping(dbapi_connection)

    dialect.do_ping = counted
    try:
        for method in ("GET", "POST"):
            db.session.remove()
            terminate_every_other_connection()
            if method == "GET":
                response = member_client.get(path)
                assert response.status_code == 200 and "Will you come?" in response.text
            else:
                response = member_client.post(f"{path}/rsvp", data={"answer": "going"})
                assert response.status_code == 302
                db.session.remove()
                assert "You’re going" in member_client.get(path).text
    finally:
        del dialect.do_ping
    assert pings["GET"] == 0 and pings["POST"] >= 1


def terminate_every_other_connection() -> None:
    """Every connection to the database but a fresh one made to end them, as a restart does."""
    engine = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(TERMINATE))
    finally:
        engine.dispose()
