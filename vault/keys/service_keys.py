"""Keys the database must not hold in clear: the audit MAC, the pseudonym key, checkpoints.

Each is a random 32-byte key, made once per database, **sealed by the provider's root** and
stored by the caller under its name (the `key_objects` table of docs/keys.md); a worker
unseals it once at start.  A database writer sees only the sealed blob, so it cannot
compute a link of the audit chain, a sender's pseudonym or a checkpoint signature.

Why sealed random keys rather than keys derived from the root: a root rotation (or the
move from the key file to a token) then re-seals three small blobs and changes no key, so
the audit chain verifies across it, every pseudonym stays the same (a person's
conversations are still found by the HMAC of their sender id) and the checkpoints an
operator kept stay valid.  Derived keys would change with the root and tie the old root to
every old row for good.
"""

from __future__ import annotations

import threading
from typing import Protocol

from coatcheck.vault import _crypto
from coatcheck.vault.keys.checkpoint import CheckpointSigner
from coatcheck.vault.keys.provider import KeyProvider

__all__ = [
    "AUDIT_MAC",
    "CHECKPOINT",
    "GRANT",
    "PSEUDONYM",
    "MemoryKeyStore",
    "SealedKeyStore",
    "ServiceKeys",
]

AUDIT_MAC = "audit-mac/v1"
PSEUDONYM = "pseudonym/v1"
CHECKPOINT = "checkpoint-ed25519/v1"
GRANT = "grant/v1"


class SealedKeyStore(Protocol):
    """Where sealed service keys live (the database); `add` must be first-writer-wins."""

    def get(self, name: str) -> bytes | None:
        """The sealed blob stored under `name`, if any."""

    def add(self, name: str, blob: bytes) -> bytes:
        """Store `blob` unless `name` exists; the blob stored under `name` either way."""


class MemoryKeyStore:
    """A `SealedKeyStore` in memory (tests and tools); the database one is a unique row."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> bytes | None:
        with self._lock:
            return self._blobs.get(name)

    def add(self, name: str, blob: bytes) -> bytes:
        with self._lock:
            return self._blobs.setdefault(name, blob)


def _context(name: str) -> bytes:
    return b"coatcheck/service-key/" + name.encode("ascii")


class ServiceKeys:
    """The service keys of one database: made on first use, unsealed once, kept in memory."""

    def __init__(self, provider: KeyProvider, store: SealedKeyStore) -> None:
        self._provider = provider
        self._store = store
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ServiceKeys(root_id={self._provider.root_id!r}, loaded={sorted(self._keys)})"

    def key(self, name: str) -> bytes:
        """The key `name` (one of the constants above), created and sealed if absent."""
        with self._lock:
            cached = self._keys.get(name)
        if cached is not None:
            return cached
        blob = self._store.get(name)
        if blob is None:
            blob = self._store.add(name, self._provider.seal(_crypto.new_key(), _context(name)))
        key = self._provider.unseal(blob, _context(name))
        with self._lock:
            self._keys[name] = key
        return key

    def reseal(self, name: str) -> bytes:
        """The stored blob of `name` sealed again under the provider's current root."""
        return self._provider.seal(self.key(name), _context(name))

    @property
    def audit_mac_key(self) -> bytes:
        """HMAC-SHA256 key of the audit chain's links."""
        return self.key(AUDIT_MAC)

    @property
    def pseudonym_key(self) -> bytes:
        """HMAC-SHA256 key that turns a channel's sender id into its pseudonym."""
        return self.key(PSEUDONYM)

    @property
    def grant_key(self) -> bytes:
        """HMAC key of grant tokens and viewer sessions (the same on every root)."""
        return self.key(GRANT)

    @property
    def checkpoint_signer(self) -> CheckpointSigner:
        """Signs audit checkpoints (Ed25519; the seed is this sealed key)."""
        return CheckpointSigner(self.key(CHECKPOINT))
