"""Recording each message the server accepted as sent, the moment it is accepted."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import ColumnElement
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from ..database import SQLITE_SYNCHRONOUS
from ..extensions import db
from ..models import OutboxMessage, OutboxStatus, utcnow

log = logging.getLogger(__name__)


def _bind(column: ColumnElement, dialect: Dialect) -> Callable:
    """What the column's type makes of a value for this database, as a statement of the ORM binds it: the dialect's
    own form of the type (SQLite's DATETIME writes text), not the generic one the column names."""
    return column.type.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)


class _SentLog:
    """Records each message the server accepts as sent, at once and before anything more is said to the server. A
    worker killed at any moment leaves pending at most the message whose verdict it had not yet read, to be sent
    again once its lease ends: delivery is at least once, never lost.

    One UPDATE per message, in autocommit on a database connection of its own, straight through the driver: a pass
    records every message it sends, and SQLAlchemy's statement handling would cost several times the UPDATE itself.
    The values are converted by the columns' own types, so they are stored exactly as the ORM stores them."""

    def __init__(self) -> None:
        self.connection: PoolProxiedConnection | None = None  # the pool's DBAPI connection, while a pass records
        self.sql = ""
        self.sent_value = self.pending_value = None
        self.stored_time: Callable = lambda value: value
        self.driver_error: type[Exception] = Exception
        self.postgresql = False

    def record(self, message_id: int) -> None:
        if self.connection is None:
            self._open()
        self._run(
            self.sql,
            {
                "id": message_id,
                "now": self.stored_time(utcnow()),
                "sent": self.sent_value,
                "pending": self.pending_value,
            },
        )

    def _open(self) -> None:
        dialect = db.engine.dialect
        self.driver_error = dialect.loaded_dbapi.Error
        self.postgresql = dialect.name == "postgresql"
        columns = OutboxMessage.__table__.c
        status = _bind(columns.status, dialect)
        self.sent_value, self.pending_value = status(OutboxStatus.SENT), status(OutboxStatus.PENDING)
        self.stored_time = _bind(columns.sent_at, dialect)
        mark = "%({})s".format if dialect.paramstyle == "pyformat" else ":{}".format
        # Not limited to our lease: the message did go, so no other worker should send it again.
        self.sql = (
            f"UPDATE {OutboxMessage.__tablename__} SET status = {mark('sent')}, sent_at = {mark('now')}, "
            f"locked_until = NULL, locked_by = NULL WHERE id = {mark('id')} AND status = {mark('pending')}"
        )
        self.connection = connection = db.engine.raw_connection()
        if self.postgresql:
            connection.rollback()
            connection.driver_connection.autocommit = True  # type: ignore[union-attr]
            # Commits that do not wait for the disk: a killed worker loses nothing by it, and a database crash that
            # lost a record would only send that message again.
            self._run("SET synchronous_commit TO off")
        else:
            # Autocommit already (database.py begins transactions itself); the same bargain as on PostgreSQL:
            # a killed worker loses no record, and only a machine crash could lose one, which sends it again.
            self._run("PRAGMA synchronous=OFF")

    def _run(self, sql: str, parameters: dict | None = None) -> None:
        """Raises the driver's errors as SQLAlchemy's (a worker outlives a database restart by catching those); the
        connection is then given up, and the next record opens a fresh one."""
        connection = self.connection
        assert connection is not None
        try:
            cursor = connection.cursor()
            try:
                if parameters is None:
                    cursor.execute(sql)
                else:
                    cursor.execute(sql, parameters)
            finally:
                cursor.close()
        except self.driver_error as error:
            self.connection = None
            connection.invalidate()
            raise DBAPIError.instance(sql, parameters, error, self.driver_error) from error

    def close(self) -> None:
        if self.connection is None:
            return
        try:
            if self.postgresql:  # the pool's next user gets durable commits, in transactions
                self._run("RESET synchronous_commit")
                self.connection.driver_connection.autocommit = False  # type: ignore[union-attr]
            else:
                self._run(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
        except DBAPIError:
            log.warning("outbox: could not reset the connection that recorded sent messages; it is discarded")
        finally:
            if self.connection is not None:
                self.connection.close()
                self.connection = None
