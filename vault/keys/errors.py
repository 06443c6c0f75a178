"""The key providers' errors, under the vault's one root (`VaultError`).

Wrong key, wrong context and tampered blobs stay the vault's one opaque `DecryptionError`;
what is added here names a key or a provider, never key material::

    VaultError
    ├── KeyConfigError(setting)        (vault.errors) a provider setting is unusable
    ├── DecryptionError                (vault.errors) wrong key, context or blob: opaque
    ├── KeyDestroyed(kek_id)           the key-encryption key is gone (shredded on purpose)
    ├── UnknownRoot(root_id)           a blob sealed under a root this provider does not hold
    ├── InvalidCheckpoint              a checkpoint's format or signature is wrong: opaque
    └── ProviderUnavailable(provider)  the provider failed (token removed, library error)
"""

from __future__ import annotations

from coatcheck.vault.errors import VaultError

__all__ = ["InvalidCheckpoint", "KeyDestroyed", "ProviderUnavailable", "UnknownRoot"]


class KeyDestroyed(VaultError):
    """The KEK was destroyed: what it wrapped is unrecoverable (the vault answers "shredded")."""

    def __init__(self, kek_id: str) -> None:
        self.kek_id = kek_id
        super().__init__(f"key-encryption key {kek_id!r} was destroyed")


class UnknownRoot(VaultError):
    """Sealed under another root key: mid-rotation, the old provider must still be listed."""

    def __init__(self, root_id: str) -> None:
        self.root_id = root_id
        super().__init__(f"sealed under root key {root_id!r}, which this provider does not hold")


class ProviderUnavailable(VaultError):
    """The provider itself failed; carries the provider's kind and the error's class name."""

    def __init__(self, provider: str, cause: str) -> None:
        self.provider = provider
        self.cause = cause
        super().__init__(f"key provider {provider!r} failed: {cause}")


class InvalidCheckpoint(VaultError):
    """A checkpoint failed to parse or verify; one opaque error for every failure."""

    default_message = "invalid audit checkpoint"
