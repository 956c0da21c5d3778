"""KXN Meetings: meetings, RSVPs, calendar invitations and notes for a professional network."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from . import config as settings

PACKAGE_DIR = Path(__file__).resolve().parent


def template_folder() -> str:
    """The copy packed into a wheel, or templates/ at the repository root in a checkout."""
    packaged = PACKAGE_DIR / "templates"
    if packaged.is_dir():
        return str(packaged)
    return str(PACKAGE_DIR.parent / "templates")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    instance_path = (test_config or {}).get("INSTANCE_PATH") or os.environ.get("KXN_INSTANCE_PATH") or None
    app = Flask(
        __name__,
        instance_relative_config=True,
        instance_path=instance_path,
        template_folder=template_folder(),
        static_folder="static",
    )
    app.config.from_mapping(settings.defaults())
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_mapping(settings.from_environ())
    if test_config:
        app.config.from_mapping(test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    settings.finalise(app.config, instance_path=app.instance_path, debug=app.debug)

    from . import database, security
    from .extensions import csrf, db, login_manager, mail

    db.init_app(app)
    database.init_app(app)
    mail.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    security.init_app(app)

    from . import filters, views
    from . import mail as mailer
    from .cli import kxn_cli
    from .schema import migration_commands
    from .services.notices import render_answer_notices

    filters.init_app(app)
    mailer.init_app(app, prepare=render_answer_notices)
    views.init_app(app)
    app.cli.add_command(kxn_cli)
    app.cli.add_command(migration_commands)
    return app
