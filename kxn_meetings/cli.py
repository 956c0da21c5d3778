"""`flask --app kxn_meetings kxn ...`: set-up, demo data and mail delivery."""

from __future__ import annotations

import signal
import time

import click
from flask import current_app
from flask.cli import AppGroup
from flask_migrate import upgrade

from .extensions import db
from .models import Member
from .services import auth as auth_service

kxn_cli = AppGroup("kxn", help="KXN Meetings administration.")
outbox_cli = AppGroup("outbox", help="Deliver queued email.")
kxn_cli.add_command(outbox_cli)


@kxn_cli.command("init")
def init_command() -> None:
    """Create or upgrade the database schema to the latest migration."""
    upgrade(directory=current_app.extensions["migrate"].directory)
    click.echo(f"Database is at the latest schema: {db.engine.url.render_as_string(hide_password=True)}")


@kxn_cli.command("create-organiser")
@click.argument("email")
@click.option("--name", required=True, help="The organiser's full name.")
@click.option("--organisation", default="", help="Their organisation.")
@click.option("--password", is_flag=True, help="Also set a password (asked for twice).")
def create_organiser_command(email: str, name: str, organisation: str, password: bool) -> None:
    """Create an organiser, or make an existing member one."""
    from .services import members as member_service

    try:
        member, created = member_service.make_organiser(email=email, name=name, organisation=organisation)
    except member_service.MemberError as error:
        raise click.BadParameter(str(error)) from None
    if password:
        secret = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        if len(secret) < 12:
            raise click.BadParameter("use at least 12 characters")
        auth_service.set_password(member, secret)
    db.session.commit()
    click.echo(f"{'Created' if created else 'Updated'} organiser {member.name} <{member.email}>.")


@kxn_cli.command("demo")
def demo_command() -> None:
    """Load the demo network: members, meetings, notes. Running it again changes nothing."""
    from .demo import load_demo

    summary = load_demo(progress=lambda text: click.echo(f"  {text}"))
    db.session.commit()
    click.echo(summary)


@outbox_cli.command("send")
def outbox_send_command() -> None:
    """Deliver every message that is due now, then stop."""
    from .mail import count_due, deliver_due

    total = count_due()
    if not total:
        click.echo("Nothing to send.")
        return
    with click.progressbar(length=total, label="Sending", show_pos=True) as bar:
        report = deliver_due(on_sent=lambda: bar.update(1))
    click.echo(f"Sent {report.sent}; retrying later {report.retrying}; set aside {report.failed}.")
    for error in report.errors[:5]:
        click.echo(f"  {error}", err=True)


@outbox_cli.command("worker")
@click.option("--once", is_flag=True, help="Stop when the queue is empty (for tests and cron).")
def outbox_worker_command(once: bool) -> None:
    """Keep delivering queued mail until stopped (SIGTERM or Ctrl-C finish the current message first)."""
    from .mail import deliver_due

    stopping = False

    def stop(_signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    poll = current_app.config["OUTBOX_POLL_SECONDS"]
    click.echo(f"Outbox worker started (polling every {poll:g}s).")
    try:
        while not stopping:
            report = deliver_due()
            if report.sent or report.retrying or report.failed:
                click.echo(f"Sent {report.sent}; retrying later {report.retrying}; set aside {report.failed}.")
            db.session.remove()
            if once and not report.sent:
                break
            slept = 0.0
            while not stopping and slept < poll:
                time.sleep(0.2)
                slept += 0.2
    except KeyboardInterrupt:
        pass
    click.echo("Outbox worker stopped.")
