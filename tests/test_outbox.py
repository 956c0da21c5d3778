"""The outbox delivers every committed email exactly once, through SMTP failures, outages and dead workers."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import email
import email.policy
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select, update

from kxn_meetings.extensions import db
from kxn_meetings.mail import deliver_due, delivery, sent_log
from kxn_meetings.mail import smtp as smtp_session
from kxn_meetings.models import MessageKind, OutboxMessage, OutboxStatus, utcnow
from kxn_meetings.services import auth as auth_service
from kxn_meetings.services.outbox import queue_email

from .smtp import free_port

LINK = re.compile(r"https://kxn\.test/sign-in/link/[\w-]+")


def queue_note(to, subject: str = "A note from the network", **values) -> OutboxMessage | None:
    return queue_email(
        kind=MessageKind.SIGN_IN,
        to=to,
        subject=subject,
        template="sign_in",
        context={"token": "not-a-real-token", "code": "000000", "minutes": 15},
        **values,
    )


def messages() -> list[OutboxMessage]:
    db.session.rollback()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def send(runner, *args: str):
    result = runner.invoke(args=["kxn", "outbox", *(args or ("send",))])
    assert result.exit_code == 0, result.output
    return result


class Spy:
    """Sees every DATA the server is offered, including refused ones, and can refuse chosen recipients."""

    def __init__(self) -> None:
        self.offered: list[str] = []
        self.refuse: dict[str, str] = {}
        self.delay = 0.0


@pytest.fixture
def spy(smtp_server) -> Spy:
    spy = Spy()
    handler = smtp_server._controller.handler
    accept = handler.handle_DATA

    async def handle_DATA(server, session, envelope):
        offered = email.message_from_bytes(envelope.content, policy=email.policy.default)
        spy.offered.append(str(offered["Message-ID"]))
        if spy.delay:
            await asyncio.sleep(spy.delay)
        for address in envelope.rcpt_tos:
            if address in spy.refuse:
                return spy.refuse[address]
        return await accept(server, session, envelope)

    handler.handle_DATA = handle_DATA
    return spy


def delivered_ids(smtp_server) -> collections.Counter:
    with smtp_server.lock:
        return collections.Counter(str(m["Message-ID"]) for m in smtp_server.messages)


def test_rolled_back_email_is_never_sent_and_committed_email_is_sent_once(app, client, runner, smtp_server, member):
    address = member.email
    auth_service.send_sign_in_link(address)
    db.session.rollback()
    assert "Nothing to send." in send(runner).output
    assert smtp_server.messages == []

    auth_service.send_sign_in_link(address)
    db.session.commit()
    result = send(runner)
    assert "Sent 1; retrying later 0; set aside 0." in result.output
    [received] = smtp_server.wait_for(1)
    assert received["To"].addresses[0].addr_spec == address
    assert received["Subject"] == "Your sign-in link for the Knowledge Exchange Network"
    link = LINK.search(received.get_body(("plain",)).get_content()).group()
    assert client.get(link.removeprefix("https://kxn.test")).status_code == 200  # the emailed link works

    assert "Nothing to send." in send(runner).output
    assert len(smtp_server.messages) == 1
    [row] = messages()
    assert row.status == OutboxStatus.SENT and row.sent_at is not None and row.message_id == received["Message-ID"]


@pytest.mark.app_config(OUTBOX_DELIVER_AFTER_COMMIT=True)
def test_greylisted_sign_in_email_is_retried_with_the_same_message_id(app, client, runner, smtp_server, spy, member):
    smtp_server.refuse(2)  # 451 twice
    response = client.post("/sign-in", data={"email": member.email})
    assert response.status_code == 302
    [row] = messages()
    assert row.status == OutboxStatus.PENDING and row.attempts == 1
    assert "451" in row.last_error and "Try again later" in row.last_error

    send(runner)
    assert messages()[0].attempts == 2
    assert "Sent 1;" in send(runner).output
    [received] = smtp_server.wait_for(1)
    assert spy.offered == [row.message_id] * 3  # every try carried the Message-ID of the first
    assert received["Message-ID"] == row.message_id
    [row] = messages()
    assert row.status == OutboxStatus.SENT and row.attempts == 2
    assert "Nothing to send." in send(runner).output
    assert delivered_ids(smtp_server) == {row.message_id: 1}


@pytest.mark.app_config(OUTBOX_DELIVER_AFTER_COMMIT=True, MAIL_TIMEOUT=5.0)
def test_smtp_down_sign_in_still_works_at_once_and_mail_follows_when_it_is_back(
    app, client, runner, smtp_server, make_member
):
    addresses = [make_member().email for _ in range(3)]
    smtp_server.stop()
    for address in addresses:
        started = time.monotonic()
        response = client.post("/sign-in", data={"email": address})
        assert response.status_code == 302
        # Well under the mail timeout: the request neither waits for it nor tries the server again after a pause;
        # the margin is for a busy machine.
        assert time.monotonic() - started < 3.0
    rows = messages()
    assert [r.status for r in rows] == [OutboxStatus.PENDING] * 3
    # An outage is not the message's fault: no try is counted against it, so none is ever set aside for it.
    assert all(r.attempts == 0 and "Mail server unavailable" in r.last_error for r in rows)
    send(runner)
    assert all(r.status == OutboxStatus.PENDING for r in messages())

    smtp_server.start()
    assert "Sent 3;" in send(runner).output
    assert "Nothing to send." in send(runner).output
    smtp_server.wait_for(3)
    assert delivered_ids(smtp_server) == {r.message_id: 1 for r in rows}
    assert sorted(str(m["To"].addresses[0].addr_spec) for m in smtp_server.messages) == sorted(addresses)


@pytest.mark.app_config(OUTBOX_DELIVER_AFTER_COMMIT=True, MAIL_TIMEOUT=0.5)
def test_a_server_that_never_answers_cannot_hang_the_request(app, client, smtp_server, member):
    with socket.socket() as silent:  # accepts connections (backlog) and never says hello
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        app.config["MAIL_PORT"] = silent.getsockname()[1]
        started = time.monotonic()
        response = client.post("/sign-in", data={"email": member.email})
        elapsed = time.monotonic() - started
    assert response.status_code == 302
    assert elapsed < 3.0
    [row] = messages()
    assert row.status == OutboxStatus.PENDING and "Mail server unavailable" in row.last_error


@pytest.mark.app_config(OUTBOX_DELIVER_AFTER_COMMIT=True)
def test_nothing_listening_on_the_port_loses_nothing(app, client, runner, smtp_server, member):
    app.config["MAIL_PORT"] = free_port()
    assert client.post("/sign-in", data={"email": member.email}).status_code == 302
    send(runner)
    assert smtp_server.messages == []
    app.config["MAIL_PORT"] = smtp_server.port
    assert "Sent 1;" in send(runner).output
    assert len(smtp_server.wait_for(1)) == 1


@pytest.mark.app_config(OUTBOX_MAX_ATTEMPTS=3)
def test_a_message_that_keeps_failing_is_set_aside_others_flow_and_an_organiser_retries_it(
    app, client, runner, sign_in, smtp_server, spy, organiser
):
    spy.refuse["stuck@example.org"] = "451 4.2.2 Mailbox full, try later"
    stuck = queue_note("Stuck Person <stuck@example.org>", subject="For the stuck person").id
    queue_note("first@example.org")
    db.session.commit()

    for _ in range(3):
        queue_note(f"later{_}@example.org")
        db.session.commit()
        send(runner)
    assert smtp_server.to("stuck@example.org") == []
    assert len(smtp_server.wait_for(4)) == 4  # the rest kept flowing
    row = db.session.get(OutboxMessage, stuck)
    assert row.status == OutboxStatus.FAILED and row.attempts == 3 and "Mailbox full" in row.last_error
    assert "Nothing to send." in send(runner).output

    sign_in(client, organiser)
    page = client.get("/outbox/?status=failed").get_data(as_text=True)
    assert "For the stuck person" in page and "Set aside (1)" in page and "Mailbox full" in page
    assert "For the stuck person" not in client.get("/outbox/?status=sent").get_data(as_text=True)
    assert "1 message was set aside" in client.get("/outbox/").get_data(as_text=True)
    detail = client.get(f"/outbox/{stuck}").get_data(as_text=True)
    assert "Retry sending" in detail and "Mailbox full" in detail

    del spy.refuse["stuck@example.org"]
    response = client.post(f"/outbox/{stuck}/retry", follow_redirects=True)
    assert response.status_code == 200 and "back in the queue" in response.get_data(as_text=True)
    assert "Sent 1;" in send(runner).output
    assert len(smtp_server.to("stuck@example.org")) == 1
    assert "Nothing to send." in send(runner).output
    assert len(smtp_server.to("stuck@example.org")) == 1
    row = db.session.get(OutboxMessage, stuck)
    assert row.status == OutboxStatus.SENT
    # Retrying a message that is not set aside changes nothing.
    response = client.post(f"/outbox/{stuck}/retry", follow_redirects=True)
    assert "Only a message that was set aside can be retried" in response.get_data(as_text=True)
    assert messages()[0].status == OutboxStatus.SENT


def test_a_permanent_refusal_is_set_aside_at_once_with_its_reason(app, client, runner, sign_in, smtp_server, organiser):
    smtp_server.refuse(1, "550 5.1.1 No such mailbox here")
    message_id = queue_note("gone@example.org").id
    db.session.commit()
    result = send(runner)
    assert "set aside 1." in result.output
    assert "No such mailbox here" in result.stderr
    row = db.session.get(OutboxMessage, message_id)
    assert row.status == OutboxStatus.FAILED and row.attempts == 1
    sign_in(client, organiser)
    detail = client.get(f"/outbox/{message_id}").get_data(as_text=True)
    assert "Reason set aside" in detail and "SMTP 550: 5.1.1 No such mailbox here" in detail
    assert "shown without their key" not in detail  # the note holds no personal answer link
    assert "Nothing to send." in send(runner).output
    assert smtp_server.messages == []


def test_a_lost_connection_counts_one_try_and_the_rest_wait_untried(app, runner, smtp_server):
    smtp_server.refuse(1, "421 4.3.2 Shutting down")  # smtplib closes the connection after a 421
    ids = [queue_note(f"p{n}@example.org").id for n in range(3)]
    db.session.commit()
    send(runner)
    rows = {r.id: r for r in messages()}
    assert rows[ids[0]].attempts == 1 and "421" in rows[ids[0]].last_error
    assert [rows[i].attempts for i in ids[1:]] == [0, 0]
    assert all(r.status == OutboxStatus.PENDING and r.locked_by is None for r in rows.values())
    assert "Sent 3;" in send(runner).output
    assert len(smtp_server.wait_for(3)) == 3


def test_a_message_leased_by_a_dead_worker_waits_for_the_lease_to_expire(app, runner, smtp_server):
    message_id = queue_note("leased@example.org").id
    db.session.commit()
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(locked_by="dead-worker", locked_until=utcnow() + dt.timedelta(minutes=5))
    )
    db.session.commit()
    assert "Nothing to send." in send(runner).output
    assert "Outbox worker stopped." in send(runner, "worker", "--once").output
    assert smtp_server.messages == []

    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(locked_until=utcnow() - dt.timedelta(seconds=1))
    )
    db.session.commit()
    assert "Sent 1;" in send(runner).output
    assert len(smtp_server.wait_for(1)) == 1
    [row] = messages()
    assert row.status == OutboxStatus.SENT and row.locked_by is None


@pytest.mark.postgresql_only
@pytest.mark.app_config(OUTBOX_BATCH_SIZE=10)
def test_two_workers_at_once_deliver_every_message_exactly_once(app, smtp_server, spy):
    for n in range(200):
        queue_note(f"person{n}@example.org", subject=f"Note {n}")
    db.session.commit()
    expected = {m.message_id for m in messages()}
    spy.delay = 0.002  # a slowish server keeps both workers busy at the same time
    start = threading.Barrier(2)
    reports, errors = [], []

    def worker(name: str) -> None:
        try:
            with app.app_context():
                start.wait()
                reports.append(deliver_due(worker_id=name))
                db.session.remove()
        except Exception as error:  # surfaced in the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(f"worker-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    smtp_server.wait_for(200)
    counts = delivered_ids(smtp_server)
    assert set(counts) == expected and set(counts.values()) == {1}
    assert sorted(r.sent for r in reports) != [0, 200] and sum(r.sent for r in reports) == 200
    assert {m.status for m in messages()} == {OutboxStatus.SENT}


@pytest.mark.app_config(MAIL_SERVER="")
def test_without_a_mail_server_send_prints_the_email_and_marks_it_sent(app, client, runner, member):
    auth_service.send_sign_in_link(member.email)
    db.session.commit()
    result = send(runner)
    assert "To: Sam Member <sam@example.org>" in result.stdout
    assert "Subject: Your sign-in link for the Knowledge Exchange Network" in result.stdout
    link = LINK.search(result.stdout).group()
    assert client.get(link.removeprefix("https://kxn.test")).status_code == 200
    [row] = messages()
    assert row.status == OutboxStatus.SENT
    assert "Nothing to send." in send(runner).output


def test_worker_once_delivers_and_exits_cleanly(app, runner, smtp_server):
    queue_note("one@example.org")
    queue_note("two@example.org")
    db.session.commit()
    result = send(runner, "worker", "--once")
    assert "Sent 2;" in result.output and "Outbox worker stopped." in result.output
    assert len(smtp_server.wait_for(2)) == 2
    assert {m.status for m in messages()} == {OutboxStatus.SENT}


def test_the_same_notice_is_queued_once(app, runner, smtp_server):
    assert queue_note("once@example.org", dedup_key="reminder:1:1") is not None
    assert queue_note("once@example.org", dedup_key="reminder:1:1") is None
    db.session.commit()
    assert queue_note("once@example.org", dedup_key="reminder:1:1") is None
    db.session.commit()
    send(runner)
    assert len(smtp_server.wait_for(1)) == 1
    assert len(messages()) == 1


def test_the_outbox_belongs_to_organisers(app, client, sign_in, member, organiser):
    message_id = queue_note("someone@example.org").id
    db.session.commit()
    pages = ["/outbox/", "/outbox/?status=failed", f"/outbox/{message_id}", f"/outbox/{message_id}/html"]
    retry = f"/outbox/{message_id}/retry"

    for url in pages:
        response = client.get(url)
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"], url
    response = client.post(retry)
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]

    sign_in(client, member)
    for url in pages:
        assert client.get(url).status_code == 403, url
    assert client.post(retry).status_code == 403

    sign_in(client, organiser)
    for url in pages:
        assert client.get(url).status_code == 200, url
    assert client.get("/outbox/999999").status_code == 404
    preview = client.get(f"/outbox/{message_id}/html")
    assert "sandbox" in preview.headers["Content-Security-Policy"]
    assert "script-src" not in preview.headers["Content-Security-Policy"]  # default-src 'none' covers scripts


def test_the_outbox_never_shows_a_members_sign_in_link(app, client, sign_in, member, organiser):
    auth_service.send_sign_in_link(member.email)
    db.session.commit()
    [row] = messages()
    sign_in(client, organiser)
    detail = client.get(f"/outbox/{row.id}").get_data(as_text=True)
    preview = client.get(f"/outbox/{row.id}/html").get_data(as_text=True)
    assert "sam@example.org" in detail and "personal sign-in link" in detail
    assert "/sign-in/link/" not in detail and "/sign-in/link/" not in preview


@pytest.mark.app_config(OUTBOX_BATCH_SIZE=2)
def test_a_pass_sends_all_its_batches_over_one_connection_and_replaces_one_that_dropped(app, smtp_server, monkeypatch):
    opened = []
    connect = smtp_session._connect
    monkeypatch.setattr(delivery, "_connect", lambda: opened.append(connect()) or opened[-1])
    for n in range(7):
        queue_note(f"batch{n}@example.org")
    db.session.commit()
    assert deliver_due().sent == 7 and len(opened) == 1

    for n in range(4):
        queue_note(f"again{n}@example.org")
    db.session.commit()

    accepted = []

    def drop_after_the_first_batch() -> None:
        accepted.append(1)
        if len(accepted) == 2:  # between the batches the connection goes dead
            opened[-1].sock.shutdown(socket.SHUT_RDWR)

    report = deliver_due(on_sent=drop_after_the_first_batch)
    assert report.sent == 4 and report.retrying == report.failed == 0
    assert len(opened) == 3
    assert len(smtp_server.wait_for(11)) == 11
    assert {(m.status, m.attempts) for m in messages()} == {(OutboxStatus.SENT, 0)}


def test_lines_that_start_with_a_dot_arrive_unchanged(app, smtp_server):
    body = "First\r\n.\r\n..two dots\r\n.one dot\r\n"
    data = (
        b"From: a@example.org\r\nTo: b@example.org\r\nSubject: Dots\r\nMessage-ID: <dots@kxn.test>\r\n\r\n"
        + body.encode()
    )
    smtp = smtp_session._connect()
    try:
        smtp_session._start(smtp, "a@example.org", "b@example.org", data)
        smtp_session._finish(smtp)
    finally:
        smtp_session._disconnect(smtp)
    [received] = smtp_server.wait_for(1)
    assert received.get_payload() == body


def _certificate_nobody_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 that no authority vouches for."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    certificate, key = folder / "certificate.pem", folder / "key.pem"
    command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
    command += " -addext subjectAltName=IP:127.0.0.1"
    subprocess.run([*command.split(), "-keyout", str(key), "-out", str(certificate)], check=True, capture_output=True)
    return certificate, key


@pytest.mark.allow_smtp
def test_mail_goes_over_starttls_to_a_verified_server_and_signs_in_with_the_mail_settings(app, tmp_path, monkeypatch):
    certificate, key = _certificate_nobody_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(certificate, key)
    logins: list[LoginPassword] = []

    def authenticator(_server, _session, _envelope, _mechanism, login):
        logins.append(login)
        return AuthResult(success=login == LoginPassword(b"kxn", b"s3cret"))

    accepted: list[bool] = []

    class Handler:
        async def handle_DATA(self, _server, session, _envelope):
            accepted.append(session.authenticated and session.ssl is not None)
            return "250 OK"

    port = free_port()
    server = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
        ready_timeout=10,
    )
    server.start()
    try:
        app.config.update(MAIL_PORT=port, MAIL_USE_TLS=True, MAIL_USERNAME="kxn", MAIL_PASSWORD="s3cret")
        queue_note("tls@example.org")
        db.session.commit()
        # A certificate nobody vouches for: the password is never offered, and the message waits for the server.
        assert deliver_due().sent == 0 and logins == []
        [row] = messages()
        assert row.status == OutboxStatus.PENDING and row.attempts == 0
        assert "CERTIFICATE_VERIFY_FAILED" in row.last_error

        monkeypatch.setenv("SSL_CERT_FILE", str(certificate))  # the machine now trusts the server's certificate
        assert deliver_due().sent == 1
        assert logins == [LoginPassword(b"kxn", b"s3cret")] and accepted == [True]
    finally:
        server.stop()


@pytest.mark.app_config(OUTBOX_BATCH_SIZE=5)
def test_a_pass_told_to_stop_finishes_the_message_in_hand_and_releases_the_rest_untried(app, smtp_server):
    for n in range(8):
        queue_note(f"stop{n}@example.org")
    db.session.commit()
    accepted = []
    report = deliver_due(on_sent=lambda: accepted.append(1), should_stop=lambda: len(accepted) >= 2)
    assert 2 <= report.sent == len(accepted) < 5
    assert report.retrying == report.failed == 0
    rows = messages()
    assert sum(r.status == OutboxStatus.SENT for r in rows) == report.sent
    assert all(r.locked_by is None and r.attempts == 0 for r in rows)

    assert deliver_due().sent == 8 - report.sent
    assert collections.Counter(delivered_ids(smtp_server).values()) == {1: 8}


class PacingClock:
    """A clock that moves only when the sender waits, so the waits are counted exactly however busy the machine is."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


