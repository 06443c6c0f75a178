"""The tenant's key-encryption keys: one per time bucket, held by the key provider.

Why a module of its own: everything that decides which KEK wraps a data key, and how a
KEK reaches this worker, is here and nowhere else; the rest of the vault asks for "wrap
this data key" / "unwrap that one" (docs/keys.md, "Buckets").

- A new key epoch created at `t` is wrapped under the `live` KEK of the bucket holding `t`
  (`bucket_seconds`, a UTC day by default); kept epochs move to a `kept` bucket of their
  deadline (`kept` with no end: masked values kept for good).  `Upkeep` moves survivors
  and destroys a bucket's KEK once it ended `grace` ago.
- A bucket's KEK is made by the first worker that needs it, **outside** any transaction
  (a token or a transit server may take milliseconds; SQLite would deadlock on its own
  write lock), then inserted; of two racing workers the loser destroys its own KEK and
  uses the winner's.  Its row is `(tenant, kind, bucket_start, generation)`-unique; the id
  carries a random suffix, so two databases on one token or transit mount never share one.
- Every wrap re-reads the KEK's row in the caller's transaction (FOR SHARE on PostgreSQL):
  a retired or destroyed KEK never wraps again, whatever a worker remembers.  Every
  unwrap re-reads its record too (a data-key cache miss only): a destroyed KEK is
  `KeyDestroyed` (the caller answers "shredded"), never a 500.
- Epochs written before key providers carry `kek_version` instead: they open through the
  legacy `KeyRing` of a host provider (the same master key), until `Upkeep` re-wraps them.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from coatcheck.vault import _crypto
from coatcheck.vault._statements import CONV, KEK
from coatcheck.vault._storage import Storage
from coatcheck.vault.errors import DecryptionError, KeyConfigError
from coatcheck.vault.keyring import KeyRing
from coatcheck.vault.keys.errors import KeyDestroyed, ProviderUnavailable
from coatcheck.vault.keys.provider import Kek, KeyProvider
from coatcheck.vault.models import KekBucket

__all__ = [
    "ACTIVE",
    "BUCKETS",
    "DESTROYED",
    "DESTROYING",
    "KEPT",
    "LIVE",
    "RETIRING",
    "BucketKek",
    "KekRetired",
    "Keks",
]

BUCKETS: Table = KekBucket.__table__  # type: ignore[assignment]
LIVE, KEPT = "live", "kept"
ACTIVE, RETIRING, DESTROYING, DESTROYED = "active", "retiring", "destroying", "destroyed"
FOREVER = 0.0  # the bucket_start of the `kept` bucket that never ends
YOUNG_KEK_SECONDS = 600.0  # a KEK row younger than this whose key the provider lacks: 503
KEK_NOT_VISIBLE = "KekNotVisible"  # that ProviderUnavailable's cause


class KekRetired(Exception):
    """Internal: the KEK a worker meant to wrap under is no longer active; take a new one."""


@dataclass(frozen=True)
class BucketKek:
    """An opened bucket KEK: its id, the record it was opened from, the key itself."""

    kek_id: str
    record: bytes
    kek: Kek


def _stamp(start: float, end: float | None) -> str:
    if end is None:
        return "forever"
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(start))


class Keks:
    """Bucket KEKs of one tenant: pick, create, open, wrap and unwrap under them."""

    def __init__(self, storage: Storage, provider: KeyProvider, bucket_seconds: float) -> None:
        self._storage = storage
        self._provider = provider
        self._seconds = bucket_seconds
        legacy = provider.legacy_keyring()
        self._legacy: KeyRing | None = None if legacy is None else legacy.fresh()
        self._lock = threading.Lock()
        self._current: dict[tuple[str, float], BucketKek] = {}
        self._opened: dict[str, BucketKek] = {}

    @property
    def provider(self) -> KeyProvider:
        return self._provider

    # -- which bucket -----------------------------------------------------------------------

    def bucket(self, kind: str, at: float | None) -> tuple[float, float | None]:
        """(start, end) of the `kind` bucket holding `at`; None: the kept bucket forever."""
        if at is None:
            return FOREVER, None
        start = (at // self._seconds) * self._seconds
        return start, start + self._seconds

    def current(self, kind: str, at: float | None) -> BucketKek:
        """The active KEK of the bucket holding `at`, created if absent.

        Call it outside any transaction: creating a KEK is a provider call and an INSERT
        of its own.
        """
        start, end = self.bucket(kind, at)
        with self._lock:
            cached = self._current.get((kind, start))
        if cached is not None:
            return cached
        opened: BucketKek | None = None
        for _ in range(self._storage.retries):
            with self._storage.engine.begin() as conn:
                row = self._active_row(conn, kind, start)
                generation = 0 if row is not None else self._next_generation(conn, kind, start)
            if row is not None:
                opened = self._open_active(row.kek_id, row.record, row.created_at)
            else:
                opened = self._create(kind, start, end, generation)
            if opened is not None:
                break
        if opened is None:
            raise KekRetired()
        with self._lock:
            self._current[(kind, start)] = opened
        return opened

    def _open_active(
        self, kek_id: str, record: bytes | None, created_at: float
    ) -> BucketKek | None:
        """An active row's KEK; None (and the row marked destroyed) when the provider no
        longer has it: a database restored from before its destroy.  Then a new
        generation of the bucket takes over; what the old KEK wrapped reads as shredded."""
        try:
            return self._open_record(kek_id, record, created_at)
        except KeyDestroyed:
            with self._storage.engine.begin() as conn:
                self.set_state(conn, kek_id, (ACTIVE,), DESTROYED)
            return None

    def forget(self, kek_id: str | None = None) -> None:
        """Drop remembered KEKs (one, or all): the next use reads their rows again."""
        with self._lock:
            for key in [k for k, v in self._current.items() if kek_id in (None, v.kek_id)]:
                del self._current[key]
            if kek_id is None:
                self._opened.clear()
            else:
                self._opened.pop(kek_id, None)

    def _active_row(self, conn: Connection, kind: str, start: float) -> Any:
        return conn.execute(
            select(BUCKETS.c.kek_id, BUCKETS.c.record, BUCKETS.c.created_at)
            .where(
                BUCKETS.c.tenant == self._storage.tenant,
                BUCKETS.c.kind == kind,
                BUCKETS.c.bucket_start == start,
                BUCKETS.c.state == ACTIVE,
            )
            .order_by(BUCKETS.c.generation.desc())
            .limit(1)
        ).first()

    def _next_generation(self, conn: Connection, kind: str, start: float) -> int:
        newest = conn.execute(
            select(func.max(BUCKETS.c.generation)).where(
                BUCKETS.c.tenant == self._storage.tenant,
                BUCKETS.c.kind == kind,
                BUCKETS.c.bucket_start == start,
            )
        ).scalar()
        return 0 if newest is None else int(newest) + 1

    def _create(
        self, kind: str, start: float, end: float | None, generation: int
    ) -> BucketKek | None:
        """A new KEK for the bucket; None when another worker's insert won (retry)."""
        storage = self._storage
        stamp = _stamp(start, end)
        kek_id = f"{storage.tenant}/{kind}/{stamp}/{generation}/{secrets.token_hex(4)}"
        record = self._provider.create_kek(kek_id)
        try:
            with storage.engine.begin() as conn:
                conn.execute(
                    insert(BUCKETS).values(
                        kek_id=kek_id,
                        tenant=storage.tenant,
                        kind=kind,
                        bucket_start=start,
                        bucket_end=end,
                        generation=generation,
                        record=record,
                        state=ACTIVE,
                        created_at=storage.clock(),
                    )
                )
        except IntegrityError:
            self._provider.destroy_kek(kek_id, record)  # the winner's KEK serves; ours goes
            return None
        return self._open_record(kek_id, record)

    # -- opening, wrapping, unwrapping ------------------------------------------------------

    def _open_record(
        self, kek_id: str, record: bytes | None, created_at: float | None = None
    ) -> BucketKek:
        """The KEK of a row's record (remembered per record); `KeyDestroyed` if erased.

        A provider that has no key for a row made moments ago (`created_at` within
        `YOUNG_KEK_SECONDS`) is not believed: SoftHSM2's file store can hide another
        process's new object from this one for a while, and taking a live KEK for destroyed
        shreds every epoch under it.  That is `ProviderUnavailable` (the caller answers 503
        and the message can be sent again) instead.
        """
        if not record:
            self.forget(kek_id)
            raise KeyDestroyed(kek_id)
        with self._lock:
            known = self._opened.get(kek_id)
        if known is not None and known.record == record:
            return known
        try:
            kek = self._provider.open_kek(kek_id, record)
        except KeyDestroyed:
            if created_at is not None and self._storage.clock() - created_at < YOUNG_KEK_SECONDS:
                raise ProviderUnavailable(self._provider.kind, KEK_NOT_VISIBLE) from None
            raise
        opened = BucketKek(kek_id, record, kek)
        with self._lock:
            self._opened[kek_id] = opened
        return opened

    def _row(self, conn: Connection, kek_id: str, *, share: bool) -> Any:
        query = select(BUCKETS.c.state, BUCKETS.c.record, BUCKETS.c.created_at).where(
            BUCKETS.c.kek_id == kek_id
        )
        if share and self._storage.pg:
            query = query.with_for_update(read=True)
        return conn.execute(query).first()

    def wrap(
        self, conn: Connection, under: BucketKek, dek: bytes, conversation_id: str, epoch: int
    ) -> bytes:
        """`dek` wrapped under `under`, bound to its epoch; `KekRetired` if it may not wrap.

        The KEK's row is read (and on PostgreSQL share-locked) in the caller's transaction,
        so a destroy, which locks it FOR UPDATE and then looks for wrapped keys, either
        sees this epoch or makes this call fail: never a data key under a destroyed KEK.
        """
        row = self._row(conn, under.kek_id, share=True)
        if row is None or row.state != ACTIVE or row.record != under.record:
            self.forget(under.kek_id)
            raise KekRetired()
        return under.kek.wrap(dek, self.context(conversation_id, epoch, under.kek_id))

    def unwrap(self, conn: Connection, epoch: Any, conversation_id: str) -> bytes:
        """The data key of an epoch row (`kek_id` or legacy `kek_version`, `wrapped_dek`)."""
        if epoch.kek_id is not None:
            row = self._row(conn, epoch.kek_id, share=False)
            record, made = (None, None) if row is None else (row.record, row.created_at)
            opened = self._open_record(epoch.kek_id, record, made)
            context = self.context(conversation_id, epoch.epoch, epoch.kek_id)
            return opened.kek.unwrap(epoch.wrapped_dek, context)
        return self.legacy_unwrap(conn, epoch, conversation_id)

    def rebind(
        self, conn: Connection, epoch: Any, conversation_id: str, to: tuple[str, int]
    ) -> tuple[bytes, bytes]:
        """(data key, the data key wrapped again) under the same KEK, bound to another
        (conversation id, epoch): a conversation renamed to its pseudonym (`_pseudonyms.py`).

        The KEK's row is share-locked like a wrap; the number of data keys under it does not
        change, so a destroy that is waiting still finds this epoch.  `KeyDestroyed` if the
        KEK is gone (the epoch reads as shredded)."""
        assert epoch.kek_id is not None  # legacy epochs are moved to bucket KEKs first
        row = self._row(conn, epoch.kek_id, share=True)
        record, made = (None, None) if row is None else (row.record, row.created_at)
        opened = self._open_record(epoch.kek_id, record, made)
        dek = opened.kek.unwrap(
            epoch.wrapped_dek, self.context(conversation_id, epoch.epoch, epoch.kek_id)
        )
        return dek, opened.kek.wrap(dek, self.context(to[0], to[1], epoch.kek_id))

    def context(self, conversation_id: str, epoch: int, kek_id: str) -> bytes:
        """What a wrapped data key is bound to: moved to another epoch or KEK, it fails."""
        return _crypto.aad("dek", self._storage.tenant, conversation_id, epoch, kek_id)

    # -- the legacy key ring (databases written before key providers) -----------------------

    def legacy_unwrap(self, conn: Connection, epoch: Any, conversation_id: str) -> bytes:
        keyring = self._legacy
        version = epoch.kek_version
        if keyring is None or version is None:
            raise DecryptionError()
        if not keyring.knows(version):
            self.load_legacy(conn)
        aad = _crypto.aad("dek", self._storage.tenant, conversation_id, epoch.epoch, version)
        return keyring.unwrap_dek(epoch.wrapped_dek, version, aad)

    def check_legacy(self) -> None:
        """Open the legacy KEK versions if any epoch still needs them: a wrong master key
        fails here (as it always did), a provider without a host root names the setting."""
        tenant = self._storage.tenant
        needed = select(func.count()).where(
            CONV.c.tenant == tenant, CONV.c.kek_id.is_(None), CONV.c.wrapped_dek.is_not(None)
        )
        with self._storage.engine.begin() as conn:
            if conn.execute(needed).scalar_one():
                self.load_legacy(conn)

    def load_legacy(self, conn: Connection) -> int:
        """Load the legacy KEK versions of the tenant; how many rows exist.

        A wrong master key surfaces here as `DecryptionError`; legacy rows without a host
        provider (e.g. PKCS#11 alone) as `KeyConfigError`: chain the old key file.
        """
        tenant = self._storage.tenant
        rows = conn.execute(
            select(KEK.c.version, KEK.c.wrapped).where(KEK.c.tenant == tenant)
        ).all()
        if rows and self._legacy is None:
            raise KeyConfigError(
                "COATCHECK_PREVIOUS_KEY_FILES",
                "COATCHECK_PREVIOUS_KEY_FILES: this database holds keys of the key file or "
                "COATCHECK_MASTER_KEY; list that key file there until `coatcheck keys "
                "maintain` has re-wrapped them",
            )
        for version, wrapped in rows:
            assert self._legacy is not None
            if not self._legacy.knows(version):
                self._legacy.load(tenant, version, wrapped)
        return len(rows)

    def drop_legacy(self, conn: Connection) -> int:
        """Delete the tenant's legacy KEK rows (no epoch needs them any more); how many."""
        return conn.execute(delete(KEK).where(KEK.c.tenant == self._storage.tenant)).rowcount

    # -- states -----------------------------------------------------------------------------

    def set_state(self, conn: Connection, kek_id: str, old: tuple[str, ...], new: str) -> bool:
        """Move a KEK row from one of `old` states to `new`; whether it did."""
        values: dict[str, Any] = {"state": new}
        if new == DESTROYED:
            values.update(record=None, destroyed_at=self._storage.clock())
        moved = conn.execute(
            update(BUCKETS)
            .where(BUCKETS.c.kek_id == kek_id, BUCKETS.c.state.in_(old))
            .values(**values)
        ).rowcount
        self.forget(kek_id)
        return bool(moved)
