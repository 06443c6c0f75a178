"""Every error the vault raises, under one root so callers catch one thing.

The tree::

    VaultError
    ├── KeyConfigError(setting)          master key missing, short or a placeholder
    ├── DecryptionError                  ciphertext, nonce, AAD or key wrong (opaque on purpose)
    ├── UnknownReference(ref)            no such reference in this conversation
    ├── ConversationShredded(ref)        the conversation's data key was destroyed
    ├── ValueExpired(ref)                the value passed its TTL and was forgotten
    ├── GrantRefused(reason)             grant does not cover this reveal (audited)
    │   └── ConversationEnded(ref)       the value's conversation ended (kept, not readable)
    ├── InvalidGrant                     grant token failed verification (opaque on purpose)
    ├── InvalidPredicate(name)           a check predicate was malformed
    ├── InvalidArgument(name)            a conversation id, entity type or value is malformed
    ├── ConcurrencyError(name)           retries exhausted on a write race
    └── AuditChainTampered               the audit head and the audit key disagree

Errors carry names (a setting, a reference id, a reason, a field) and never a value, so
they are safe to log, render in an HTTP body or show in a traceback.
"""

from __future__ import annotations

__all__ = [
    "AuditChainTampered",
    "ConcurrencyError",
    "ConversationEnded",
    "ConversationShredded",
    "DecryptionError",
    "GrantRefused",
    "InvalidArgument",
    "InvalidGrant",
    "InvalidPredicate",
    "KeyConfigError",
    "UnknownReference",
    "ValueExpired",
    "VaultError",
]


class VaultError(Exception):
    """Root of the vault's errors; the message never holds a value."""

    default_message = "vault error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class KeyConfigError(VaultError):
    """The master key setting is unusable; names the setting an operator must fix."""

    def __init__(self, setting: str, message: str | None = None) -> None:
        self.setting = setting
        super().__init__(message or f"{setting}: master key missing, too short or a placeholder")


class DecryptionError(VaultError):
    """Authenticated decryption failed; deliberately says nothing about why."""

    default_message = "decryption failed"


class UnknownReference(VaultError):
    """The reference does not exist in this conversation."""

    def __init__(self, ref: str, message: str | None = None) -> None:
        self.ref = ref
        super().__init__(message or f"unknown reference {ref!r}")


class ConversationShredded(VaultError):
    """The reference existed but its conversation key was shredded; no value is recoverable."""

    def __init__(self, ref: str, message: str | None = None) -> None:
        self.ref = ref
        super().__init__(message or f"reference {ref!r} belongs to a shredded conversation")


class ValueExpired(VaultError):
    """The value passed its time-to-live (or its retention deadline) and was forgotten."""

    def __init__(self, ref: str, message: str | None = None) -> None:
        self.ref = ref
        super().__init__(message or f"reference {ref!r} expired; the value was forgotten")


class GrantRefused(VaultError):
    """The grant does not cover this reveal (wrong conversation, type, or expired)."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or f"grant refused: {reason}")


class ConversationEnded(GrantRefused):
    """The value is kept after its conversation ended; grants and checks no longer reach it."""

    def __init__(self, ref: str, message: str | None = None) -> None:
        self.ref = ref
        super().__init__("ended", message or f"reference {ref!r}: the conversation has ended")


class InvalidGrant(VaultError):
    """A grant token failed verification; one opaque error for every failure mode."""

    default_message = "invalid grant"


class InvalidPredicate(VaultError):
    """A predicate was malformed; names the offending field."""

    def __init__(self, name: str, message: str | None = None) -> None:
        self.name = name
        super().__init__(message or f"invalid predicate field {name!r}")


class ConcurrencyError(VaultError):
    """A write kept colliding with other workers and the retries ran out."""

    def __init__(self, name: str, message: str | None = None) -> None:
        self.name = name
        super().__init__(message or f"{name}: too many concurrent write conflicts")


class InvalidArgument(VaultError):
    """An argument is malformed (wrong type, empty, too long); names the argument."""

    def __init__(self, name: str, message: str | None = None) -> None:
        self.name = name
        super().__init__(message or f"invalid argument {name!r}")


class AuditChainTampered(VaultError):
    """The audit key exists but the chain's head says it was never MAC-linked (or the
    reverse): the head was rewritten.  Raised when a vault opens; names no row or value."""

    default_message = (
        "audit chain: the audit key and audit_head.mac_from disagree (the chain's head was "
        "rewritten); restore the database, or check it with coatcheck audit verify "
        "--checkpoint FILE"
    )
