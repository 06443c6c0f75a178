"""Where the sealed service keys live: the `key_objects` table (a `SealedKeyStore`).

`ServiceKeys` (keys/service_keys.py) makes each key once per database and unseals it once
per worker; this store gives it the table: `add` is `INSERT ... ON CONFLICT DO NOTHING`
then a read, so of two workers making the same key at once the first insert wins and
both use it.  Bound to a connection (`within`), it works inside the caller's transaction
(the vault makes the audit key in the same transaction that switches the chain to MACs).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from coatcheck.vault.keys.provider import root_of
from coatcheck.vault.models import KeyObject

__all__ = ["DbKeyStore"]

_OBJECTS: Table = KeyObject.__table__  # type: ignore[assignment]


class DbKeyStore:
    """A `SealedKeyStore` over `key_objects`, on an engine or inside one connection."""

    def __init__(
        self, engine: Engine, clock: Callable[[], float], conn: Connection | None = None
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._conn = conn

    def within(self, conn: Connection) -> DbKeyStore:
        """The same store, working in `conn`'s transaction."""
        return DbKeyStore(self._engine, self._clock, conn)

    def _run(self, work: Callable[[Connection], bytes | None]) -> bytes | None:
        if self._conn is not None:
            return work(self._conn)
        with self._engine.begin() as conn:
            return work(conn)

    def get(self, name: str) -> bytes | None:
        def read(conn: Connection) -> bytes | None:
            blob = conn.execute(select(_OBJECTS.c.blob).where(_OBJECTS.c.name == name)).scalar()
            return None if blob is None else bytes(blob)

        return self._run(read)

    def add(self, name: str, blob: bytes) -> bytes:
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        row = {"name": name, "blob": blob, "root_id": root_of(blob), "updated_at": self._clock()}

        def insert(conn: Connection) -> bytes | None:
            conn.execute(dialect.insert(_OBJECTS).values(**row).on_conflict_do_nothing())
            stored = conn.execute(select(_OBJECTS.c.blob).where(_OBJECTS.c.name == name))
            return bytes(stored.scalar_one())

        stored = self._run(insert)
        assert stored is not None
        return stored
