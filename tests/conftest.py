"""Fixtures every test builds on.

- The suite runs once per database: KXN_TEST_DATABASE=sqlite (default) or postgresql.
- The schema is created by the real migrations once per run; every test starts from empty tables.
- Every test gets a new app; the app reuses what this process already built and does not depend on one app's
  configuration (compiled templates, URL builders, the engine with its SQL cache and its pooled connections).
- `app`, `client`, `runner`, factories (`make_member`, `make_meeting`), `sign_in`.
- `smtp_server`: a real aiosmtpd server; without it, any SMTP connection fails the test.
- `@pytest.mark.app_config(KEY=value)` overrides configuration for one test.
- Tests that never touch a database (no `database_url` among their fixtures) and browser tests run in the
  SQLite pass only: the PostgreSQL pass deselects them, since they would prove the same thing twice.
- Hypothesis runs the "ci" profile when CI is set and a lighter "dev" profile otherwise
  (HYPOTHESIS_PROFILE chooses one by name).
- Passwords are hashed with one PBKDF2 round here; the app keeps its production cost everywhere else.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
import smtplib
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import ClassVar

import pytest
import sqlalchemy as sa
from flask import Flask, g, has_app_context
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from werkzeug.routing import Rule

from kxn_meetings import create_app, schema
from kxn_meetings.extensions import db
from kxn_meetings.models import Meeting, MeetingStatus, Member, Visibility
from kxn_meetings.services import auth as auth_service

from .smtp import SmtpServer

pytest_plugins = ["tests.browser_fixtures"]

DATABASE = os.environ.get("KXN_TEST_DATABASE", "sqlite").lower()
POSTGRES_ADMIN_URL = os.environ.get("KXN_TEST_POSTGRESQL_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


_HYPOTHESIS_DEFAULTS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}
settings.register_profile("ci", max_examples=100, print_blob=True, **_HYPOTHESIS_DEFAULTS)
settings.register_profile("dev", max_examples=10, **_HYPOTHESIS_DEFAULTS)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if IN_CI else "dev")
settings.load_profile(HYPOTHESIS_PROFILE)


def pytest_report_header(config):
    return [f"database: {DATABASE}", f"hypothesis profile: {HYPOTHESIS_PROFILE}"]


def runs_in_sqlite_pass_only(item) -> bool:
    return "database_url" not in item.fixturenames or item.get_closest_marker("browser") is not None


def runs_long(item) -> bool:
    return item.get_closest_marker("slow") is not None or item.get_closest_marker("browser") is not None


def pytest_collection_modifyitems(config, items):
    # Long tests first: started last, one would keep a worker busy while the others have nothing left to do.
    items.sort(key=lambda item: not runs_long(item))
    if DATABASE == "postgresql":
        once = [item for item in items if runs_in_sqlite_pass_only(item)]
        if once:
            config.hook.pytest_deselected(items=once)
            items[:] = [item for item in items if not runs_in_sqlite_pass_only(item)]
        return
    skip = pytest.mark.skip(reason="proves PostgreSQL locking; runs in the PostgreSQL pass")
    for item in items:
        if item.get_closest_marker("postgresql_only"):
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth_service, "PASSWORD_METHOD", "pbkdf2:sha256:1")
        auth_service._dummy_hash.cache_clear()
        yield
    auth_service._dummy_hash.cache_clear()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if DATABASE == "sqlite":
        # In memory where the system offers it: SQLite syncs the file to disk at each checkpoint, and a checkpoint
        # runs whenever the last connection closes, which a test that disposes of the pool does.
        memory = Path("/dev/shm")
        if memory.is_dir() and os.access(memory, os.W_OK):
            folder = Path(tempfile.mkdtemp(prefix="kxn-test-", dir=memory))
            yield f"sqlite:///{folder / 'kxn-test.sqlite3'}"
            shutil.rmtree(folder, ignore_errors=True)
        else:
            yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'kxn-test.sqlite3'}"
        return
    if DATABASE != "postgresql":
        raise pytest.UsageError("KXN_TEST_DATABASE must be sqlite or postgresql")
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"kxn_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as error:
        admin.dispose()
        message = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {error.orig}"
        if IN_CI:
            pytest.exit(message, returncode=3)
        pytest.skip(message)
    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def base_config(database_url: str, instance_path: str) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "BASE_URL": "https://kxn.test",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": 9,
        "MAIL_SUPPRESS_SEND": False,
        "MAIL_DEFAULT_SENDER": "Knowledge Exchange Network <meetings@kxn.test>",
        "CALENDAR_ADDRESS": "calendar@kxn.test",
        "MAIL_TIMEOUT": 5.0,
        "OUTBOX_RETRY_BASE_SECONDS": 0,
        "FEED_VERSION_SECONDS": 0,
        "PUBLIC_PAGE_SECONDS": 0,
        "INSIGHTS_SECONDS": 0,
        "WTF_CSRF_ENABLED": False,
        "LOGIN_RATE_LIMIT": 1000,
        "INSTANCE_PATH": instance_path,
    }


@pytest.fixture(scope="session")
def migrated(database_url, tmp_path_factory):
    """Run the real migrations once for the whole run."""
    app = create_app(base_config(database_url, str(tmp_path_factory.mktemp("instance"))))
    with app.app_context():
        schema.upgrade()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        db.engine.dispose()
    return tables


def _empty_tables(tables: list[str]) -> None:
    """DELETE rather than TRUNCATE: for the handful of rows a test leaves it is several times faster."""
    with db.engine.begin() as conn:
        for table in tables:
            conn.exec_driver_sql(f"DELETE FROM {table}")


@pytest.fixture
def app_config(request, database_url, tmp_path):
    """The configuration of this test's app; marks and other fixtures may change it before `app` is built."""
    config = base_config(database_url, str(tmp_path / "instance"))
    marker = request.node.get_closest_marker("app_config")
    if marker:
        config.update(marker.kwargs)
    return config


