"""`flask --app kxn_meetings kxn ...`: set-up, demo data and mail delivery."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click
from flask import current_app
from flask.cli import AppGroup

from . import schema
from .database import discard_session, roll_back, writing
from .extensions import db
from .services import auth as auth_service
from .services.errors import ServiceError

if TYPE_CHECKING:
    from .mail import DeliveryReport


class Refusal(click.ClickException):
    """A ServiceError that ends a command: its message, printed as `Error: ...`, and exit status 1."""

    def __init__(self, error: ServiceError) -> None:
        super().__init__(error.message)
        self.error = error


@contextlib.contextmanager
def committed() -> Iterator[None]:
    """How a command ends its work, as views/transactions.py does for requests: commit the block's work, roll it back
    on any error, and end the command with a ServiceError's message (Refusal) rather than a traceback."""
    try:
        yield
        db.session.commit()
    except ServiceError as error:
        roll_back()
        raise Refusal(error) from None
    except BaseException:
        roll_back()
        raise


def _commands_write() -> None:
    """Every command may write, so on SQLite each of its transactions takes the write lock first and waits its
    turn behind the web app and the worker instead of failing halfway."""
    click.get_current_context().with_resource(writing())


kxn_cli = AppGroup("kxn", help="KXN Meetings administration.", callback=_commands_write)
outbox_cli = AppGroup("outbox", help="Deliver queued email.")
kxn_cli.add_command(outbox_cli)


@kxn_cli.command("init")
def init_command() -> None:
    """Create or upgrade the database schema to the latest migration."""
    schema.upgrade()
    click.echo(f"Database is at the latest schema: {db.engine.url.render_as_string(hide_password=True)}")


@kxn_cli.command("create-organiser")
@click.argument("email")
@click.option("--name", required=True, help="The organiser's full name.")
@click.option("--organisation", default="", help="Their organisation.")
@click.option("--password", is_flag=True, help="Also set a password (asked for twice).")
def create_organiser_command(email: str, name: str, organisation: str, password: bool) -> None:
    """Create an organiser, or make an existing member one."""
    from .services import members as member_service

    with committed():
        member, created = member_service.make_organiser(email=email, name=name, organisation=organisation)
        if password:
            secret = click.prompt("Password", hide_input=True, confirmation_prompt=True)
            if len(secret) < 12:
                raise click.BadParameter("use at least 12 characters")
            auth_service.set_password(member, secret)
    click.echo(f"{'Created' if created else 'Updated'} organiser {member.name} <{member.email}>.")


@kxn_cli.command("demo")
def demo_command() -> None:
    """Load the demo network: members, meetings, notes. Running it again changes nothing."""
    from .demo import load_demo

    with committed():
        summary = load_demo(progress=lambda text: click.echo(f"  {text}"))
    click.echo(summary)


@outbox_cli.command("send")
def outbox_send_command() -> None:
    """Deliver every message that is due now, then stop."""
    from .mail import count_due, deliver_due, prepare_due

    _announce_due()
    prepare_due()  # answer notices that no longer hold go before the count, not after it
    with committed():  # ends the count's transaction: delivery takes its own, a batch at a time
        total = count_due()
    if not total:
        click.echo("Nothing to send.")
        return
    click.echo(f"Sending {total} message{'s' if total != 1 else ''}.")
    # The bar goes to stderr: stdout carries the messages themselves when no mail server is configured.
    with click.progressbar(length=total, label="Sending", show_pos=True, file=sys.stderr) as bar:
        report = deliver_due(on_sent=lambda: bar.update(1))
    _echo_report(report)


def _announce_due() -> None:
    """Queue the updates whose batching window has closed, and the reminders and feedback requests now due, before
    delivering."""
    from .services import feedback, notices

    with committed():
        updates = notices.queue_due_updates()
        reminders = notices.queue_reminders()
        asked = feedback.ask_due()
    if updates or reminders:
        click.echo(f"Queued {updates} meeting update(s) and {reminders} reminder(s).")
    if asked:
        click.echo(f"Queued {asked} feedback request(s).")


def _echo_report(report: DeliveryReport) -> None:
    click.echo(f"Sent {report.sent}; retrying later {report.retrying}; set aside {report.failed}.")
    for error in report.errors[:5]:
        click.echo(f"  {error}", err=True)
    if len(report.errors) > 5:
        click.echo(f"  ... and {len(report.errors) - 5} more problems: see the Outbox page.", err=True)


