"""The tenant's key-encryption keys: the `keks` table on one side, the `KeyRing` on the other.

Why a module of its own: everything that decides which KEK wraps a data key, and how a
stored KEK version reaches this worker, is here and nowhere else; the rest of the vault
asks for "wrap this data key" / "unwrap that one".  (Key providers and KEK buckets, when
they come, change this module.)

A KEK joins the ring only after its row commits (`sync` after the inserting
transaction), so a worker that loses an insert race never keeps a KEK nobody else has;
a worker that meets a version it has not loaded yet reloads the table in the caller's
transaction.
"""

from __future__ import annotations

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from coatcheck.vault import _crypto
from coatcheck.vault._statements import KEK
from coatcheck.vault._storage import Storage
from coatcheck.vault.keyring import KeyRing

__all__ = ["Keks"]


class Keks:
    """Wraps and unwraps data keys under the tenant's KEK versions."""

    __slots__ = ("_keyring", "_storage")

    def __init__(self, storage: Storage, keyring: KeyRing) -> None:
        self._storage = storage
        self._keyring = keyring

    def reload(self, conn: Connection) -> None:
        """Load every stored version this worker does not know yet."""
        tenant = self._storage.tenant
        rows = conn.execute(select(KEK.c.version, KEK.c.wrapped).where(KEK.c.tenant == tenant))
        for version, wrapped in rows:
            if not self._keyring.knows(version):
                self._keyring.load(tenant, version, wrapped)

    def sync(self) -> None:
        """Reload in a transaction of its own (after a KEK row committed)."""
        with self._storage.engine.begin() as conn:
            self.reload(conn)

    def ensure(self, conn: Connection) -> None:
        """The tenant's first KEK, if it has none yet (a race is retried by the caller)."""
        self.reload(conn)
        if self._keyring.newest is None:
            self._insert(conn, 1)

    def add_version(self, conn: Connection) -> int:
        """A new KEK version (loaded by `sync` once it committed); its number."""
        self.reload(conn)
        newest = conn.execute(
            select(func.max(KEK.c.version)).where(KEK.c.tenant == self._storage.tenant)
        ).scalar()
        version = (newest or 0) + 1
        self._insert(conn, version)
        return version

    def _insert(self, conn: Connection, version: int) -> None:
        tenant = self._storage.tenant
        wrapped = self._keyring.new_wrapped_kek(tenant, version)
        conn.execute(
            insert(KEK).values(
                tenant=tenant, version=version, wrapped=wrapped, created_at=self._storage.clock()
            )
        )

    @property
    def newest(self) -> int:
        """The version that wraps new data keys."""
        version = self._keyring.newest
        assert version is not None  # ensure() ran when the vault was built
        return version

    def wrap(self, dek: bytes, conversation_id: str, epoch: int, version: int) -> bytes:
        """A data key wrapped under KEK `version`, bound to its epoch (AAD)."""
        aad = self._aad(conversation_id, epoch, version)
        return self._keyring.wrap_dek(dek, version, aad)

    def unwrap(
        self, conn: Connection, wrapped: bytes, conversation_id: str, epoch: int, version: int
    ) -> bytes:
        """The data key of an epoch, loading its KEK version first if it is new here."""
        if not self._keyring.knows(version):
            self.reload(conn)
        return self._keyring.unwrap_dek(
            wrapped, version, self._aad(conversation_id, epoch, version)
        )

    def _aad(self, conversation_id: str, epoch: int, version: int) -> bytes:
        return _crypto.aad("dek", self._storage.tenant, conversation_id, epoch, version)
