"""Key providers: the vault's root of trust behind one interface (docs/keys.md).

`KeyProvider` (seal, named KEKs, `destroy_is_final`) with `FileKeyProvider`,
`EnvKeyProvider`, `Pkcs11KeyProvider` (in `coatcheck.vault.keys.pkcs11`: it needs the
`pkcs11` extra) and `TransitKeyProvider` (in `coatcheck.vault.keys.transit`: HashiCorp Vault
/ OpenBao transit over httpx); `ProviderChain` for rotation and migration; `ServiceKeys` for the
audit-MAC, pseudonym and checkpoint keys sealed under the root; `open_provider` from settings.
"""

from coatcheck.vault.keys.chain import ProviderChain
from coatcheck.vault.keys.checkpoint import Checkpoint, CheckpointSigner, verify_checkpoint
from coatcheck.vault.keys.config import KINDS, ProviderSettings, open_provider
from coatcheck.vault.keys.errors import (
    InvalidCheckpoint,
    KeyDestroyed,
    ProviderUnavailable,
    UnknownRoot,
)
from coatcheck.vault.keys.host import EnvKeyProvider, FileKeyProvider
from coatcheck.vault.keys.provider import Kek, KeyProvider
from coatcheck.vault.keys.service_keys import (
    AUDIT_MAC,
    CHECKPOINT,
    GRANT,
    PSEUDONYM,
    MemoryKeyStore,
    SealedKeyStore,
    ServiceKeys,
)

__all__ = [
    "AUDIT_MAC",
    "CHECKPOINT",
    "GRANT",
    "KINDS",
    "PSEUDONYM",
    "Checkpoint",
    "CheckpointSigner",
    "EnvKeyProvider",
    "FileKeyProvider",
    "InvalidCheckpoint",
    "Kek",
    "KeyDestroyed",
    "KeyProvider",
    "MemoryKeyStore",
    "ProviderChain",
    "ProviderSettings",
    "ProviderUnavailable",
    "SealedKeyStore",
    "ServiceKeys",
    "UnknownRoot",
    "open_provider",
    "verify_checkpoint",
]