@outbox_cli.command("worker")
@click.option("--once", is_flag=True, help="One delivery pass, then stop (for tests and cron).")
def outbox_worker_command(once: bool) -> None:
    """Keep delivering queued mail until stopped. SIGTERM or Ctrl-C let the message being sent finish first."""
    from sqlalchemy.exc import SQLAlchemyError

    from .mail import deliver_due

    stopping = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda _signum, _frame: stopping.set())
    poll = current_app.config["OUTBOX_POLL_SECONDS"]
    click.echo("Outbox worker: one pass." if once else f"Outbox worker started (polling every {poll:g}s).")
    try:
        while not stopping.is_set():
            try:
                _announce_due()
                report = deliver_due(should_stop=stopping.is_set)
            except SQLAlchemyError as error:  # database restarting: keep the worker alive and try again
                if once:
                    raise click.ClickException(f"Database error: {error}") from None
                click.echo(f"Database error, trying again in {poll:g}s: {error}", err=True)
                report = None
            finally:
                discard_session()  # a connection the database ended is put down; the next pass gets a new one
            if report is not None and (report.sent or report.retrying or report.failed):
                _echo_report(report)
            if once:
                break
            stopping.wait(poll)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    click.echo("Outbox worker stopped.")


def _meeting_or_fail(ref: str):
    from .services.meetings import find_meeting

    meeting = find_meeting(ref, load_details=True)
    if meeting is None:
        raise click.BadParameter(f"no meeting with slug or id {ref!r}", param_hint="MEETING")
    return meeting


@kxn_cli.command("invite")
@click.argument("meeting_ref", metavar="MEETING")
@click.option("--all", "everyone", is_flag=True, help="Every active member.")
@click.option("--organisation", "organisations", multiple=True, help="Members of this organisation (repeatable).")
@click.option("--email", "emails", multiple=True, help="This member's address (repeatable).")
def invite_command(meeting_ref: str, everyone: bool, organisations: tuple[str, ...], emails: tuple[str, ...]) -> None:
    """Queue personal invitations to MEETING (its slug or id); `outbox send` or the worker delivers them."""
    from .services import invitations

    meeting = _meeting_or_fail(meeting_ref)
    if not (everyone or organisations or emails):
        raise click.UsageError("say who to invite: --all, --organisation NAME or --email ADDRESS")
    with committed():
        invitations.invitable(meeting)
        members = invitations.active_members(list(organisations) or None) if (everyone or organisations) else []
        for name in sorted(set(organisations) - {m.organisation for m in members}):
            click.echo(
                f"No active member of the organisation {name}, skipped (names are as in the members list).", err=True
            )
        if emails:
            pairs, bad = invitations.parse_addresses("\n".join(emails))
            found, unknown = invitations.members_for_addresses(pairs)
            members += [m for m in found if m.active and m not in members]
            for item in bad:
                click.echo(f"Not an email address, skipped: {item}", err=True)
            for _, email in unknown:
                click.echo(f"Not a member, skipped: {email}", err=True)
        if not members:
            raise click.ClickException("nobody to invite")
        with click.progressbar(
            length=len(members), label="Queueing invitations", show_pos=True, file=sys.stderr
        ) as bar:
            queued = invitations.invite(meeting, members, progress=lambda: bar.update(1))
    click.echo(
        f"Queued {queued} invitation(s) to {meeting.title}; {len(members) - queued} already invited. "
        "Deliver with: flask --app kxn_meetings kxn outbox send"
    )


reminders_cli = AppGroup("reminders", help="Reminders before meetings.")
kxn_cli.add_command(reminders_cli)


@reminders_cli.command("send")
def reminders_send_command() -> None:
    """Queue reminders for meetings starting soon (REMINDER_HOURS); safe to run from cron as often as you like."""
    from .services import notices

    with committed():
        queued = notices.queue_reminders()
    click.echo(f"Queued {queued} reminder(s)." if queued else "No reminders due.")


replies_cli = AppGroup("replies", help="Calendar replies: Accept, Maybe and Decline pressed in a calendar.")
kxn_cli.add_command(replies_cli)

