"""Rotation without downtime: fresh KEKs for every data key, or a new root for every blob.

`rotate` retires every active KEK of the tenant (each bucket gets a new generation, its
data keys are re-wrapped under it, the old KEK is destroyed) after moving any epoch still
under a pre-provider KEK version: online, in batches of short transactions (`Upkeep`).

`rotate_root` moves everything sealed under an older root to the provider's primary root
(`ProviderChain(new, old)` in every worker meanwhile; docs/keys.md, "Rotation and
migration"): the sealed service keys are sealed again (the keys themselves do not change,
so MACs, pseudonyms and checkpoints stay valid); a KEK record sealed under a host root is
sealed again when the primary is a host root too (the KEK is unchanged); any other KEK of
an older root (a token or transit KEK, or a host KEK when the primary's destroy is real)
is retired, so its survivors move to a new KEK made by the primary.  Each update is
conditional on the blob that was read, so a concurrent change wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table, select, update

from coatcheck.vault._chain import Entry
from coatcheck.vault._keks import ACTIVE, BUCKETS, RETIRING, Keks
from coatcheck.vault._storage import Storage
from coatcheck.vault._upkeep import Upkeep
from coatcheck.vault.errors import VaultError
from coatcheck.vault.keys.chain import ProviderChain
from coatcheck.vault.keys.provider import SEALED, kek_context, root_of
from coatcheck.vault.keys.service_keys import ServiceKeys
from coatcheck.vault.lifecycle import UpkeepSummary
from coatcheck.vault.models import KeyObject
from coatcheck.vault.outcomes import Outcome

__all__ = ["RootRotation", "Rotator"]

_OBJECTS: Table = KeyObject.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class RootRotation:
    """`Vault.rotate_root`: what moved to the primary root, and what still names another."""

    root_id: str  # the primary root
    resealed: int  # service keys and KEK records sealed again
    retired: int  # KEKs destroyed after their data keys moved to a new KEK
    left: int  # blobs and records still under another root (0: drop the old provider)


class Rotator:
    """rotate and rotate_root over one `Storage`."""

    __slots__ = ("_keks", "_service", "_storage", "_upkeep")

    def __init__(self, storage: Storage, keks: Keks, upkeep: Upkeep, service: ServiceKeys) -> None:
        self._storage = storage
        self._keks = keks
        self._upkeep = upkeep
        self._service = service

    def rotate(self, actor: str, batch: int) -> UpkeepSummary:
        storage = self._storage
        moved = self._upkeep.move_legacy(batch)
        with storage.engine.begin() as conn:
            kek_ids = list(
                conn.execute(
                    select(BUCKETS.c.kek_id).where(
                        BUCKETS.c.tenant == storage.tenant, BUCKETS.c.state == ACTIVE
                    )
                ).scalars()
            )
        destroyed, rewrapped, _ = self._upkeep.retire(kek_ids, actor)
        purpose = f"{destroyed} keks retired, {moved + rewrapped} data keys re-wrapped"
        self._audit(actor, "rotate", purpose)
        return UpkeepSummary(moved + rewrapped, destroyed, 0, self._upkeep.settle())

    def rotate_root(self, actor: str) -> RootRotation:
        provider = self._keks.provider
        primary = provider.primary if isinstance(provider, ProviderChain) else provider
        resealed = self._reseal_objects(primary.root_id)
        to_retire: list[str] = []
        storage = self._storage
        with storage.engine.begin() as conn:
            records = conn.execute(
                select(BUCKETS.c.kek_id, BUCKETS.c.record).where(
                    BUCKETS.c.tenant == storage.tenant,
                    BUCKETS.c.state.in_((ACTIVE, RETIRING)),
                    BUCKETS.c.record.is_not(None),
                )
            ).all()
        for kek_id, record in records:
            if primary.holds(record):
                continue
            sealed = record[:2] == SEALED
            if sealed and not primary.destroy_is_final and isinstance(provider, ProviderChain):
                resealed += self._reseal_record(provider, kek_id, record)
            else:
                to_retire.append(kek_id)
        retired, _, _ = self._upkeep.retire(to_retire, actor)
        left = self._left(primary.root_id)
        purpose = f"{primary.root_id}: {resealed} resealed, {retired} retired, {left} left"
        self._audit(actor, "rotate_root", purpose)
        return RootRotation(primary.root_id, resealed, retired, left)

    def _reseal_objects(self, root_id: str) -> int:
        storage = self._storage
        with storage.engine.begin() as conn:
            rows = conn.execute(select(_OBJECTS.c.name, _OBJECTS.c.blob)).all()
        done = 0
        for name, blob in rows:
            if root_of(blob) == root_id:
                continue
            fresh = self._service.reseal(name)  # before the write transaction (SQLite)
            with storage.engine.begin() as conn:
                done += conn.execute(
                    update(_OBJECTS)
                    .where(_OBJECTS.c.name == name, _OBJECTS.c.blob == blob)
                    .values(blob=fresh, root_id=root_id, updated_at=storage.clock())
                ).rowcount
        return done

    def _reseal_record(self, chain: ProviderChain, kek_id: str, record: bytes) -> int:
        fresh = chain.reseal(record, kek_context(kek_id))
        with self._storage.engine.begin() as conn:
            done = conn.execute(
                update(BUCKETS)
                .where(BUCKETS.c.kek_id == kek_id, BUCKETS.c.record == record)
                .values(record=fresh)
            ).rowcount
        self._keks.forget(kek_id)
        return int(done)

    def _left(self, root_id: str) -> int:
        storage = self._storage
        with storage.engine.begin() as conn:
            blobs = list(conn.execute(select(_OBJECTS.c.blob)).scalars())
            blobs += list(
                conn.execute(
                    select(BUCKETS.c.record).where(
                        BUCKETS.c.tenant == storage.tenant, BUCKETS.c.record.is_not(None)
                    )
                ).scalars()
            )
        try:
            return sum(1 for blob in blobs if root_of(blob) != root_id)
        except VaultError:
            return len(blobs)

    def _audit(self, actor: str, action: str, purpose: str) -> None:
        storage = self._storage
        ok = Outcome.OK.audit_text()
        entry = Entry(storage.clock(), storage.tenant, actor, action, ok, purpose=purpose[:255])
        with storage.engine.begin() as conn:
            storage.chain.append(conn, [entry])
