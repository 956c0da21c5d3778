"""Engine set-up per database: which transactions take SQLite's write lock, and what a lost connection means.

SQLite lets many readers and one writer work at once (WAL). A transaction that reads and then writes must hold
the write lock from its BEGIN: one that tries to take it after reading is refused at once, whatever the busy
timeout, if another writer got there first. So every transaction of a unit of work that may write starts with
BEGIN IMMEDIATE and waits its turn (busy timeout); read-only ones start with a plain BEGIN and never wait.
Which units may write is decided in one place, writes_expected(): web requests by method (GET, HEAD and OPTIONS
only read), `flask kxn` commands and the outbox worker by declaring `writing()`.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

from flask import Flask, has_request_context, request
from sqlalchemy import ColumnElement, CursorResult, Executable, Insert, bindparam, event, insert, select
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from werkzeug.exceptions import HTTPException

from .extensions import db

log = logging.getLogger(__name__)

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BUSY_TIMEOUT_MS = 15_000  # a writer waits this long for the one before it, under gunicorn's 30 s worker timeout
WROTE = "kxn_holds_write_lock"
READ = "kxn_has_read"
# Statements that take no write lock (savepoints are bookkeeping inside the transaction).
_NOT_WRITES = frozenset({"SELECT", "PRAGMA", "BEGIN", "SAVEPO", "RELEAS", "ROLLBA"})

_writing: ContextVar[bool | None] = ContextVar("kxn_writing", default=None)
# Apps may share an engine (the tests build an app per test on one engine); its listeners are added once.
_configured_engines: weakref.WeakSet = weakref.WeakSet()
# Each SQLite file's queue of writers (None for a database in memory), by engine.
_QUEUES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def init_app(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    if engine not in _configured_engines:
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine)
        else:
            _ping_before_work_that_cannot_run_again(engine)
            if engine.dialect.driver == "psycopg":
                _describe_cheaply(engine)
        _configured_engines.add(engine)
    # Runs before Flask-SQLAlchemy's own teardown (teardowns run last-registered first), which would fail on a
    # connection the database has closed.
    app.teardown_appcontext(lambda _error: discard_session())


def writes_expected() -> bool:
    """Whether the current unit of work may write: as declared by writing(), else by the request's method."""
    declared = _writing.get()
    if declared is not None:
        return declared
    return has_request_context() and request.method not in READ_ONLY_METHODS


@contextmanager
def writing(expected: bool = True) -> Iterator[None]:
    """Declare that transactions begun inside may write (CLI commands, the outbox worker)."""
    token = _writing.set(expected)
    try:
        yield
    finally:
        _writing.reset(token)


