"""`Transaction`: the one handle on an open database transaction that leaves the vault.

Why it exists: the gateway commits its own per-message rows (history line, rate count,
conversation state) inside the vault's tokenize transaction, so a message costs one
durable commit, not two; and it ends its state row in the same transaction as the vault's
key epochs.  It used to be handed SQLAlchemy's `Connection` for that, and with it
everything: commit, rollback, savepoints, the DB-API connection, and (through the vault's
private driver module) the vault's own fast statements.  The handle keeps what those
callers need, by name:

- `dialect`: which SQL flavour to build (`sqlite`, `postgresql`);
- `execute(statement)`: a Core statement on the caller's own tables;
- `rows` / `scalars` / `rowcount` / `many`: a prebuilt `Statement` (compiled once per
  dialect, run on the DB-API cursor: vault/_driver.py), for the caller's hot statements.

Transaction boundaries stay with whoever opened it: the vault in
`Vault.tokenize_many(then=...)`, or `transaction(engine)` for a caller's own work (the
vault's methods that take `tx=` then run inside it).  The vault's modules reach the
connection through `connection_of`; nothing outside `vault/` imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.sql import Executable

from coatcheck.vault._driver import Statement

__all__ = ["Statement", "Transaction", "connection_of", "transaction"]


class Transaction:
    """An open transaction on the vault's database; opened by the vault or `transaction()`."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def __repr__(self) -> str:
        return f"Transaction(dialect={self.dialect!r})"

    @property
    def dialect(self) -> str:
        """The dialect name (`sqlite`, `postgresql`), for statements built per dialect."""
        return self._conn.dialect.name

    def execute(
        self,
        statement: Executable,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> CursorResult[Any]:
        """Run a Core statement (on the caller's own tables) in this transaction."""
        return self._conn.execute(statement, params)

    def rows(self, statement: Statement, params: Mapping[str, Any]) -> list[Any]:
        """Every row of a prebuilt statement, as named tuples."""
        return statement.rows(self._conn, params)

    def scalars(self, statement: Statement, params: Mapping[str, Any]) -> list[Any]:
        """The first column of every row of a prebuilt statement."""
        return statement.scalars(self._conn, params)

    def rowcount(self, statement: Statement, params: Mapping[str, Any]) -> int:
        """Run a prebuilt statement without rows; how many rows it touched."""
        return statement.rowcount(self._conn, params)

    def many(self, statement: Statement, rows: Iterable[Mapping[str, Any]]) -> None:
        """Run a prebuilt statement once per parameter set (executemany, no rows back)."""
        statement.many(self._conn, rows)


def connection_of(tx: Transaction) -> Connection:
    """The connection under a handle: for the vault's own modules only."""
    return tx._conn


@contextmanager
def transaction(engine: Engine) -> Iterator[Transaction]:
    """A transaction on `engine` (one on the vault's database), committed when the block
    ends and rolled back if it raises.

    `engine` may be another pool on the same database than the vault's own (the gateway's
    writer pool on PostgreSQL, its lock-free read engine for reads).
    """
    with engine.begin() as conn:
        yield Transaction(conn)
