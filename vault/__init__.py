"""coatcheck's PII vault: envelope-encrypted values behind references, audited access.

Imports nothing from `middleware` or `actions`; knows no HTTP and no detection.  This
`__all__` is the vault's public surface; modules with a leading underscore are private
to the vault (nothing outside `vault/` imports them; tests may).
"""

from coatcheck.vault._pseudonyms import LegacyRows
from coatcheck.vault._subjects import PSEUDONYM_RE
from coatcheck.vault._transaction import Statement, Transaction, transaction
from coatcheck.vault.audit import AuditRecord, AuditReport
from coatcheck.vault.bootstrap import open_vault
from coatcheck.vault.db import make_engine, upgrade
from coatcheck.vault.errors import (
    AuditChainTampered,
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
    ErasureSummary,
    ExpirySummary,
    Holdings,
    Policies,
    Retention,
    SubjectValue,
    UpkeepSummary,
    ValueState,
)
from coatcheck.vault.models import Base
from coatcheck.vault.outcomes import Outcome
from coatcheck.vault.predicates import (
    Digits,
    Equals,
    Length,
    Luhn,
    Predicate,
    Regex,
    predicate_from_dict,
)
from coatcheck.vault.vault import RefInfo, RootRotation, Vault

__all__ = [
    "PSEUDONYM_RE",
    "AuditChainTampered",
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
    "ErasureSummary",
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
    "LegacyRows",
    "Length",
    "Luhn",
    "Outcome",
    "Policies",
    "Predicate",
    "RefInfo",
    "Regex",
    "Retention",
    "RootRotation",
    "Statement",
    "SubjectValue",
    "Transaction",
    "UnknownReference",
    "UpkeepSummary",
    "ValueExpired",
    "ValueState",
    "Vault",
    "VaultError",
    "load_master_key",
    "make_engine",
    "open_vault",
    "predicate_from_dict",
    "transaction",
    "upgrade",
    "validate_master_key",
]