def reads_first(view: Callable[..., Any]) -> Callable[..., Any]:
    """For a view whose every write goes through a service that calls begin_write() before it reads what it will
    change (lock_meeting() does): the reads before that run without SQLite's write lock, alongside other requests,
    and the request queues for the lock only for its own short write."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with writing(False):
            return view(*args, **kwargs)

    return wrapped


def reads_before_lock() -> bool:
    """Whether the current unit of work declared that its reads come before its writes (reads_first) and has not yet
    begun writing: what it reads now is read without SQLite's write lock and before any row lock, and whatever of it
    is to be changed must be checked again under the lock."""
    if _writing.get() is not False:
        return False
    session = db.session()
    return not (session.in_transaction() and session.connection().info.get(WROTE))


def reads_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """For a view that only reads on GET and HEAD: on PostgreSQL at READ COMMITTED its statements run outside a
    transaction (the driver's autocommit), which saves a request the round trips of BEGIN and ROLLBACK and changes
    nothing it sees: at that level each statement of a transaction sees the latest commits anyway. The connection
    goes back when the view ends, with what the view loaded left as it is; anything the view changed is undone and
    logged, as a GET's changes always were."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        session = db.session()
        if (
            request.method not in READ_ONLY_METHODS
            or _writing.get() is not None
            or session.in_transaction()
            or session.new
            or session.dirty
            or session.deleted
            or not _reads_committed(session.get_bind().dialect)
        ):
            return view(*args, **kwargs)
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        try:
            with session.no_autoflush:  # a change the view makes stays pending, to be undone, not saved at once
                response = view(*args, **kwargs)
        except HTTPException:
            _give_back(session)
            raise
        except BaseException:
            roll_back()
            raise
        _give_back(session)
        return response

    return wrapped


def _reads_committed(dialect: Any) -> bool:
    """PostgreSQL at READ COMMITTED, as the first connection of the process found it (until then: not known)."""
    return dialect.name == "postgresql" and getattr(dialect, "default_isolation_level", None) == "READ COMMITTED"


def _give_back(session: Any) -> None:
    if session.new or session.dirty or session.deleted:
        log.warning("%s %s changed what it read; the change is undone", request.method, request.path)
        roll_back()
        return
    _end_keeping_loaded(session)


def _end_keeping_loaded(session: Any) -> None:
    """End a transaction that has changed nothing, leaving what it loaded as it is: as loaded on PostgreSQL at READ
    COMMITTED, where each statement sees the latest commits. A rollback would expire it all, to be read again."""
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


# WAL with NORMAL: a commit survives the app being killed, and only a power cut can lose the last few.
SQLITE_SYNCHRONOUS = "NORMAL"


def _configure_sqlite(engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Take over transaction control from pysqlite so BEGIN IMMEDIATE is possible.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
        cursor.close()

    queue = _WriterQueue(engine.url.database) if engine.url.database not in (None, "", ":memory:") else None

    _QUEUES[engine] = queue

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = writes_expected()
        conn.info[WROTE] = immediate
        conn.info[READ] = False
        _begin(conn, immediate, queue)

    if queue is not None:
        dialect = engine.dialect
        for name in ("do_commit", "do_rollback", "do_close"):
            setattr(dialect, name, queue.leaving_after(getattr(dialect, name)))

    @event.listens_for(engine, "before_cursor_execute")
    def _note_writes(conn, _cursor, statement, _parameters, _context, _executemany):
        if conn.info.get(WROTE):
            return
        verb = statement.lstrip()[:6].upper().rstrip()
        if verb == "SELECT":
            conn.info[READ] = True
        elif verb not in _NOT_WRITES:
            if conn.info.get(READ) and has_request_context():
                log.warning(
                    "%s %s writes after reading in a transaction begun without the write lock, which SQLite "
                    "refuses while another writer works: call begin_write() before the reads",
                    request.method,
                    request.path,
                )
            conn.info[WROTE] = True


def _begin(conn, immediate: bool, queue: _WriterQueue | None) -> None:
    """BEGIN on SQLite; IMMEDIATE, taking the write lock, once this connection's turn among the writers has come."""
    if immediate and queue is not None and not queue.enter(conn.connection.dbapi_connection):
        # Waited the whole busy timeout for the writers ahead: ask SQLite once, without its own wait on top.
        conn.exec_driver_sql("PRAGMA busy_timeout=0")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
    except BaseException:
        if queue is not None:  # no transaction began: the turn goes on at once, not when the connection is put back
            queue.leave(conn.connection.dbapi_connection)
        raise


def _write_from_here(conn) -> None:
    """End the transaction of `conn`, which has only read, and begin one that holds the write lock on the same
    connection, as the engine's begin would have: the session keeps its transaction, its connection and what it
    loaded, without the round of a commit, a connection put back and another taken."""
    conn.connection.dbapi_connection.commit()
    conn.info[WROTE] = True
    conn.info[READ] = False
    _begin(conn, True, _QUEUES.get(conn.engine))


class _WriterQueue:
    """Writers to one SQLite file take turns here, each woken as soon as the one before it has committed.

    SQLite's own busy wait polls its lock with sleeps that grow to 100 ms, so under many writers the lock sits free
    while they sleep (the RSVP benchmark's 95th percentile was 271 ms to 1.3 s). Threads of one process queue on a
    lock; processes on a record lock of byte 0 of the file `<database>-writers`, tried every half millisecond. A
    process waiting there also holds byte 1 shared, and a process that ends its turn while another waits lets two
    polls go by before it tries for the next, so one busy process does not keep the others out. A connection keeps
    its turn from BEGIN IMMEDIATE until its COMMIT or ROLLBACK. Writers that do not come through here (another
    program) are still kept apart by SQLite itself."""

    POLL_SECONDS = 0.0005

    def __init__(self, database: str) -> None:
        self.path = f"{database}-writers"
        self.lock = threading.Lock()
        self.holder: object | None = None
        self.fd: int | None = None
        self.pid = 0
        self.yield_until = 0.0

    def _file(self) -> int:
        if self.fd is None or self.pid != os.getpid():  # record locks are a process's own: a forked one opens anew
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self.pid = os.getpid()
        return self.fd

    def _take(self, fd: int, deadline: float) -> bool:
        pause = self.yield_until - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
            return True
        except OSError:
            pass
        fcntl.lockf(fd, fcntl.LOCK_SH, 1, 1)
        try:
            while time.monotonic() < deadline:
                time.sleep(self.POLL_SECONDS)
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
                    return True
                except OSError:
                    pass
            return False
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, 1)

    def enter(self, connection: object) -> bool:
        """Wait for this connection's turn; False when it did not come within the busy timeout."""
        if self.holder is connection:
            return True
        timeout = BUSY_TIMEOUT_MS / 1000
        deadline = time.monotonic() + timeout
        if not self.lock.acquire(timeout=timeout):
            return False
        try:
            taken = self._take(self._file(), deadline)
        except BaseException:
            self.lock.release()
            raise
        if not taken:
            self.lock.release()
            return False
        self.holder = connection
        return True

    def leave(self, connection: object) -> None:
        if self.holder is not connection:
            return
        self.holder = None
        try:
            fd = self._file()
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, 0)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 1)
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, 1)
            except OSError:  # another process waits: let it have the next turn
                self.yield_until = time.monotonic() + 2 * self.POLL_SECONDS
        finally:
            self.lock.release()

    def leaving_after(self, method: Any) -> Any:
        """`method(dbapi_connection)` (the dialect's commit, rollback or close), then the connection's turn ends."""

        def wrapped(connection: Any) -> Any:
            try:
                return method(connection)
            finally:
                # SQLAlchemy passes the pool's proxy of the connection; the turn was taken for the connection itself.
                self.leave(getattr(connection, "dbapi_connection", connection))

        return wrapped


