"""Access decisions: may this stored value be opened, for this caller, now?

Pure functions over a found row (its value columns and its epoch's), no database and no
keys, so the rules read in one place.  A decision is a `Verdict`: an `Outcome` and, for a
refusal, its reason.  The order is fixed: unknown -> the caller's rule (a grant, a check
on a live conversation, a staff policy) -> gone (shredded, expired).  A grant's and a
check's rules refuse before "gone" is said; a policy steps aside for gone values, so
staff learn "shredded" / "expired" whatever their role.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coatcheck.vault.grants import Grant
from coatcheck.vault.lifecycle import RETAINED, SHREDDED, ValueState
from coatcheck.vault.outcomes import Outcome

__all__ = [
    "ENDED",
    "ERROR",
    "KEY_GONE",
    "OK",
    "UNKNOWN",
    "Decide",
    "Verdict",
    "check_decider",
    "grant_decider",
    "grant_failure",
    "policy_decider",
    "precheck",
]


@dataclass(frozen=True, slots=True)
class Verdict:
    """An outcome and, for a refusal, its reason; with its two audit texts made once (a
    batched reveal writes one per reference)."""

    outcome: Outcome
    reason: str | None = None  # a refusal's reason (`entity_type`, a policy's code...)
    brief: str = field(init=False)  # the audit text: `refused` for any refusal
    detailed: str = field(init=False)  # ... `refused:<reason>`

    def __post_init__(self) -> None:
        object.__setattr__(self, "brief", self.outcome.audit_text(self.reason))
        object.__setattr__(self, "detailed", self.outcome.audit_text(self.reason, detailed=True))


OK = Verdict(Outcome.OK)
UNKNOWN = Verdict(Outcome.UNKNOWN)
ENDED = Verdict(Outcome.ENDED)
ERROR = Verdict(Outcome.ERROR)
_SHREDDED = Verdict(Outcome.SHREDDED)
KEY_GONE = _SHREDDED  # the epoch's KEK was destroyed: what it wrapped is shredded
_EXPIRED = Verdict(Outcome.EXPIRED)

# A caller's rule: a refusal for the found row, or None to let it through.
Decide = Callable[[Any], Verdict | None]


def _gone(row: Any, now: float) -> Verdict | None:
    """Why a found value can no longer be opened (shredded / expired), else None."""
    if row.wrapped_dek is None:
        return _SHREDDED
    expired = row.expires_at is not None and row.expires_at <= now
    if row.ciphertext is None or expired:
        # A retained value past its deadline is shredded by policy; others expired.
        return _EXPIRED if row.status not in (RETAINED, SHREDDED) else _SHREDDED
    return None


def _ended(row: Any, now: float) -> bool:
    """The value is still held but its conversation (key epoch) has ended."""
    return row.ended_at is not None and _gone(row, now) is None


def precheck(row: Any | None, decide: Decide, now: float) -> Verdict | None:
    """unknown -> the caller's refusal -> gone; None: the value may be opened."""
    if row is None:
        return UNKNOWN
    refusal = decide(row)
    if refusal is not None:
        return refusal
    return _gone(row, now)


def grant_decider(conversation_id: str, grant: Grant, now: float) -> Decide:
    """A grant covers its conversation and types until it expires, live values only."""

    def decide(row: Any) -> Verdict | None:
        if grant.conversation_id != conversation_id:
            return Verdict(Outcome.REFUSED, "conversation")
        if grant.expires_at <= now:
            return Verdict(Outcome.REFUSED, "expired")
        if row.entity_type not in grant.entity_types:
            return Verdict(Outcome.REFUSED, "entity_type")
        if _ended(row, now):
            return ENDED
        return None

    return decide


def grant_failure(conversation_id: str, grant: Grant, now: float, verdict: Verdict) -> Verdict:
    """What a failed grant reveal raises: a foreign or expired grant says so even for an
    unknown reference (the audit row keeps `unknown`), so it probes nothing."""
    if verdict.outcome is Outcome.UNKNOWN:
        if grant.conversation_id != conversation_id:
            return Verdict(Outcome.REFUSED, "conversation")
        if grant.expires_at <= now:
            return Verdict(Outcome.REFUSED, "expired")
    return verdict


def check_decider(now: float, entity_type: str | None = None) -> Decide:
    """Checks, like grants, reach only values of a live conversation; with `entity_type`,
    only values of that type (any other is answered as unknown)."""

    def decide(row: Any) -> Verdict | None:
        if entity_type is not None and row.entity_type != entity_type:
            return UNKNOWN
        return ENDED if _ended(row, now) else None

    return decide


def policy_decider(policy: Callable[[ValueState], str | None], now: float) -> Decide:
    """A caller's policy (staff rules) sees the value's state, never the value; it is not
    asked about gone values."""

    def decide(row: Any) -> Verdict | None:
        if _gone(row, now) is not None:
            return None
        state = ValueState(
            row.ref, row.entity_type, row.ended_at is not None, row.status, row.expires_at
        )
        reason = policy(state)
        return None if reason is None else Verdict(Outcome.REFUSED, reason)

    return decide
