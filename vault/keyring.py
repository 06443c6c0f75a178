"""The key ring: master key -> derived wrapping keys -> versioned KEKs -> data keys.

The master key never encrypts data.  HKDF derives from it a KEK-wrapping key and a grant
signing key.  KEKs are random, stored wrapped in the `keks` table (AAD = tenant + version);
the newest version wraps new data keys, every known version unwraps.  A worker that meets
a version it has not loaded asks its caller to reload the table (see `Vault`).
"""

from __future__ import annotations

import threading

from coatcheck.vault import _crypto
from coatcheck.vault.errors import DecryptionError
from coatcheck.vault.keyfile import validate_master_key

__all__ = ["KeyRing"]


class KeyRing:
    """Holds the derived keys and the unwrapped KEKs of one tenant; repr never shows keys."""

    def __init__(self, master_key: bytes) -> None:
        validate_master_key(master_key, "COATCHECK_MASTER_KEY")
        self._kek_wrapper = _crypto.Sealer(_crypto.derive(master_key, b"coatcheck/kek-wrap/v1"))
        self._grant_key = _crypto.derive(master_key, b"coatcheck/grant-sign/v1")
        self._keks: dict[int, _crypto.Sealer] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_master_key(cls, master: bytes) -> KeyRing:
        return cls(master)

    def fresh(self) -> KeyRing:
        """An empty ring on the same derived keys: one per tenant (versions are per tenant)."""
        ring = KeyRing.__new__(KeyRing)
        ring._kek_wrapper = self._kek_wrapper
        ring._grant_key = self._grant_key
        ring._keks = {}
        ring._lock = threading.Lock()
        return ring

    def __repr__(self) -> str:
        return f"KeyRing(versions={sorted(self._keks)})"

    @property
    def grant_key(self) -> bytes:
        """Key for signing grant tokens (derived; independent of the KEKs)."""
        return self._grant_key

    @property
    def newest(self) -> int | None:
        with self._lock:
            return max(self._keks) if self._keks else None

    def knows(self, version: int) -> bool:
        with self._lock:
            return version in self._keks

    def new_wrapped_kek(self, tenant: str, version: int) -> bytes:
        """A fresh KEK, wrapped for storage in the `keks` table."""
        return self._kek_wrapper.seal(_crypto.new_key(), _crypto.aad("kek", tenant, version))

    def load(self, tenant: str, version: int, wrapped: bytes) -> None:
        """Unwrap a stored KEK; a wrong master key surfaces here as `DecryptionError`."""
        kek = self._kek_wrapper.open(wrapped, _crypto.aad("kek", tenant, version))
        with self._lock:
            self._keks[version] = _crypto.Sealer(kek)

    def _kek(self, version: int) -> _crypto.Sealer:
        with self._lock:
            sealer = self._keks.get(version)
        if sealer is None:
            raise DecryptionError()
        return sealer

    def wrap_dek(self, dek: bytes, version: int, context: bytes) -> bytes:
        return self._kek(version).seal(dek, context)

    def unwrap_dek(self, wrapped: bytes, version: int, context: bytes) -> bytes:
        return self._kek(version).open(wrapped, context)