@pytest.mark.app_config(OUTBOX_SEND_RATE=20.0, OUTBOX_BATCH_SIZE=3)
def test_the_send_rate_holds_across_batches(app, smtp_server, monkeypatch):
    from kxn_meetings.mail import delivery

    for n in range(7):
        queue_note(f"rate{n}@example.org")
    db.session.commit()
    clock = PacingClock()
    monkeypatch.setattr(delivery, "time", clock)
    report = deliver_due()
    assert report.sent == 7
    # Six intervals of 1/20 s between seven messages in three batches: the first message of a batch waits too.
    assert clock.slept == pytest.approx(6 / 20)
    assert len(smtp_server.wait_for(7)) == 7


@pytest.mark.app_config(OUTBOX_BATCH_SIZE=50)
def test_each_accepted_message_is_recorded_sent_before_the_next_is_offered(app, smtp_server):
    for n in range(12):
        queue_note(f"each{n}@example.org")
    db.session.commit()
    observer = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=sa.pool.NullPool)
    accepted: list[int] = []
    recorded_at_next_mail: list[tuple[int, int]] = []
    handler = smtp_server._controller.handler
    accept = handler.handle_DATA

    async def handle_MAIL(server, session, envelope, address, mail_options):
        with observer.connect() as conn:  # what another worker would see at this moment
            sent = conn.scalar(
                sa.select(sa.func.count())
                .select_from(OutboxMessage.__table__)
                .where(OutboxMessage.__table__.c.status == "sent")
            )
        recorded_at_next_mail.append((len(accepted), sent))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(server, session, envelope):
        reply = await accept(server, session, envelope)
        accepted.append(1)
        return reply

    handler.handle_MAIL, handler.handle_DATA = handle_MAIL, handle_DATA
    try:
        assert deliver_due().sent == 12
    finally:
        observer.dispose()
    # Whenever a message is offered, every message accepted before it is already recorded as sent.
    assert recorded_at_next_mail == [(n, n) for n in range(12)]


