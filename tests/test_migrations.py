"""The schema the migrations build is the schema the models describe, on each database."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from kxn_meetings.extensions import db

from .conftest import DATABASE
from .migration_helpers import down_to, up_again


def differences_from_the_models() -> list:
    with db.engine.connect() as connection, warnings.catch_warnings():
        # Neither dialect reflects the expression index on lower(email); the migration creates it.
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        return compare_metadata(MigrationContext.configure(connection), db.metadata)


def test_migrations_match_the_models(app):
    assert differences_from_the_models() == []


def test_email_is_unique_whatever_its_case(app, make_member):
    make_member(email="Stephen.Walcott@example.org")
    with pytest.raises(IntegrityError):
        make_member(email="stephen.walcott@EXAMPLE.org")
    db.session.rollback()


@pytest.mark.slow
@pytest.mark.skipif(DATABASE != "sqlite", reason="works on its own SQLite file; runs in the SQLite pass")
def test_flask_db_commands_reach_the_migrations(tmp_path):
    flask = [str(Path(sys.executable).with_name("flask")), "--app", "kxn_meetings"]
    env = dict(os.environ, KXN_SECRET_KEY="k" * 64, KXN_SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/x.db")

    def run(*args: str) -> str:
        done = subprocess.run([*flask, *args], env=env, capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        run.stderr = done.stderr  # type: ignore[attr-defined]
        return done.stdout

    run("kxn", "init")
    # A newcomer's first `make run` shows this output: nothing in it may read like a failure.
    assert "Warning" not in run.stderr and "Traceback" not in run.stderr, run.stderr  # type: ignore[attr-defined]
    run("db", "downgrade", "0002")
    current = run("db", "current")
    assert "0002" in current and "(head)" not in current
    run("db", "upgrade")
    assert "(head)" in run("db", "current")


def test_a_web_process_does_not_load_alembic(tmp_path):
    # About 10 MiB a worker would carry for nothing: only `flask db`, `kxn init` and the tests migrate.
    code = (
        "import sys; from kxn_meetings import create_app; "
        f"app = create_app({{'SECRET_KEY': 'k' * 64, 'SQLALCHEMY_DATABASE_URI': 'sqlite:///{tmp_path}/x.db'}}); "
        "app.test_client().get('/sign-in'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'flask_migrate')))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert run.stdout.strip() == "[]", run.stdout + run.stderr


@pytest.mark.slow
@pytest.mark.skipif(DATABASE != "sqlite", reason="works on its own SQLite file; runs in the SQLite pass")
def test_a_web_process_shows_a_meeting_description_without_loading_the_markdown_renderer(tmp_path):
    # markdown-it and nh3 cost a worker about 2.7 MiB: the description is rendered when it is written.
    config = f"{{'SECRET_KEY': 'k' * 64, 'SQLALCHEMY_DATABASE_URI': 'sqlite:///{tmp_path}/x.db'}}"
    write = (
        "import datetime as dt; from bench._harness import sample_meeting; "
        "from kxn_meetings import create_app, schema; from kxn_meetings.extensions import db; "
        f"app = create_app({config}); ctx = app.app_context(); ctx.push(); schema.upgrade(); "
        "db.session.add(sample_meeting('described', dt.datetime(2031, 3, 9, 15, tzinfo=dt.UTC), "
        "description='## What we will ask\\n\\nWhich *diversion* schemes work?')); db.session.commit()"
    )
    read = (
        "import sys; from kxn_meetings import create_app; "
        f"app = create_app({config}); page = app.test_client().get('/meetings/described'); "
        "print(page.status_code, '<h2 id=\"what-we-will-ask\">What we will ask</h2>' in page.text, "
        "'<em>diversion</em>' in page.text, "
        "sorted(m for m in sys.modules if m.split('.')[0] in ('markdown_it', 'nh3')))"
    )
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", write], capture_output=True, text=True, check=True, cwd=root)
    run = subprocess.run([sys.executable, "-c", read], capture_output=True, text=True, check=True, cwd=root)
    assert run.stdout.strip() == "200 True True []", run.stdout + run.stderr


def test_meeting_descriptions_are_rendered_when_the_column_comes(app, make_meeting):
    from sqlalchemy import text

    from kxn_meetings.models import Meeting
    from kxn_meetings.rendering import render_markdown

    described = make_meeting(description="First *words*").id
    down_to(app, "0012")
    with db.engine.begin() as connection:
        connection.execute(
            text("UPDATE meetings SET description = :d WHERE id = :id"),
            {"d": "## Changed\n\n<b>x</b>", "id": described},
        )

    up_again()
    assert db.session.get(Meeting, described).description_html == render_markdown("## Changed\n\n<b>x</b>")
    assert "<h2" in db.session.get(Meeting, described).description_html


@pytest.mark.skipif(DATABASE != "postgresql", reason="a process on PostgreSQL; runs in the PostgreSQL pass")
def test_a_web_process_on_postgresql_does_not_load_sqlite3(app, tmp_path):
    url = db.engine.url.render_as_string(hide_password=False)
    code = (
        "import sys; from kxn_meetings import create_app; "
        f"app = create_app({{'SECRET_KEY': 'k' * 64, 'SQLALCHEMY_DATABASE_URI': {url!r}}}); "
        "print(app.test_client().get('/').status_code, sorted(m for m in sys.modules if 'sqlite' in m))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert run.stdout.strip() == "200 []", run.stdout + run.stderr


def test_sector_region_and_feedback_go_down_and_up_again(app, make_member, make_meeting):
    from kxn_meetings.models import MeetingFeedback, Region, Sector

    member = make_member(sector=Sector.HEALTH, region=Region.WALES)
    db.session.add(MeetingFeedback(meeting_id=make_meeting().id, member_id=member.id, score=4))

    inspector = down_to(app, "0008")
    assert "meeting_feedback" not in inspector.get_table_names()
    assert {"sector", "region"}.isdisjoint(c["name"] for c in inspector.get_columns("members"))

    inspector = up_again()
    assert "meeting_feedback" in inspector.get_table_names()
    assert {"sector", "region"} <= {c["name"] for c in inspector.get_columns("members")}


def test_series_follows_go_down_and_up_again_and_meetings_without_a_series_join_the_default(app, make_meeting):
    from sqlalchemy import select

    from kxn_meetings.models import Meeting, MeetingSeries

    orphan = make_meeting(title="Before series").id

    inspector = down_to(app, "0009")
    assert "series_follows" not in inspector.get_table_names()
    assert "list_unsubscribe" not in {c["name"] for c in inspector.get_columns("outbox_messages")}
    assert "description" not in {c["name"] for c in inspector.get_columns("meeting_series")}

    inspector = up_again()
    assert "series_follows" in inspector.get_table_names()
    [series] = db.session.scalars(select(MeetingSeries)).all()
    assert (series.slug, series.name, series.description) == ("kxn", "Knowledge Exchange Network", "")
    assert db.session.get(Meeting, orphan).series_id == series.id


def test_every_migration_goes_down_to_an_empty_database_and_up_again_to_the_models(app, make_meeting):
    make_meeting(title="Kept only until the tables go")

    assert set(down_to(app, "base").get_table_names()) <= {"alembic_version"}

    up_again()
    assert differences_from_the_models() == []