IMAP_TIMEOUT = 60
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class _ReplyTally:
    """Counts what became of each message, and processes one without ever stopping on a bad one."""

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}
        self.duplicates = 0
        self.failed = 0
        self.refused = 0

    def process(self, raw: bytes, label: str, *, echo: bool, size: int | None = None) -> bool:
        """True when the message is dealt with (processed now or before, or refused), so it may be marked as read.
        raw may hold only the first REPLIES_MAX_BYTES + 1 bytes (_read_capped); size is then the whole message's,
        or None when it is not known."""
        from .services import replies

        try:
            with committed():
                if size is None and (cut := replies.too_large(len(raw), at_least=True)):
                    raise replies.Refused(cut)
                processed = replies.process(raw, size=size)
        except Refusal as refused:  # the same bytes would be refused again: never worth a retry
            self.refused += 1
            click.echo(f"{label}: refused: {refused.message}")
            return True
        except Exception as error:  # one message must never stop the others
            current_app.logger.exception("calendar reply %s could not be processed", label)
            self.failed += 1
            click.echo(f"{label}: could not be processed ({type(error).__name__}); it will be tried again.", err=True)
            return False
        reply = processed.reply
        if processed.duplicate:
            self.duplicates += 1
        else:
            self.outcomes[reply.outcome.value] = self.outcomes.get(reply.outcome.value, 0) + 1
        if echo or (reply.outcome.is_unmatched and not processed.duplicate):
            status = "already processed, " + reply.outcome.value if processed.duplicate else reply.outcome.value
            click.echo(f"{label}: {status}: {reply.reason}")
        return True

    def summary(self) -> str:
        total = sum(self.outcomes.values()) + self.duplicates + self.failed + self.refused
        counts = ", ".join(
            f"{self.outcomes.get(name, 0)} {name}" for name in ("applied", "unchanged", "counter", "unmatched")
        )
        text = f"{total} message(s): {counts}; {self.duplicates} already processed"
        if self.refused:
            text += f"; {self.refused} refused"
        return text + (f"; {self.failed} could not be processed." if self.failed else ".")


def _read_capped(handle) -> tuple[bytes, int | None]:
    """The first REPLIES_MAX_BYTES + 1 bytes of a message, enough to know it is too large without holding all of
    it; and its whole size when that can be known without reading it (a regular file), else None."""
    import os
    import stat

    raw = handle.read(current_app.config["REPLIES_MAX_BYTES"] + 1)
    try:
        status = os.fstat(handle.fileno())
    except (AttributeError, OSError, ValueError):  # mailbox parts and pipes have no size of their own
        return raw, None
    return raw, status.st_size if stat.S_ISREG(status.st_mode) else None


def _imap_quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _imap_connect():
    import imaplib
    import ssl

    config = current_app.config
    host, port = config["REPLIES_IMAP_HOST"], config["REPLIES_IMAP_PORT"]
    if not host:
        raise click.ClickException(
            "set KXN_REPLIES_IMAP_HOST, KXN_REPLIES_IMAP_USER and KXN_REPLIES_IMAP_PASSWORD "
            "to read calendar replies from the calendar address's mailbox"
        )
    context = ssl.create_default_context()
    imap: imaplib.IMAP4 | None = None
    try:
        if config["REPLIES_IMAP_SSL"]:
            imap = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=IMAP_TIMEOUT)
        else:
            imap = plain = imaplib.IMAP4(host, port, timeout=IMAP_TIMEOUT)
            # A password never crosses the network in the clear: plain IMAP only to this machine.
            if host not in LOCAL_HOSTS:
                try:
                    plain.starttls(ssl_context=context)
                except imaplib.IMAP4.error as error:
                    raise imaplib.IMAP4.error(
                        f"no STARTTLS ({error}), and the password is sent only over TLS; "
                        "implicit TLS is KXN_REPLIES_IMAP_SSL=true"
                    ) from None
        imap.login(config["REPLIES_IMAP_USER"], config["REPLIES_IMAP_PASSWORD"])
        status, detail = imap.select(_imap_quote(config["REPLIES_IMAP_FOLDER"]))
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot open folder {config['REPLIES_IMAP_FOLDER']!r}: {detail!r}")
    except (OSError, imaplib.IMAP4.error) as error:
        if imap is not None:
            imap.shutdown()
        raise click.ClickException(f"IMAP server {host}:{port}: {error}") from None
    return imap