def test_a_message_recorded_sent_reads_back_as_the_orm_wrote_it(app, smtp_server, monkeypatch):
    """The record bypasses the ORM, so it converts the time as the column's type does on this database: SQLite's
    driver would otherwise drop the fraction of a whole second (and warns from Python 3.12 on)."""
    on_the_second = dt.datetime(2026, 3, 9, 15, 0, 0, tzinfo=dt.UTC)
    monkeypatch.setattr(sent_log, "utcnow", lambda: on_the_second)
    queue_note("recorded@example.org")
    queue_note("written@example.org")
    db.session.commit()
    assert deliver_due().sent == 2
    db.session.execute(
        sa.update(OutboxMessage).where(OutboxMessage.recipient == "written@example.org").values(sent_at=on_the_second)
    )
    db.session.commit()
    stored = dict(db.session.execute(sa.text("SELECT recipient, CAST(sent_at AS TEXT) FROM outbox_messages")).all())
    assert stored["recorded@example.org"] == stored["written@example.org"]
    assert db.session.scalar(sa.select(sa.func.count()).where(OutboxMessage.sent_at == on_the_second)) == 2


def test_the_connection_that_recorded_sent_messages_goes_back_to_the_pool_durable_again(app, smtp_server):
    """Records are written without waiting for the disk (a killed worker loses none of them); the pool's next
    user must get the database's usual durability back."""
    for n in range(3):
        queue_note(f"durable{n}@example.org")
    db.session.commit()
    assert deliver_due().sent == 3
    held = [db.engine.raw_connection() for _ in range(2)]
    try:
        for connection in held:
            cursor = connection.cursor()
            if db.engine.dialect.name == "postgresql":
                cursor.execute("SHOW synchronous_commit")
                assert cursor.fetchone()[0] == "on"
                assert connection.driver_connection.autocommit is False
            else:
                cursor.execute("PRAGMA synchronous")
                assert cursor.fetchone()[0] == 1  # NORMAL
            cursor.close()
    finally:
        for connection in held:
            connection.close()


def test_a_database_failure_while_recording_loses_nothing_and_the_message_goes_again(app, smtp_server, monkeypatch):
    ids = [queue_note(f"fault{n}@example.org").id for n in range(3)]
    db.session.commit()
    monkeypatch.setattr(sent_log._SentLog, "_open", _open_with_a_broken_statement)
    with pytest.raises(sa.exc.DBAPIError):  # what the worker catches to carry on after a database outage
        deliver_due(worker_id="faulty")
    monkeypatch.undo()
    assert all(r.status == OutboxStatus.PENDING for r in messages())  # accepted, but not recorded
    db.session.execute(update(OutboxMessage).values(locked_until=utcnow() - dt.timedelta(seconds=1)))
    db.session.commit()
    assert deliver_due().sent == 3
    rows = messages()
    assert [r.status for r in rows] == [OutboxStatus.SENT] * 3 and [r.id for r in rows] == ids
    # At least once: the message whose record failed went again, the others only once.
    assert sorted(delivered_ids(smtp_server).values()) == [1, 1, 2]


def _open_with_a_broken_statement(self) -> None:
    _real_open(self)
    self.sql = self.sql.replace("UPDATE outbox_messages", "UPDATE no_such_table")


_real_open = sent_log._SentLog._open
