"""The schema the migrations build is the schema the models describe, on each database."""

import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from kxn_meetings.extensions import db


def test_migrations_match_the_models(app):
    with db.engine.connect() as connection, warnings.catch_warnings():
        # Neither dialect reflects the expression index on lower(email); the migration creates it.
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []


def test_email_is_unique_whatever_its_case(app, make_member):
    make_member(email="Stephen.Walcott@example.org")
    with pytest.raises(IntegrityError):
        make_member(email="stephen.walcott@EXAMPLE.org")
    db.session.rollback()
