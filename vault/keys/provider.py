"""The root of trust behind one interface: what the vault asks of a key provider.

A provider holds the **root key** and offers three things (docs/keys.md has the hierarchy):

1. `seal` / `unseal`: the root wraps small secrets the database keeps only sealed (the
   audit-MAC key, the pseudonym key, the checkpoint-signing key: `ServiceKeys`; and, for
   providers that cannot hold objects, the KEKs themselves).  AES-256-GCM, the caller's
   context bound as associated data, the root's id in a clear header so a blob names the
   root it needs (rotation, migration).
2. **KEKs by name** (`create_kek`, `open_kek`, `destroy_kek`): a key-encryption key per time
   bucket, e.g. `default/live/2025-01-02/0`.  `create_kek` returns a *record* for the
   caller to store next to the name (the `keks` table).  For a provider that holds
   objects (PKCS#11) the KEK is a non-extractable token object and the record only points
   at it; otherwise the record *is* the KEK, sealed under the root.  `open_kek` returns a
   `Kek` that wraps data keys; `destroy_kek` destroys what the provider holds.
3. `destroy_is_final`: whether destroying a KEK defeats a copy of the database taken
   before (True only where the KEK lived outside the database and its destroy is real).
   When False, the caller's deletion of the record is the whole destroy, and an older copy
   of the record plus the root key still opens it: the documented bound is "the live
   database and its files" (docs/keys.md, "The bound per provider").

Every provider is safe to share between threads; a `Kek` is safe too.  Providers are
context managers (`close` releases sessions); repr never shows key material.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Self

from coatcheck.vault.errors import DecryptionError
from coatcheck.vault.keys.errors import UnknownRoot

if TYPE_CHECKING:
    from coatcheck.vault.keyring import KeyRing

__all__ = [
    "SEALED",
    "TOKEN_KEK",
    "Kek",
    "KeyProvider",
    "header",
    "kek_context",
    "root_of",
    "split",
]

SEALED = b"S1"
"""Tag of a blob sealed by a root: `S1 | len | root_id | nonce(12) | ciphertext+tag(16)`."""
TOKEN_KEK = b"K1"
"""Tag of a record pointing at a KEK held by the provider: `K1 | len | root_id | object id`."""


def header(tag: bytes, root_id: str) -> bytes:
    """The clear header of a blob or record; bound into the AEAD's associated data."""
    raw = root_id.encode("ascii")
    return tag + len(raw).to_bytes(1, "big") + raw


def split(blob: bytes, tag: bytes) -> tuple[bytes, str, bytes]:
    """(header, root id, body) of a blob with `tag`; a malformed blob is `DecryptionError`."""
    if len(blob) < 3 or blob[:2] != tag:
        raise DecryptionError()
    end = 3 + blob[2]
    if len(blob) < end:
        raise DecryptionError()
    try:
        root_id = blob[3:end].decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionError() from None
    return blob[:end], root_id, blob[end:]


def root_of(blob: bytes) -> str:
    """The root id in a sealed blob's or KEK record's header; `DecryptionError` if neither."""
    for tag in (SEALED, TOKEN_KEK):
        try:
            return split(blob, tag)[1]
        except DecryptionError:
            continue
    raise DecryptionError()


def kek_context(kek_id: str) -> bytes:
    """Associated data for a KEK sealed as a record: a record moved to another name fails."""
    raw = kek_id.encode("utf-8")
    return b"coatcheck/kek/v1" + len(raw).to_bytes(4, "big") + raw


class Kek(ABC):
    """One key-encryption key: wraps data keys with AES-256-GCM, bound to a context.

    The wrapped form is `nonce(12) | ciphertext | tag(16)`, the vault's existing format, so a
    wrapped data key looks the same whichever provider made it.
    """

    __slots__ = ("kek_id",)

    def __init__(self, kek_id: str) -> None:
        self.kek_id = kek_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kek_id!r})"

    @abstractmethod
    def wrap(self, key: bytes, context: bytes) -> bytes:
        """Wrap a data key; `context` (tenant, conversation, epoch...) must match on unwrap."""

    @abstractmethod
    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        """The data key; `DecryptionError` for any mismatch, `KeyDestroyed` if it is gone."""


class KeyProvider(ABC):
    """A root of trust: seals small secrets, creates, opens and destroys named KEKs."""

    kind: ClassVar[str]
    """`file`, `env`, `pkcs11`: the value of `COATCHECK_KEY_PROVIDER` that selects it."""
    destroy_is_final: bool
    """True when a destroyed KEK cannot be brought back from an older database copy."""

    @property
    @abstractmethod
    def root_id(self) -> str:
        """A stable, non-secret id of the root key (in every blob header; names it in errors)."""

    @abstractmethod
    def seal(self, secret: bytes, context: bytes) -> bytes:
        """`secret` encrypted under the root, bound to `context`."""

    @abstractmethod
    def unseal(self, blob: bytes, context: bytes) -> bytes:
        """The secret; `UnknownRoot` if another root sealed it, else opaque `DecryptionError`."""

    @abstractmethod
    def create_kek(self, kek_id: str) -> bytes:
        """Make a fresh KEK named `kek_id`; the record to store beside the name."""

    @abstractmethod
    def open_kek(self, kek_id: str, record: bytes) -> Kek:
        """The KEK of a stored record; `KeyDestroyed` if it was destroyed (or the record erased)."""

    @abstractmethod
    def destroy_kek(self, kek_id: str, record: bytes) -> None:
        """Destroy what the provider holds of the KEK (idempotent); the caller erases the record."""

    def holds(self, blob: bytes) -> bool:
        """Whether this provider's root made `blob` (a sealed blob or a KEK record)."""
        try:
            return root_of(blob) == self.root_id
        except DecryptionError:
            return False

    def _body(self, blob: bytes, tag: bytes) -> tuple[bytes, bytes]:
        """(header, body) of a `tag` blob made under this root; `UnknownRoot` if another's."""
        root_id = root_of(blob)
        if root_id != self.root_id:
            raise UnknownRoot(root_id)
        head, _, body = split(blob, tag)
        return head, body

    def legacy_keyring(self) -> KeyRing | None:
        """The key ring of databases written before key providers, if this root can open
        it (host providers: the same master key); None otherwise."""
        return None

    def close(self) -> None:  # noqa: B027  (optional hook: most providers hold nothing)
        """Release sessions; the provider is unusable afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
