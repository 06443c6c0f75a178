"""Key upkeep: move data keys to their bucket, destroy KEKs, make shreds final on disk.

Why: a shred nulls a wrapped data key, but the bytes live on in older pages, files and
copies.  Each epoch's data key is wrapped under its bucket's KEK; once every epoch of a
bucket is gone (shredded, or moved elsewhere), the KEK is destroyed and every old copy of
those wrapped keys opens nothing, as far as the provider's destroy reaches
(docs/keys.md, "The bound per provider").  One pass (`run`, every sweep):

1. epochs still under a pre-provider KEK version are re-wrapped under bucket KEKs; once
   none is left, the legacy KEK rows are deleted;
2. KEKs whose bucket ended `grace` ago (and KEKs being retired) lose their survivors:
   live epochs move to the current `live` bucket, ended epochs that keep values to the
   `kept` bucket of their deadline (`kept` forever for masked values without one);
3. such KEKs with no wrapped data key left are destroyed: (a) row locked, re-checked,
   state `destroying`, audited, committed; (b) the provider's destroy; (c) record erased,
   state `destroyed`.  A crash between (a) and (c) is finished by the next pass;
4. `settle`: SQLite: a TRUNCATE checkpoint of the WAL (secure_delete already zeroed the
   freed cells); PostgreSQL: `VACUUM (FULL) kek_buckets` after host-held records were
   erased (their dead tuples would keep the sealed KEK), with a short lock timeout.

`retire` destroys chosen KEKs now (subject erasure, `rotate`): mark them `retiring` (no
new wrap), move their survivors, destroy them.  A data key is re-wrapped with a
conditional UPDATE (still the wrapped key that was read), so a shred or another move
running meanwhile wins and is never undone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from coatcheck.vault._chain import Entry
from coatcheck.vault._keks import (
    ACTIVE,
    BUCKETS,
    DESTROYED,
    DESTROYING,
    KEPT,
    LIVE,
    RETIRING,
    BucketKek,
    KekRetired,
    Keks,
)
from coatcheck.vault._keycache import KeyCache
from coatcheck.vault._retention import shred_epochs
from coatcheck.vault._statements import CONV, VAL
from coatcheck.vault._storage import Storage
from coatcheck.vault.db import checkpoint_wal
from coatcheck.vault.errors import DecryptionError, VaultError
from coatcheck.vault.keys.chain import ProviderChain
from coatcheck.vault.keys.errors import KeyDestroyed
from coatcheck.vault.keys.provider import KeyProvider
from coatcheck.vault.lifecycle import MASKED, RETAINED, UpkeepSummary
from coatcheck.vault.outcomes import Outcome

__all__ = ["Upkeep", "final"]

_EPOCH_COLS = (
    CONV.c.id,
    CONV.c.conversation_id,
    CONV.c.epoch,
    CONV.c.kek_id,
    CONV.c.kek_version,
    CONV.c.wrapped_dek,
    CONV.c.ended_at,
)
Home = tuple[str, float | None]  # (bucket kind, a time in the bucket; None: kept forever)
_LEGACY = (CONV.c.kek_id.is_(None), CONV.c.wrapped_dek.is_not(None))


def final(provider: KeyProvider, record: bytes | None) -> bool:
    """Whether destroying the KEK of `record` defeats older copies of the database."""
    if record and isinstance(provider, ProviderChain):
        with contextlib.suppress(VaultError):
            return provider.owner(record).destroy_is_final
    return provider.destroy_is_final


def _under(kek_id: str) -> tuple[Any, ...]:
    """The epochs whose data key is wrapped under `kek_id`."""
    return (CONV.c.kek_id == kek_id, CONV.c.wrapped_dek.is_not(None))


class Upkeep:
    """The key-maintenance pass and bucket retirement over one `Storage`."""

    __slots__ = ("_grace", "_keks", "_keys", "_storage")

    def __init__(self, storage: Storage, keks: Keks, keys: KeyCache, grace: float) -> None:
        self._storage = storage
        self._keks = keks
        self._keys = keys
        self._grace = grace

    # -- the pass ---------------------------------------------------------------------------

    def run(self, actor: str, limit: int) -> UpkeepSummary:
        storage = self._storage
        now = storage.clock()
        self._keks.current(LIVE, now + self._grace)  # the next bucket's KEK, made ahead
        moved = self._move(_LEGACY, limit, now)
        with storage.engine.begin() as conn:
            left = self._count(conn, _LEGACY)
            if left == 0 and self._keks.drop_legacy(conn):
                storage.chain.append(conn, [self._entry(now, actor, "legacy", "kek_destroy")])
                storage.unsettled = storage.unvacuumed = True
            due = self._due(conn, now)
        destroyed = 0
        for kek_id in due:
            moved += self._move(_under(kek_id), limit, now)
            destroyed += self._destroy(kek_id, actor)
        return UpkeepSummary(moved, destroyed, left, self.settle())

    def move_legacy(self, batch: int) -> int:
        """Re-wrap every epoch still under a pre-provider KEK version; how many."""
        moved = 0
        while done := self._move(_LEGACY, batch, self._storage.clock()):
            moved += done
        return moved

    def retire(self, kek_ids: Iterable[str], actor: str) -> tuple[int, int, bool]:
        """Destroy these KEKs now, moving their survivors first.

        (KEKs destroyed, data keys re-wrapped, whether every destroy was final).
        """
        storage = self._storage
        destroyed, moved, all_final = 0, 0, True
        for kek_id in sorted(set(kek_ids)):
            with storage.engine.begin() as conn:
                self._keks.set_state(conn, kek_id, (ACTIVE,), RETIRING)
                row = conn.execute(
                    select(BUCKETS.c.record).where(BUCKETS.c.kek_id == kek_id)
                ).first()
            record = None if row is None else row.record
            all_final = all_final and final(self._keks.provider, record)
            while done := self._move(_under(kek_id), 500, storage.clock()):
                moved += done
            destroyed += self._destroy(kek_id, actor)
        self.settle()
        return destroyed, moved, all_final

    def settle(self) -> bool:
        """Make what was shredded so far final in the live files; False: retry later."""
        storage = self._storage
        if storage.unsettled and not storage.pg:
            storage.unsettled = not checkpoint_wal(storage.engine)
        storage.unsettled = storage.unsettled and not storage.pg
        if storage.unvacuumed and storage.pg:
            storage.unvacuumed = not self._vacuum()
        storage.unvacuumed = storage.unvacuumed and storage.pg
        return not (storage.unsettled or storage.unvacuumed)

    def _vacuum(self) -> bool:
        """Rewrite `kek_buckets` so no dead tuple keeps an erased sealed KEK record."""
        with self._storage.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            try:
                conn.execute(text("SET lock_timeout = '1s'"))
                conn.execute(text("VACUUM (FULL) kek_buckets"))
            except DBAPIError:
                return False  # a long transaction holds the table: the next pass retries
        return True

    # -- which KEKs, which epochs -----------------------------------------------------------

    def _due(self, conn: Connection, now: float) -> list[str]:
        """KEKs to destroy: bucket over `grace` ago, being retired, or half destroyed."""
        ended = and_(
            BUCKETS.c.state == ACTIVE,
            BUCKETS.c.bucket_end.is_not(None),
            BUCKETS.c.bucket_end <= now - self._grace,
        )
        query = select(BUCKETS.c.kek_id).where(
            BUCKETS.c.tenant == self._storage.tenant,
            or_(ended, BUCKETS.c.state.in_((RETIRING, DESTROYING))),
        )
        return list(conn.execute(query.order_by(BUCKETS.c.bucket_start)).scalars())

    def _count(self, conn: Connection, where: Sequence[Any]) -> int:
        query = select(func.count()).select_from(CONV).where(CONV.c.tenant == self._storage.tenant)
        return int(conn.execute(query.where(*where)).scalar_one())

    def _homes(self, conn: Connection, rows: Sequence[Any], now: float) -> dict[int, Home]:
        """Where each epoch's data key belongs now (docs/keys.md, "Buckets")."""
        ended = [row.id for row in rows if row.ended_at is not None]
        deadlines: dict[int, float | None] = {}
        if ended:
            kept = conn.execute(
                select(
                    VAL.c.conversation_pk,
                    func.count(),
                    func.count(VAL.c.expires_at),
                    func.max(VAL.c.expires_at),
                )
                .where(
                    VAL.c.conversation_pk.in_(ended),
                    VAL.c.ciphertext.is_not(None),
                    VAL.c.status.in_((MASKED, RETAINED)),
                )
                .group_by(VAL.c.conversation_pk)
            )
            for pk, count, with_deadline, latest in kept:
                deadlines[pk] = latest if count == with_deadline else None
        homes: dict[int, Home] = {}
        for row in rows:
            if row.ended_at is None:
                homes[row.id] = (LIVE, now)
            elif row.id not in deadlines:
                homes[row.id] = (KEPT, now)  # nothing kept: the next expiry pass shreds it
            else:
                deadline = deadlines[row.id]
                homes[row.id] = (KEPT, None if deadline is None else max(deadline, now))
        return homes

    def _move(self, where: Sequence[Any], limit: int, now: float) -> int:
        """Re-wrap up to `limit` data keys matching `where` under their home KEK; how many."""
        storage = self._storage
        with storage.engine.begin() as conn:
            rows = conn.execute(
                select(*_EPOCH_COLS)
                .where(CONV.c.tenant == storage.tenant, *where)
                .order_by(CONV.c.id)
                .limit(limit)
            ).all()
            homes = self._homes(conn, rows, now)
        if not rows:
            return 0
        targets = {home: self._keks.current(*home) for home in set(homes.values())}
        try:
            with storage.engine.begin() as conn:
                return self._rewrap(conn, rows, homes, targets)
        except KekRetired:
            return 1  # a target was retired meanwhile: the caller's loop comes back

    def _rewrap(
        self,
        conn: Connection,
        rows: Sequence[Any],
        homes: dict[int, Home],
        targets: dict[Home, BucketKek],
    ) -> int:
        moved, lost = 0, []
        for row in rows:
            target = targets[homes[row.id]]
            try:
                dek = self._keks.unwrap(conn, row, row.conversation_id)
            except KeyDestroyed:
                lost.append(row.id)  # its KEK is gone (a restored backup): it is shredded
                continue
            except DecryptionError:
                continue  # unreadable: left alone (and its KEK with it)
            wrapped = self._keks.wrap(conn, target, dek, row.conversation_id, row.epoch)
            moved += conn.execute(
                update(CONV)
                .where(CONV.c.id == row.id, CONV.c.wrapped_dek == row.wrapped_dek)
                .values(wrapped_dek=wrapped, kek_id=target.kek_id, kek_version=0)
            ).rowcount
        if lost:
            shred_epochs(conn, lost, self._storage.clock())
            self._storage.unsettled = True
        for row in rows:
            self._keys.forget(row.conversation_id)
        return moved + len(lost)

    # -- destroying one KEK -----------------------------------------------------------------

    def _destroy(self, kek_id: str, actor: str) -> int:
        """Destroy one KEK if no data key is wrapped under it any more; 1 if it did."""
        storage = self._storage
        with storage.engine.begin() as conn:
            row = conn.execute(
                select(BUCKETS.c.state, BUCKETS.c.record)
                .where(BUCKETS.c.kek_id == kek_id)
                .with_for_update()
            ).first()
            if row is None or row.state == DESTROYED:
                return 0
            if row.state != DESTROYING:
                wrapped = exists().where(CONV.c.kek_id == kek_id, CONV.c.wrapped_dek.is_not(None))
                if conn.execute(select(wrapped)).scalar():
                    return 0  # a survivor appeared (a wrap won the race): next pass
                self._keks.set_state(conn, kek_id, (row.state,), DESTROYING)
                entry = self._entry(storage.clock(), actor, kek_id, "kek_destroy")
                storage.chain.append(conn, [entry])
        if row.record:
            self._keks.provider.destroy_kek(kek_id, row.record)
        with storage.engine.begin() as conn:
            self._keks.set_state(conn, kek_id, (DESTROYING,), DESTROYED)
        storage.unsettled = True
        if not final(self._keks.provider, row.record):
            storage.unvacuumed = True
        return 1

    def _entry(self, now: float, actor: str, purpose: str, action: str) -> Entry:
        ok = Outcome.OK.audit_text()
        return Entry(now, self._storage.tenant, actor, action, ok, purpose=purpose[:255])
