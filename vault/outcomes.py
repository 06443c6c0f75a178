"""What an access attempt (or a lifecycle action) came to: one enum, one table of errors.

Why: the vault used to pass outcomes around as strings (`"refused:ended"`, `"unknown"`)
and decode them again in three places (the reveal paths, the staff reveal, the gateway's
own refusals), each with its own `startswith("refused:")`.  Now a decision is an
`Outcome` (plus, for a refusal, its reason), the audit row's text is derived from it in
one method, and the exception a caller gets is looked up in one table (`Outcome.error`).

The audit rows keep the text they always had (it is inside the hash chain): `ok`,
`refused` or `refused:<reason>` (capped at the column's 32 characters), `unknown`,
`shredded`, `expired`, `error`, and for lifecycle rows `noop`, `masked`, `retained`.
`Outcome.from_audit` reads a stored text back.  `ENDED` (the vault's own refusal of a
value whose conversation has ended) is written as a refusal with reason `ended`, and is
read back as one: it differs from `REFUSED` only in the error it raises
(`ConversationEnded`, which is a `GrantRefused` with that reason).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum

from coatcheck.vault.errors import (
    ConversationEnded,
    ConversationShredded,
    DecryptionError,
    GrantRefused,
    UnknownReference,
    ValueExpired,
    VaultError,
)

__all__ = ["Outcome"]

_COLUMN = 32  # audit_log.outcome is String(32)


class Outcome(StrEnum):
    """One outcome; equal to its own word (`Outcome.OK == "ok"`)."""

    OK = "ok"
    REFUSED = "refused"  # by a grant, a caller's policy or the gateway; the reason travels beside
    ENDED = "ended"  # refused by the vault: the value's conversation has ended
    UNKNOWN = "unknown"
    SHREDDED = "shredded"
    EXPIRED = "expired"
    ERROR = "error"  # the value failed to decrypt
    NOOP = "noop"  # an end or shred that found nothing to do
    MASKED = "masked"  # an end that kept values under `mask`
    RETAINED = "retained"  # an end that kept values under `retain`

    @property
    def refusal(self) -> bool:
        return self is Outcome.REFUSED or self is Outcome.ENDED

    def audit_text(self, reason: str | None = None, *, detailed: bool = False) -> str:
        """The audit row's `outcome` column: a refusal is `refused`, or with `detailed`
        `refused:<reason>`; every other outcome is its own word."""
        if not self.refusal:
            return self.value
        why = "ended" if self is Outcome.ENDED else reason
        return f"refused:{why}"[:_COLUMN] if detailed and why is not None else "refused"

    @classmethod
    def from_audit(cls, text: str) -> tuple[Outcome, str | None] | None:
        """A stored `outcome` column read back: (outcome, refusal reason or None).

        None for a text no version of the vault writes (a row someone forged, say), so a
        viewer can still show it.
        """
        word, colon, reason = text.partition(":")
        try:
            outcome = cls(word)
        except ValueError:
            return None
        if outcome is Outcome.ENDED or (colon and outcome is not Outcome.REFUSED):
            return None
        return outcome, reason if colon else None

    def error(self, ref: str, reason: str | None = None) -> VaultError | None:
        """The exception this outcome raises for reference `ref` (None: it raises nothing)."""
        make = _ERRORS.get(self)
        return None if make is None else make(ref, reason)


# The one table from outcome to the caller's exception.
_ERRORS: Mapping[Outcome, Callable[[str, str | None], VaultError]] = {
    Outcome.REFUSED: lambda _ref, reason: GrantRefused(
        Outcome.REFUSED.value if reason is None else reason
    ),
    Outcome.ENDED: lambda ref, _reason: ConversationEnded(ref),
    Outcome.UNKNOWN: lambda ref, _reason: UnknownReference(ref),
    Outcome.SHREDDED: lambda ref, _reason: ConversationShredded(ref),
    Outcome.EXPIRED: lambda ref, _reason: ValueExpired(ref),
    Outcome.ERROR: lambda _ref, _reason: DecryptionError(),
}
