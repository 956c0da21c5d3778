"""Taking the migrations' own test database down to an older revision and back to the head within one test."""

from __future__ import annotations

from sqlalchemy import Inspector, inspect

from kxn_meetings import schema
from kxn_meetings.extensions import db


def down_to(app, revision: str) -> Inspector:
    """Take the migrations' own database (as each pass's other tests use it) down to `revision`; up_again() must
    follow before the test ends."""
    from flask_migrate import downgrade

    db.session.commit()
    db.session.remove()
    schema.bind_migrations(app)
    downgrade(directory=schema.MIGRATIONS_DIR, revision=revision)
    db.engine.dispose()
    return inspect(db.engine)


def up_again() -> Inspector:
    schema.upgrade()
    db.engine.dispose()
    return inspect(db.engine)
