"""coatcheck's PII vault: envelope-encrypted values behind references, audited access.

Imports nothing from `middleware` or `actions`; knows no HTTP and no detection.
"""

from coatcheck.vault.audit import AuditRecord, AuditReport
from coatcheck.vault.bootstrap import open_vault
from coatcheck.vault.db import make_engine, upgrade
from coatcheck.vault.errors import (
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
from coatcheck.vault.grants import Grant, GrantSigner
from coatcheck.vault.keyfile import load_master_key, validate_master_key
from coatcheck.vault.keyring import KeyRing
from coatcheck.vault.lifecycle import (
    EndSummary,
    ExpirySummary,
    Holdings,
    Policies,
    Retention,
    ValueState,
)
from coatcheck.vault.models import Base
from coatcheck.vault.predicates import (
    Digits,
    Equals,
    Length,
    Luhn,
    Predicate,
    Regex,
    predicate_from_dict,
)
from coatcheck.vault.vault import RefInfo, Vault

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
