"""Providers whose root key lives in this process: the key file and the environment.

The root is the master key of today (`vault/keyfile.py`): 32+ random bytes, base64, from
`COATCHECK_KEY_FILE` (created 0600 on first run; refused when group or others may read
it) or `COATCHECK_MASTER_KEY`.  HKDF derives from it a sealing key and a non-secret root
id; the master key itself is never kept.  KEKs are random keys sealed under the root, so
the record the vault stores *is* the KEK: deleting the record is the whole destroy, and a
copy of the database taken before, with the root key, still opens it
(`destroy_is_final = False`; docs/keys.md states the bound).

Both providers also hand out the legacy `KeyRing` built from the same master key, so the
vault can read the KEK versions and grant keys of databases written before key providers
until it has re-wrapped them (docs/keys.md, "From the key ring to day KEKs").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from coatcheck.vault import _crypto
from coatcheck.vault.errors import KeyConfigError
from coatcheck.vault.keyfile import parse_master_key, read_key_file, validate_master_key
from coatcheck.vault.keyring import KeyRing
from coatcheck.vault.keys.errors import KeyDestroyed
from coatcheck.vault.keys.provider import SEALED, Kek, KeyProvider, header, kek_context

__all__ = ["EnvKeyProvider", "FileKeyProvider", "HostKek"]

ENV_SETTING = "COATCHECK_MASTER_KEY"


class HostKek(Kek):
    """A KEK unwrapped into this process's memory (AES-256-GCM)."""

    __slots__ = ("_sealer",)

    def __init__(self, kek_id: str, key: bytes) -> None:
        super().__init__(kek_id)
        self._sealer = _crypto.Sealer(key)

    def wrap(self, key: bytes, context: bytes) -> bytes:
        return self._sealer.seal(key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        return self._sealer.open(blob, context)


class _HostKeyProvider(KeyProvider):
    """The root key is in process memory; KEKs are sealed records in the database."""

    destroy_is_final = False

    def __init__(self, master_key: bytes, setting: str) -> None:
        validate_master_key(master_key, setting)
        self._sealer = _crypto.Sealer(_crypto.derive(master_key, b"coatcheck/root-seal/v1"))
        self._root_id = "h:" + _crypto.derive(master_key, b"coatcheck/root-id/v1", 8).hex()
        self._keyring = KeyRing(master_key)

    @property
    def root_id(self) -> str:
        return self._root_id

    def legacy_keyring(self) -> KeyRing:
        """The pre-provider key ring (KEK versions, grant key) of the same master key."""
        return self._keyring

    def seal(self, secret: bytes, context: bytes) -> bytes:
        head = header(SEALED, self._root_id)
        return head + self._sealer.seal(secret, head + context)

    def unseal(self, blob: bytes, context: bytes) -> bytes:
        head, body = self._body(blob, SEALED)
        return self._sealer.open(body, head + context)

    def create_kek(self, kek_id: str) -> bytes:
        return self.seal(_crypto.new_key(), kek_context(kek_id))

    def open_kek(self, kek_id: str, record: bytes) -> Kek:
        if not record:
            raise KeyDestroyed(kek_id)
        return HostKek(kek_id, self.unseal(record, kek_context(kek_id)))

    def destroy_kek(self, kek_id: str, record: bytes) -> None:
        """Nothing to do here: the record is the KEK, and erasing it is the caller's part."""


class FileKeyProvider(_HostKeyProvider):
    """The root key from a key file (default `coatcheck.key`), created 0600 on first use."""

    kind: ClassVar[str] = "file"

    def __init__(self, path: Path, setting: str = "COATCHECK_KEY_FILE") -> None:
        self._path = path
        super().__init__(read_key_file(path, setting), setting)

    def __repr__(self) -> str:
        return f"FileKeyProvider(path={str(self._path)!r}, root_id={self.root_id!r})"


class EnvKeyProvider(_HostKeyProvider):
    """The root key from `COATCHECK_MASTER_KEY` (base64, at least 32 bytes)."""

    kind: ClassVar[str] = "env"

    def __init__(self, value_b64: str, setting: str = ENV_SETTING) -> None:
        super().__init__(parse_master_key(value_b64, setting), setting)

    @classmethod
    def from_environ(cls, setting: str = ENV_SETTING) -> EnvKeyProvider:
        """The provider of the environment variable; a missing one names the setting."""
        value = os.environ.get(setting)
        if value is None:
            raise KeyConfigError(setting, f"{setting}: not set")
        return cls(value, setting)

    def __repr__(self) -> str:
        return f"EnvKeyProvider(root_id={self.root_id!r})"
