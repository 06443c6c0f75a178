"""coatcheck's PII vault: envelope-encrypted values behind references, audited access.

Imports nothing from `middleware` or `actions`; knows no HTTP and no detection.
"""

from vault.audit import AuditRecord, AuditReport
from vault.bootstrap import open_vault
from vault.db import make_engine, upgrade
from vault.errors import (
    ConcurrencyError,
    ConversationShredded,
    DecryptionError,
    GrantRefused,
    InvalidArgument,
    InvalidGrant,
    InvalidPredicate,
    KeyConfigError,
    UnknownReference,
    VaultError,
)
from vault.grants import Grant, GrantSigner
from vault.keyfile import load_master_key, validate_master_key
from vault.keyring import KeyRing
from vault.models import Base
from vault.predicates import Digits, Equals, Length, Luhn, Predicate, Regex, predicate_from_dict
from vault.vault import RefInfo, Vault

__all__ = [
    "AuditRecord",
    "AuditReport",
    "Base",
    "ConcurrencyError",
    "ConversationShredded",
    "DecryptionError",
    "Digits",
    "Equals",
    "Grant",
    "GrantRefused",
    "GrantSigner",
    "InvalidArgument",
    "InvalidGrant",
    "InvalidPredicate",
    "KeyConfigError",
    "KeyRing",
    "Length",
    "Luhn",
    "Predicate",
    "RefInfo",
    "Regex",
    "UnknownReference",
    "Vault",
    "VaultError",
    "load_master_key",
    "make_engine",
    "open_vault",
    "predicate_from_dict",
    "upgrade",
    "validate_master_key",
]
