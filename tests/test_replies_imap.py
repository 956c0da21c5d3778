"""`kxn replies fetch` against a real IMAP server: Debian's Dovecot, started on 127.0.0.1 once per test process
with its own configuration in a temporary folder; each test signs in as a user of its own, with its own mailbox."""

from __future__ import annotations

import grp
import imaplib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, CalendarReply, ReplyOutcome, Rsvp
from kxn_meetings.services import replies as replies_service
from kxn_meetings.services.replies import MAX_MIME_DEPTH

from .conftest import IN_CI
from .smtp import free_port
from .test_replies import CORPUS, UNMATCHED_CORPUS, invite, nested, padded, render

DOVECOT = shutil.which("dovecot") or next((p for p in ("/usr/sbin/dovecot",) if os.access(p, os.X_OK)), None)
PASSWORD = "imap-test-password"
_users = (f"calendar{n}" for n in itertools.count(1))


class Dovecot:
    """One Dovecot master process serving IMAP without TLS on 127.0.0.1 and 127.0.0.2 to any user with PASSWORD.
    Starting and stopping it takes about a second, so a test process keeps one and each test is a user of its own."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="kxn-dovecot-"))
        self.root.chmod(0o755)  # the mail processes run as an unprivileged user and must reach the mailbox
        self.port = free_port()
        self.log = self.root / "dovecot.log"
        self.process: subprocess.Popen | None = None

    def _users(self) -> tuple[str, str, str]:
        """The mail user and group, and settings that let Dovecot run without root."""
        if os.getuid() == 0:
            nobody = pwd.getpwnam("nobody")
            return nobody.pw_name, grp.getgrgid(nobody.pw_gid).gr_name, ""
        me = pwd.getpwuid(os.getuid())
        return (
            me.pw_name,
            grp.getgrgid(me.pw_gid).gr_name,
            (f"default_login_user = {me.pw_name}\ndefault_internal_user = {me.pw_name}\n"),
        )

    def start(self) -> None:
        mail = self.root / "mail"
        mail.mkdir()
        user, group, unprivileged = self._users()
        shutil.chown(mail, user, group)
        for folder in ("run", "state"):
            (self.root / folder).mkdir()
        config = self.root / "dovecot.conf"
        config.write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.log}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# A refused password is answered at once, not after the usual 2 s that slows down guessing.
auth_failure_delay = 0
{unprivileged}
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={mail}/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1 127.0.0.2
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
""")
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Dovecot stopped: {self.process.stderr.read().decode()} {self.log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"Dovecot did not start listening: {self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Mailbox:
    """One test's user on the process's Dovecot."""

    server: Dovecot
    user: str

    def logins(self) -> int:
        return self.server.log_text().count(f"Login: user=<{self.user}>")

    def wait_for_logins(self, n: int) -> None:
        deadline = time.monotonic() + 5
        while self.logins() < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def connect(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.server.port, timeout=10)
        imap.login(self.user, PASSWORD)
        imap.select("INBOX")
        return imap

    def deliver(self, messages: list[bytes]) -> None:
        imap = self.connect()
        try:
            for raw in messages:
                status, detail = imap.append("INBOX", None, None, raw)
                assert status == "OK", detail
        finally:
            imap.logout()

    def flags(self) -> list[str]:
        imap = self.connect()
        try:
            _status, data = imap.fetch("1:*", "(FLAGS)")
            return [line.decode() for line in data if isinstance(line, bytes)]
        finally:
            imap.logout()


@pytest.fixture(scope="session")
def dovecot():
    if DOVECOT is None:
        message = "Dovecot is not installed (Debian package dovecot-imapd; `make test` installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    server = Dovecot()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def imap_server(app, dovecot):
    mailbox = Mailbox(dovecot, next(_users))
    app.config.update(
        REPLIES_IMAP_HOST="127.0.0.1",
        REPLIES_IMAP_PORT=dovecot.port,
        REPLIES_IMAP_USER=mailbox.user,
        REPLIES_IMAP_PASSWORD=PASSWORD,
        REPLIES_IMAP_SSL=False,
        REPLIES_IMAP_FOLDER="INBOX",
    )
    return mailbox


def fetch(runner):
    result = runner.invoke(args=["kxn", "replies", "fetch"])
    assert result.exit_code == 0, result.output
    return result.output


def test_fetch_processes_each_message_of_the_corpus_exactly_once_across_runs(
    imap_server, runner, make_meeting, make_member
):
    meeting = make_meeting()
    people = {address: make_member(email=address) for _, address, _, _, _ in CORPUS}
    invite(meeting, *people.values())
    dana = people["dana.hughes@vru.example.org"]
    messages = [
        render(fixture, uid=meeting.uid, email=written or address) for fixture, address, written, _, _ in CORPUS
    ]
    messages += [render(fixture, uid=meeting.uid, email=dana.email) for fixture, _ in UNMATCHED_CORPUS]
    messages.append(render("counter.eml", uid=meeting.uid, email=dana.email))
    imap_server.deliver(messages)

    first = fetch(runner)
    unmatched = len(UNMATCHED_CORPUS)
    assert (
        f"{len(messages)} message(s): {len(CORPUS)} applied, 0 unchanged, 1 counter, {unmatched} unmatched; "
        "0 already processed."
    ) in first
    assert fetch(runner).strip() == "No new messages."
    assert all("\\Seen" in line for line in imap_server.flags())

    db.session.rollback()
    assert db.session.scalar(select(func.count(CalendarReply.id))) == len(messages)
    answers = dict(db.session.execute(select(Rsvp.member_id, Rsvp.answer).where(Rsvp.meeting_id == meeting.id)).all())
    assert answers == {people[address].id: answer for _, address, _, answer, _ in CORPUS}
    assert answers[dana.id] == Answer.DECLINED

    # Marked unread again (by a person, or after a crash between commit and flag): recognised, not redone.
    imap = imap_server.connect()
    imap.store("1:*", "-FLAGS", "(\\Seen)")
    imap.logout()
    again = fetch(runner)
    assert (
        f"{len(messages)} message(s): 0 applied, 0 unchanged, 0 counter, 0 unmatched; {len(messages)} already" in again
    )
    db.session.rollback()
    assert db.session.scalar(select(func.count(CalendarReply.id))) == len(messages)
    outcomes = db.session.scalars(select(CalendarReply.outcome)).all()
    assert outcomes.count(ReplyOutcome.APPLIED) == len(CORPUS)


def test_fetch_leaves_a_message_it_could_not_process_unread_and_exits_1(
    imap_server, runner, make_meeting, make_member, monkeypatch
):
    """The database gone while one message is recorded: the others are applied and marked read, that one stays
    unread for the next run, and the command's status tells cron something went wrong."""
    meeting = make_meeting()
    people = [make_member(email=f"reply{n}@example.org") for n in range(3)]
    invite(meeting, *people)
    imap_server.deliver([render("gmail_accepted.eml", uid=meeting.uid, email=p.email) for p in people])
    process = replies_service.process
    seen = []

    def gone_once(raw, **kwargs):
        seen.append(raw)
        if len(seen) == 2:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
        return process(raw, **kwargs)

    monkeypatch.setattr(replies_service, "process", gone_once)
    result = runner.invoke(args=["kxn", "replies", "fetch"])
    assert result.exit_code == 1, result.output
    assert "3 message(s): 2 applied" in result.output and "1 could not be processed" in result.output
    assert sum("\\Seen" in line for line in imap_server.flags()) == 2
    again = fetch(runner)
    assert "1 message(s): 1 applied" in again


def test_fetch_reports_a_wrong_password_without_a_traceback(imap_server, app, runner):
    app.config["REPLIES_IMAP_PASSWORD"] = "wrong"
    result = runner.invoke(args=["kxn", "replies", "fetch"])
    assert result.exit_code == 1
    assert "IMAP server 127.0.0.1:" in result.output and "Traceback" not in result.output


def test_fetch_never_logs_in_without_tls_to_another_host(imap_server, app, runner):
    """127.0.0.2 is not this machine's name for itself: without implicit TLS it must be STARTTLS, which this
    server (TLS off) does not offer, so the password is never sent."""
    app.config["REPLIES_IMAP_HOST"] = "127.0.0.2"
    imap_server.deliver([render("not_reply_plain.eml")])
    imap_server.wait_for_logins(1)
    result = runner.invoke(args=["kxn", "replies", "fetch"])
    assert result.exit_code == 1 and "STARTTLS" in result.output
    imap_server.connect().logout()
    imap_server.wait_for_logins(2)  # ours, after the refused fetch: the log is current and holds no other
    assert imap_server.logins() == 2


def test_fetch_refuses_messages_too_large_or_nested_too_deep_marks_them_read_and_carries_on(
    imap_server, app, runner, make_meeting, make_member
):
    app.config["REPLIES_MAX_BYTES"] = limit = 1_000_000  # room for 10,000 levels, which take 800 kB
    meeting = make_meeting()
    person, other = make_member(email="dana.hughes@vru.example.org"), make_member(email="ben.okafor@nhs.example.org")
    invite(meeting, person, other)
    big = padded(render("declined_comment.eml", uid=meeting.uid, email=person.email), limit + 1)
    deepest = nested(10_000, meeting.uid, person.email)
    assert len(deepest) <= limit
    imap_server.deliver(
        [
            big,
            nested(MAX_MIME_DEPTH + 1, meeting.uid, person.email),
            deepest,
            nested(MAX_MIME_DEPTH, meeting.uid, other.email),
        ]
    )

    output = fetch(runner)
    stored = len(big.replace(b"\n", b"\r\n"))  # the server's size (RFC822.SIZE): it keeps CRLF line ends
    assert f"message 1: refused: Too large: {stored} bytes; a message may be at most {limit} bytes." in output
    assert "message 2: refused: Nested too deep" in output and "message 3: refused: Nested too deep" in output
    assert "4 message(s): 1 applied, 0 unchanged, 0 counter, 0 unmatched; 0 already processed; 3 refused." in output
    assert all("\\Seen" in line for line in imap_server.flags())
    assert fetch(runner).strip() == "No new messages."

    db.session.rollback()
    answers = dict(db.session.execute(select(Rsvp.member_id, Rsvp.answer).where(Rsvp.meeting_id == meeting.id)).all())
    assert answers == {other.id: Answer.DECLINED}
    assert db.session.scalars(select(CalendarReply.member_id)).all() == [other.id]
