"""Engine set-up per database, and the one helper services use to take a write lock early."""

from __future__ import annotations

from contextvars import ContextVar

from flask import Flask
from sqlalchemy import event

from .extensions import db

_immediate: ContextVar[bool] = ContextVar("kxn_sqlite_immediate", default=False)
WROTE = "kxn_holds_write_lock"


def init_app(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)


def _configure_sqlite(engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Take over transaction control from pysqlite so BEGIN IMMEDIATE is possible.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = _immediate.get()
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
        conn.info[WROTE] = immediate

    @event.listens_for(engine, "before_cursor_execute")
    def _note_writes(conn, _cursor, statement, _parameters, _context, _executemany):
        if not conn.info.get(WROTE) and statement.lstrip()[:6].upper() not in ("SELECT", "PRAGMA", "BEGIN"):
            conn.info[WROTE] = True


def is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def begin_write() -> None:
    """Start the current transaction as a writer before reading what will be changed.

    SQLite: a fresh BEGIN IMMEDIATE transaction, so concurrent writers queue instead of failing.
    PostgreSQL: nothing here; services lock the rows they change with SELECT ... FOR UPDATE.
    """
    session = db.session
    if session.get_bind().dialect.name != "sqlite":
        return
    if session.new or session.dirty or session.deleted:
        session.flush()
        return
    if session().in_transaction() and session.connection().info.get(WROTE):
        return  # this transaction has written already, so it holds SQLite's write lock: keep its work
    session.rollback()
    token = _immediate.set(True)
    try:
        session.connection()
    finally:
        _immediate.reset(token)
