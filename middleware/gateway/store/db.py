"""The gateway's engines and its one way to open a transaction or a read.

Transactions are the vault's `Transaction` handle (`coatcheck.vault.transaction`), the
same the vault hands the gateway inside `tokenize_many(then=...)`: the gateway's statements
run the same way in its own transactions and in the vault's, and the vault's methods that
join a caller's transaction (`end`, `expire_due`, `holdings` with `tx=`) take it.

Every database failure becomes `StorageUnavailable` without the driver's message
(SQLAlchemy errors quote bound parameters, which may be user text).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import Engine, Executable, text
from sqlalchemy.exc import SQLAlchemyError

from coatcheck.middleware.gateway.errors import StorageUnavailable
from coatcheck.vault import Transaction, transaction

__all__ = ["Clock", "Db", "guarded_tx", "healthy"]

Clock = Callable[[], float]


@contextmanager
def guarded_tx(engine: Engine) -> Iterator[Transaction]:
    """A transaction on `engine` (Core, no ORM unit of work), failures as 503."""
    try:
        with transaction(engine) as tx:
            yield tx
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None


def healthy(engine: Engine) -> bool:
    """Whether the database answers a `SELECT 1` on `engine` (`GET /health`)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True


class Db:
    """The writer (transactions) and the reader (lock-free single statements), one clock."""

    def __init__(self, writer: Engine, reader: Engine, clock: Clock = time.time) -> None:
        self.writer = writer
        self.reader = reader
        self.clock = clock

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A transaction on the writer."""
        return guarded_tx(self.writer)

    def reading(self) -> AbstractContextManager[Transaction]:
        """A transaction on the reader, for a few reads that belong together (and vault
        reads joining them: `holdings(tx=)`)."""
        return guarded_tx(self.reader)

    def read(self, query: Executable) -> list[Any]:
        """Every row of one statement on the reader."""
        try:
            with self.reader.connect() as conn:
                return list(conn.execute(query).all())
        except SQLAlchemyError:
            raise StorageUnavailable("database") from None

    def scalars(self, query: Executable) -> list[Any]:
        """The first column of every row of one statement on the reader."""
        return [row[0] for row in self.read(query)]
