"""Prebuilt Core statements run on the DB-API cursor: the hot paths' dangerous layer.

Why it exists: on one-value calls SQLAlchemy's execute path (`_execute_clauseelement`,
`_init_compiled`, parameter processing, events, result wrapping) cost 50-100 us per
statement, against 4-8 us of SQLite's own work for the same statement (docs/performance.md).
The statements stay defined in Core next to the models (one source of truth); each is
compiled ONCE per dialect to SQL text, and `Statement`'s methods (`rows`, `scalars`,
`rowcount`, `many`) execute that text on the DB-API cursor of the caller's own
`Connection`, inside its transaction.

What the caller gives up, and so why the name warns: no type processing (only columns whose
driver values are already Python's: int, float, str, bytes, None), no expanding IN, no
execution events but the cursor-level ones (`before_`/`after_cursor_execute`, called
without an execution context and unable to rewrite the statement), no ORM.  What is kept:
DB-API errors come out as SQLAlchemy's own classes (`IntegrityError`, `OperationalError`,
... with parameters hidden), so retry and 503 paths stay as they were, and a lost
connection is invalidated like SQLAlchemy does it.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["Statement"]


class Statement:
    """One Core statement, compiled lazily once per dialect name."""

    __slots__ = ("_by_dialect", "_columns", "_stmt")

    def __init__(self, stmt: ClauseElement, columns: Sequence[str] | None = None) -> None:
        """`columns`: for an INSERT without `.values()`, the bind names it takes."""
        self._stmt = stmt
        self._columns = list(columns) if columns is not None else None
        self._by_dialect: dict[str, Prepared] = {}

    def _on(self, conn: Connection) -> Prepared:
        prepared = self._by_dialect.get(conn.dialect.name)
        if prepared is None:
            prepared = Prepared(self._stmt, conn.dialect, self._columns)
            self._by_dialect[conn.dialect.name] = prepared
        return prepared

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Every row, as named tuples (attribute access like SQLAlchemy's rows)."""
        prepared = self._on(conn)
        make = prepared.row._make  # type: ignore[union-attr]
        return [make(r) for r in _fetch(prepared.run(conn, params))]

    def scalars(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """The first column of every row."""
        return [r[0] for r in _fetch(self._on(conn).run(conn, params))]

    def rowcount(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Execute a statement without rows; how many rows it touched."""
        cursor = self._on(conn).run(conn, params)
        count: int = cursor.rowcount
        cursor.close()
        return count

    def many(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        """executemany (no RETURNING)."""
        self._on(conn).run_many(conn, rows)


class Prepared:
    """SQL text and parameter layout of a statement for one dialect."""

    __slots__ = ("_defaults", "_order", "row", "sql")

    def __init__(self, stmt: ClauseElement, dialect: Dialect, columns: list[str] | None) -> None:
        compiled = cast(SQLCompiler, stmt.compile(dialect=dialect, column_keys=columns))
        self.sql = compiled.string
        # Literal binds SQLAlchemy made up itself (LIMIT 1 -> :param_1) keep their values.
        self._defaults = {
            compiled.bind_names[bind]: bind.effective_value
            for bind in compiled.binds.values()
            if not bind.required
        }
        self._order = tuple(compiled.positiontup or ()) if compiled.positional else None
        names = [c.key for c in getattr(stmt, "selected_columns", ())]
        names = names or [c.key for c in getattr(compiled, "returning", None) or ()]
        self.row = namedtuple("Row", names) if names else None

    def _params(self, params: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        if self._order is None:
            return {**self._defaults, **params}
        merged = {**self._defaults, **params}
        return tuple(merged[name] for name in self._order)

    def run(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        return self._execute(conn, self._params(params), many=False)

    def run_many(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        self._execute(conn, [self._params(row) for row in rows], many=True).close()

    def _execute(self, conn: Connection, params: Any, *, many: bool) -> Any:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        # Cursor-level listeners (tracing, statement counting in the tests) still see it;
        # the same cheap flags SQLAlchemy checks first (a dispatch lookup costs ~3 us).
        events = conn._has_events or conn.engine._has_events
        dispatch = conn.dispatch
        if events and dispatch.before_cursor_execute:
            dispatch.before_cursor_execute(conn, cursor, self.sql, params, None, many)
        try:
            if many:
                cursor.executemany(self.sql, params)
            else:
                cursor.execute(self.sql, params)
        except conn.dialect.loaded_dbapi.Error as error:
            cursor.close()
            raise _mapped(conn, error, self.sql, cursor) from error
        if events and dispatch.after_cursor_execute:
            dispatch.after_cursor_execute(conn, cursor, self.sql, params, None, many)
        return cursor


def _fetch(cursor: Any) -> list[Any]:
    try:
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _mapped(conn: Connection, error: Exception, sql: str, cursor: Any) -> exc.StatementError:
    """The SQLAlchemy exception SQLAlchemy itself would raise (parameters never shown)."""
    dialect = conn.dialect
    raw = conn.connection.dbapi_connection
    lost = dialect.is_disconnect(error, raw, cursor)  # type: ignore[arg-type]
    if lost:
        conn.invalidate(error)
    return exc.DBAPIError.instance(
        sql,
        None,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=dialect,
    )
