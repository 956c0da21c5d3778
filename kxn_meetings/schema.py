"""The database schema's migrations (Alembic through Flask-Migrate), loaded only by what needs them.

Importing Flask-Migrate loads Alembic, about 10 MiB that a web worker never uses: `flask db ...`, `kxn init`
and the tests bind it on first use instead of create_app() doing so for every process.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app, g
from flask.cli import ScriptInfo, with_appcontext

from .extensions import db

MIGRATIONS_DIR = str(Path(__file__).resolve().parent / "migrations")


def bind_migrations(app: Flask) -> None:
    """Flask-Migrate set up on `app` (once), as `flask db` and upgrade() expect."""
    if "migrate" not in app.extensions:
        from flask_migrate import Migrate

        Migrate(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)


def upgrade() -> None:
    """Bring the current app's database to the latest migration."""
    from flask_migrate import upgrade as upgrade_to

    bind_migrations(current_app._get_current_object())  # type: ignore[attr-defined]
    upgrade_to(directory=MIGRATIONS_DIR)


class MigrationCommands(click.Group):
    """Flask-Migrate's `flask db` commands (upgrade, downgrade, revision, ...), loaded when one is asked for."""

    def _commands(self, ctx: click.Context) -> click.Group:
        bind_migrations(ctx.ensure_object(ScriptInfo).load_app())
        from flask_migrate.cli import db as commands

        return commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._commands(ctx).list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._commands(ctx).get_command(ctx, name)


@click.group("db", cls=MigrationCommands, help="Database migrations (Flask-Migrate): upgrade, downgrade, history.")
@click.option("-d", "--directory", default=None, help=f"Migration scripts (default {MIGRATIONS_DIR}).")
@click.option("-x", "--x-arg", multiple=True, help="Additional arguments consumed by custom env.py scripts.")
@with_appcontext
def migration_commands(directory: str | None, x_arg: tuple[str, ...]) -> None:
    # As Flask-Migrate's own `db` group: its commands and Migrate.get_config() read these from g.
    g.directory = directory
    g.x_arg = x_arg