def _imap_size(data) -> int | None:
    """The message's size as the server gives it (RFC822.SIZE), read from the response lines around the message's
    text and never from the text itself; None when the server leaves it out."""
    import re

    for item in data or []:
        line = item[0] if isinstance(item, tuple) else item
        found = re.search(rb"RFC822\.SIZE (\d{1,15})", line) if isinstance(line, bytes) else None
        if found:
            return int(found.group(1))
    return None


@replies_cli.command("fetch")
def replies_fetch_command() -> None:
    """Process the unread messages of the calendar mailbox (KXN_REPLIES_IMAP_*), marking each read once stored.

    The exit status is 1 when a message could not be processed (the database gone, say): it stays unread, to be
    tried on the next run, and whatever runs this from cron learns that something is wrong."""
    import imaplib

    imap = _imap_connect()
    tally = _ReplyTally()
    try:
        status, data = imap.uid("SEARCH", None, "UNSEEN")
        uids = data[0].split() if status == "OK" and data and data[0] else []
        if not uids:
            click.echo("No new messages.")
            return
        # PEEK leaves a message unread until its outcome is committed; a message is fetched only as far as
        # REPLIES_MAX_BYTES + 1 bytes, so a huge one is refused without being downloaded.
        items = f"(RFC822.SIZE BODY.PEEK[]<0.{current_app.config['REPLIES_MAX_BYTES'] + 1}>)"
        with click.progressbar(length=len(uids), label="Reading replies", show_pos=True, file=sys.stderr) as bar:
            for uid in uids:
                status, data = imap.uid("FETCH", uid, items)
                raw = next((item[1] for item in data or [] if isinstance(item, tuple)), None)
                if status != "OK" or not isinstance(raw, bytes):
                    tally.failed += 1
                    click.echo(f"message {uid.decode()}: the server did not send it.", err=True)
                elif tally.process(raw, f"message {uid.decode()}", echo=False, size=_imap_size(data)):
                    imap.uid("STORE", uid, "+FLAGS", "(\\Seen)")
                bar.update(1)
    except (OSError, imaplib.IMAP4.error) as error:
        raise click.ClickException(f"IMAP: {error} ({tally.summary()})") from None
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            imap.logout()
    click.echo(tally.summary())
    if tally.failed:
        click.get_current_context().exit(1)


def _messages_at(path: str):
    """(label, bytes, size) for each message in a file, an mbox, a Maildir, a folder of .eml files, or `-` (stdin).
    Only a message's first REPLIES_MAX_BYTES + 1 bytes are read (_read_capped)."""
    import mailbox
    import os

    if path == "-":
        yield "standard input", *_read_capped(sys.stdin.buffer)
        return
    if os.path.isdir(path):
        if os.path.isdir(os.path.join(path, "cur")) and os.path.isdir(os.path.join(path, "new")):
            box = mailbox.Maildir(path, factory=None, create=False)
            for key in sorted(box.keys()):
                with box.get_file(key) as handle:
                    yield f"{path}: {key}", *_read_capped(handle)
            return
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if name.lower().endswith(".eml") and os.path.isfile(full):
                with open(full, "rb") as handle:
                    yield full, *_read_capped(handle)
        return
    with open(path, "rb") as handle:
        if not handle.peek(5).startswith(b"From "):  # peek, not read: the path may be a pipe, which cannot seek back
            yield path, *_read_capped(handle)
            return
    mbox = mailbox.mbox(path, factory=None, create=False)
    try:
        for number, key in enumerate(mbox.keys(), start=1):
            with mbox.get_file(key) as handle:
                yield f"{path}: message {number}", *_read_capped(handle)
    finally:
        mbox.close()


@replies_cli.command("ingest")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
def replies_ingest_command(paths: tuple[str, ...]) -> None:
    """Process messages from .eml files, Maildir folders, mbox files or `-` (standard input).

    A message that is not a reply that counts is reported and kept as unmatched; one larger than REPLIES_MAX_BYTES
    or nested too deep is refused with its reason, and nothing of it is kept. The exit status is 1 when a path
    cannot be read or a message could not be processed (the database gone, say), to be given again.
    """
    tally = _ReplyTally()
    unreadable = 0
    for path in paths:
        try:
            for label, raw, size in _messages_at(path):
                tally.process(raw, label, echo=True, size=size)
        except OSError as error:
            unreadable += 1
            click.echo(f"{path}: cannot be read: {error.strerror or error}", err=True)
    click.echo(tally.summary())
    if unreadable or tally.failed:
        click.get_current_context().exit(1)