def is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def begin_write() -> None:
    """Make sure the current transaction holds the write lock before reading what will be changed.

    SQLite: inside a unit of work that writes this is already so; elsewhere (a GET that records a sign-in attempt,
    a script, a view that reads first) a transaction that has only read ends and one that holds the write lock
    begins, on the same connection (BEGIN IMMEDIATE). What the first one loaded stays loaded, as on PostgreSQL:
    whatever is to be changed is read again, or checked, under the lock.
    PostgreSQL: nothing here; services lock the rows they change with SELECT ... FOR UPDATE.
    """
    session = db.session
    if session.get_bind().dialect.name != "sqlite":
        return
    if session.new or session.dirty or session.deleted:
        session.flush()
        return
    if session().in_transaction():
        connection = session.connection()
        if not connection.info.get(WROTE):
            _write_from_here(connection)
        return  # this transaction holds SQLite's write lock: keep its work
    with writing():
        session.connection()


# Connections the database ended ----------------------------------------------------------------------


def _ping_before_work_that_cannot_run_again(engine) -> None:
    """A pooled connection is checked with a round trip before it is given to work that could not simply run again
    if the database had ended it: a form, a command, the outbox worker; a dead one is replaced. A page (GET, HEAD)
    skips the round trip: one that loses its connection runs again on a fresh one (views.RetryReads), and the lost
    connection has the pool replace every connection older than it. Not on SQLite, whose connections no server can
    end."""

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, _record, _proxy):
        if has_request_context() and request.method in READ_ONLY_METHODS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError(str(error)) from error


def _describe_cheaply(engine) -> None:
    """Every connection's cursors describe their results as kxn_meetings.postgresql.Cursor does."""
    from .postgresql import use_cheaper_description

    @event.listens_for(engine, "connect")
    def _connected(dbapi_connection, _record):
        use_cheaper_description(dbapi_connection)


def is_disconnect(error: BaseException) -> bool:
    """The database ended this connection (restart, failover, an administrator): a fresh one may well work."""
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def is_unavailable(error: BaseException) -> bool:
    """The database is gone, cannot be reached, or (SQLite) stayed busy past the busy timeout: worth trying again
    in a moment, and no fault of the request."""
    if is_disconnect(error):
        return True
    if not isinstance(error, OperationalError):
        return False
    original = error.orig
    # Looked up, not imported: a process on PostgreSQL never loads sqlite3 (about 1 MiB with its library).
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(original, sqlite3.OperationalError):
        code = getattr(original, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
        return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    # psycopg: a connection that could not be made or was lost has no SQLSTATE, or class 08 (connection
    # exception) or 57P (operator intervention: shutdown, admin termination, cannot connect now).
    sqlstate = getattr(original, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(("08", "57P"))


def discard_session() -> None:
    """End the session and give its connection back, whatever state the connection is in: rolling back on a
    connection the database has already closed fails, and that must not fail a request's teardown or a worker."""
    try:
        db.session.remove()
    except DBAPIError as error:
        log.warning("database connection lost at the end of a transaction: %s", error.orig)
        try:
            db.session.remove()  # the connection is invalidated by now, so this only forgets it
        except DBAPIError:
            db.session.registry.clear()


def roll_back() -> None:
    """Undo the unit of work, whatever state its connection is in: one the database has closed is put down."""
    try:
        db.session.rollback()
    except DBAPIError:
        discard_session()


def insert_where(model: Any, values: dict[str, Any], condition: ColumnElement[bool]) -> list[int]:
    """Add one row of `values` to `model`'s table only where `condition` holds (INSERT ... SELECT ... WHERE), and
    return its id, or nothing when the condition does not hold. The same statement runs either way, so how long
    it takes does not tell which."""
    table = model.__table__
    binds = [bindparam(name, value, type_=table.c[name].type, unique=True) for name, value in values.items()]
    return list(db.session.scalars(_insert_one_where(table, list(values), binds, condition)))


def insert_where_statement(model: Any, names: Sequence[str], condition: ColumnElement[bool]) -> Insert:
    """insert_where() as a statement to build once and run many times, each row's values given as parameters named
    after its columns."""
    table = model.__table__
    binds = [bindparam(name, type_=table.c[name].type) for name in names]
    return _insert_one_where(table, list(names), binds, condition)


def _insert_one_where(table: Any, names: list[str], binds: list[Any], condition: ColumnElement[bool]) -> Insert:
    return insert(table).from_select(names, select(*binds).where(condition)).returning(table.c.id)


def changed_rows(statement: Executable) -> int:
    """Run an UPDATE or DELETE in the session; how many rows it changed."""
    return cast(CursorResult[Any], db.session.execute(statement)).rowcount
