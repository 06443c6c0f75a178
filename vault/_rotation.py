"""KEK rotation without downtime: add a KEK version, re-wrap every live data key under it.

Online and in batches of short transactions: a data key is re-wrapped with a conditional
UPDATE (still live, still under the old version), so a shred or another rotation running
meanwhile wins and is never undone; old versions stay loaded, so values whose epoch has
not been re-wrapped yet stay readable.  The cached epoch keys are keyed by the wrapped key
as read, so a re-wrap shows as a cache miss and the tokenize fast path falls back once.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from coatcheck.vault._chain import Entry
from coatcheck.vault._keks import Keks
from coatcheck.vault._statements import CONV
from coatcheck.vault._storage import Storage
from coatcheck.vault.outcomes import Outcome

__all__ = ["Rotator"]


class Rotator:
    """rotate over one `Storage` and its KEKs."""

    __slots__ = ("_keks", "_storage")

    def __init__(self, storage: Storage, keks: Keks) -> None:
        self._storage = storage
        self._keks = keks

    def rotate(self, actor: str, batch: int) -> int:
        storage = self._storage
        version = storage.retry("rotate", self._keks.add_version)
        self._keks.sync()
        rewrapped = 0
        while True:
            with storage.engine.begin() as conn:
                done = self._rewrap_batch(conn, version, batch)
            rewrapped += done
            if done == 0:
                break
        with storage.engine.begin() as conn:
            purpose = f"kek v{version}, {rewrapped} data keys re-wrapped"
            ok = Outcome.OK.audit_text()
            entry = Entry(storage.clock(), storage.tenant, actor, "rotate", ok, purpose=purpose)
            storage.chain.append(conn, [entry])
        return version

    def _rewrap_batch(self, conn: Connection, version: int, batch: int) -> int:
        rows = conn.execute(
            select(
                CONV.c.id,
                CONV.c.conversation_id,
                CONV.c.epoch,
                CONV.c.kek_version,
                CONV.c.wrapped_dek,
            )
            .where(
                CONV.c.tenant == self._storage.tenant,
                CONV.c.wrapped_dek.is_not(None),
                CONV.c.kek_version < version,
            )
            .order_by(CONV.c.id)
            .limit(batch)
        ).all()
        for row in rows:
            dek = self._keks.unwrap(
                conn, row.wrapped_dek, row.conversation_id, row.epoch, row.kek_version
            )
            rewrapped = self._keks.wrap(dek, row.conversation_id, row.epoch, version)
            conn.execute(
                update(CONV)
                .where(
                    CONV.c.id == row.id,
                    CONV.c.kek_version == row.kek_version,
                    CONV.c.wrapped_dek.is_not(None),
                )
                .values(wrapped_dek=rewrapped, kek_version=version)
            )
        return len(rows)