class SharedTemplateCode(BytecodeCache):
    """Compiled templates kept for every app of this process. Each test builds its own app, whose Jinja environment
    would otherwise parse and compile each template it renders again; the key holds the source's checksum."""

    def __init__(self) -> None:
        self.code: dict[tuple[str, str], CodeType | None] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        bucket.code = self.code.get((bucket.key, bucket.checksum))

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.code[(bucket.key, bucket.checksum)] = bucket.code


class SharedBuilderRule(Rule):
    """Werkzeug parses every route of every app and writes and compiles two URL-builder functions for it. Both
    depend only on the route's text, defaults and converters, which are the same classes in every app, and the
    builders take the rule as their first argument, so the apps of this process share them."""

    builders: ClassVar[dict[tuple, Callable]] = {}
    parsed: ClassVar[dict[tuple, tuple]] = {}

    def _defaults_key(self) -> str:
        return repr(sorted((self.defaults or {}).items()))

    def compile(self) -> None:
        assert self.map is not None
        key = (self.rule, self.subdomain, self.host, self.merge_slashes, self.map.host_matching, self._defaults_key())
        if (known := self.parsed.get(key)) is None:
            super().compile()
            self.parsed[key] = (tuple(self._parts), tuple(self._trace), dict(self._converters), set(self.arguments))
            return
        parts, trace, converters, arguments = known
        self._parts, self._trace, self._converters, self.arguments = list(parts), list(trace), converters, arguments
        self._build = self._compile_builder(False).__get__(self, None)
        self._build_unknown = self._compile_builder(True).__get__(self, None)

    def _compile_builder(self, append_unknown: bool = True):
        key = (self.rule, tuple(self._trace), self._defaults_key(), append_unknown)
        builder = self.builders.get(key)
        if builder is None:
            builder = self.builders[key] = super()._compile_builder(append_unknown)
        return builder


TEMPLATE_CODE = SharedTemplateCode()


@pytest.fixture(scope="session", autouse=True)
def shared_url_builders():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Flask, "url_rule_class", SharedBuilderRule)
        yield


