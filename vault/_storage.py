"""What every part of the vault shares: the engine, the tenant, the clock, the audit chain.

The parts (tokens, reads, retention, rotation, KEKs) are small classes over one
`Storage`, so each sees the same engine and the same chain head guess without reaching
into the others.  Two ways to run work: `retry` (a transaction of the vault's own that
is run again when a uniqueness race rolls it back) and `within` (the caller's
`Transaction` when one is given, else a transaction of the vault's own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from coatcheck.vault._chain import Chain
from coatcheck.vault._statements import DialectStatements, for_dialect
from coatcheck.vault._transaction import Transaction, connection_of
from coatcheck.vault.errors import ConcurrencyError

__all__ = ["Storage"]

_T = TypeVar("_T")


_RACES = frozenset({"40P01", "40001"})
"""PostgreSQL's deadlock_detected and serialization_failure: the transaction lost a race."""


def _sqlstate(exc: OperationalError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


class Storage:
    """One tenant's view of one engine, with the clock and the audit chain."""

    __slots__ = (
        "chain",
        "clock",
        "engine",
        "pg",
        "retries",
        "sql",
        "tenant",
        "unsettled",
        "unvacuumed",
    )

    def __init__(
        self, engine: Engine, tenant: str, clock: Callable[[], float], retries: int
    ) -> None:
        self.engine = engine
        self.tenant = tenant
        self.clock = clock
        self.retries = retries
        self.pg = engine.dialect.name == "postgresql"
        self.sql: DialectStatements = for_dialect(engine.dialect.name)
        self.chain = Chain()
        # Shreds committed since the WAL was last checkpointed (SQLite), host-held KEK
        # records erased since `kek_buckets` was last rewritten (PostgreSQL): what
        # `Upkeep.settle` still owes the files.  Per process; the sweeper settles too.
        self.unsettled = False
        self.unvacuumed = False

    def retry(self, name: str, work: Callable[[Connection], _T]) -> _T:
        """Run `work` in a transaction; on a uniqueness race, or a deadlock PostgreSQL broke
        by rolling this transaction back, run it again."""
        for _ in range(self.retries):
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except IntegrityError:
                continue
            except OperationalError as exc:
                if _sqlstate(exc) not in _RACES:
                    raise
        raise ConcurrencyError(name)

    @contextmanager
    def within(self, tx: Transaction | None) -> Iterator[Connection]:
        """The caller's transaction (it commits), or one of the vault's own."""
        if tx is not None:
            yield connection_of(tx)
            return
        with self.engine.begin() as conn:
            yield conn
