"""coatcheck's PII vault: envelope-encrypted values behind references, audited access.

Imports nothing from `middleware` or `actions`; knows no HTTP and no detection.
"""

from vault.audit import AuditRecord, AuditReport
from vault.bootstrap import open_vault
from vault.db import make_engine, upgrade
from vault.errors import (
    ConcurrencyError,
    ConversationEnded,
    ConversationShredded,
    DecryptionError,
    GrantRefused,
    InvalidArgument,
    InvalidGrant,
    InvalidPredicate,
    KeyConfigError,
    UnknownReference,
    ValueExpired,
    VaultError,
)
from vault.grants import Grant, GrantSigner
from vault.keyfile import load_master_key, validate_master_key
from vault.keyring import KeyRing
from vault.lifecycle import (
    EndSummary,
    ExpirySummary,
    Holdings,
    Policies,
    Retention,
    ValueState,
)
from vault.models import Base
from vault.predicates import Digits, Equals, Length, Luhn, Predicate, Regex, predicate_from_dict
from vault.vault import RefInfo, Vault

__all__ = [
    "AuditRecord",
    "AuditReport",
    "Base",
    "ConcurrencyError",
    "ConversationEnded",
    "ConversationShredded",
    "DecryptionError",
    "Digits",
    "EndSummary",
    "Equals",
    "ExpirySummary",
    "Grant",
    "GrantRefused",
    "GrantSigner",
    "Holdings",
    "InvalidArgument",
    "InvalidGrant",
    "InvalidPredicate",
    "KeyConfigError",
    "KeyRing",
    "Length",
    "Luhn",
    "Policies",
    "Predicate",
    "RefInfo",
    "Regex",
    "Retention",
    "UnknownReference",
    "ValueExpired",
    "ValueState",
    "Vault",
    "VaultError",
    "load_master_key",
    "make_engine",
    "open_vault",
    "predicate_from_dict",
    "upgrade",
    "validate_master_key",
]