@pytest.fixture(scope="session", autouse=True)
def shared_engines():
    """One engine per database and set of options for the apps of this process. A new engine would start with
    an empty cache of compiled SQL and ask the database about itself again. Its pooled connections are kept from
    test to test too: a new PostgreSQL connection costs a server process, and opening one per test was a fifth of
    the PostgreSQL pass. A test that leaves a connection checked out ends with the pool disposed of."""
    engines: dict[str, sa.Engine] = {}
    make_engine = db._make_engine

    def shared(bind_key, options, app):
        key = repr(sorted(options.items(), key=str))
        if key not in engines:
            engines[key] = make_engine(bind_key, options, app)
        return engines[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(db, "_make_engine", shared)
        yield
    for engine in engines.values():
        engine.dispose()


@pytest.fixture
def app(request, app_config, migrated):
    for name in ("smtp_server", "live_server_address"):  # they change app_config, so they come first
        if name in request.fixturenames:
            request.getfixturevalue(name)
    app = create_app(app_config)
    app.jinja_env.bytecode_cache = TEMPLATE_CODE
    app.test_client_class = FreshGlobalsClient
    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables(migrated)
        # A connection some thread of this test kept: start the next one afresh. A pool of the test's own size is
        # not kept for the others.
        if db.engine.pool.checkedout() or "SQLALCHEMY_ENGINE_OPTIONS" in app_config:
            db.engine.dispose()


class FreshGlobalsClient(FlaskClient):
    """Requests run inside the test's app context (sharing its db.session), but each starts with an empty `g`
    as in production: Flask-Login caches the signed-in user there, and a stale one hides sign-in and sign-out."""

    def open(self, *args, **kwargs):
        if has_app_context():
            vars(g._get_current_object()).clear()
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(autouse=True)
def no_unexpected_smtp(request, monkeypatch):
    """Fail any test that opens an SMTP connection without asking for the `smtp_server` fixture."""
    if "smtp_server" in request.fixturenames or request.node.get_closest_marker("allow_smtp"):
        return
    real_connect = smtplib.SMTP.connect

    def guarded_connect(self, host="localhost", port=0, source_address=None):
        pytest.fail(f"unexpected SMTP connection to {host}:{port}: use the smtp_server fixture", pytrace=False)
        return real_connect(self, host, port, source_address)

    monkeypatch.setattr(smtplib.SMTP, "connect", guarded_connect)


@pytest.fixture
def smtp_server(app_config):
    """A real SMTP server on 127.0.0.1. The app under test is pointed at it."""
    server = SmtpServer()
    server.start()
    app_config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port)
    yield server
    server.stop()


_counter = itertools.count(1)


@pytest.fixture
def make_member(app):
    def make(**values) -> Member:
        n = next(_counter)
        values.setdefault("name", f"Member {n}")
        values.setdefault("email", f"member{n}@example.org")
        values.setdefault("organisation", "Thames Valley Police")
        member = Member(**values)
        db.session.add(member)
        db.session.commit()
        return member

    return make


@pytest.fixture
def organiser(make_member):
    return make_member(
        name="Olive Organiser", email="olive@example.org", is_organiser=True, organisation="The Police Foundation"
    )


@pytest.fixture
def member(make_member):
    return make_member(name="Sam Member", email="sam@example.org", organisation="Lancashire VRU")


@pytest.fixture
def make_meeting(app):
    def make(**values) -> Meeting:
        n = next(_counter)
        start = values.pop("start", dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=30))
        values.setdefault("title", f"Meeting {n}")
        values.setdefault("slug", f"meeting-{n}")
        values.setdefault("starts_at", start)
        values.setdefault("ends_at", start + dt.timedelta(hours=2))
        values.setdefault("timezone", "Europe/London")
        values.setdefault("join_url", "https://meet.example.org/kxn")
        values.setdefault("status", MeetingStatus.SCHEDULED)
        values.setdefault("visibility", Visibility.PUBLIC)
        meeting = Meeting(**values)
        db.session.add(meeting)
        db.session.commit()
        return meeting

    return make


@pytest.fixture
def sign_in(app):
    """Sign a member in on a test client through a real server-side session."""

    def do(client, member: Member) -> None:
        session = auth_service.start_session(member)
        db.session.commit()
        with client.session_transaction() as cookie:
            cookie["_user_id"] = session.id
            cookie["_fresh"] = True

    return do


@pytest.fixture
def organiser_client(app, sign_in, organiser):
    """A test client signed in as the organiser; the plain `client` stays anonymous."""
    signed_in = app.test_client()
    sign_in(signed_in, organiser)
    return signed_in


@pytest.fixture
def member_client(app, sign_in, member):
    """A test client signed in as an ordinary member."""
    signed_in = app.test_client()
    sign_in(signed_in, member)
    return signed_in
