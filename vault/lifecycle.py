"""Lifecycle policy and results: what happens to values when a conversation ends or ages.

The vault knows three retention modes per entity type (docs/lifecycle.md):

- `shred`: the value is destroyed when its conversation ends (the privacy-first default);
- `mask`: the value is kept, sealed, after the end (only a reveal policy that allows it,
  e.g. an auditor's `reporting` reveal, may open it);
- `retain` for N seconds: kept after the end, then destroyed.

And a time-to-live per type: a value is forgotten (ciphertext and blind index removed)
N seconds after it was vaulted, whether its conversation is live or ended.  Temporary
references carry their own TTL and are always destroyed at the end.

Nothing here knows roles, HTTP or YAML: the gateway parses the config and decides who may
read what through `ValueState`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from coatcheck.vault.outcomes import Outcome

__all__ = [
    "SHRED",
    "EndSummary",
    "ExpirySummary",
    "Holdings",
    "Policies",
    "Retention",
    "ValueState",
]

Mode = Literal["shred", "mask", "retain"]

# Value statuses stored in `stored_values.status` (NULL = live, ordinary value).
TEMPORARY = "temporary"
MASKED = "masked"
RETAINED = "retained"
SHREDDED = "shredded"
EXPIRED = "expired"


@dataclass(frozen=True)
class Retention:
    """What ending a conversation does to values of one type."""

    mode: Mode = "shred"
    seconds: float | None = None  # `retain` only: how long after the end

    def __post_init__(self) -> None:
        if self.mode not in ("shred", "mask", "retain"):
            raise ValueError("retention mode must be shred, mask or retain")
        if (self.mode == "retain") != (self.seconds is not None):
            raise ValueError("retain needs seconds; shred and mask take none")
        if self.seconds is not None and not self.seconds > 0:
            raise ValueError("retain seconds must be positive")


SHRED = Retention("shred")


@dataclass(frozen=True)
class Policies:
    """Per-type retention and TTL; types not listed get `default` and no TTL."""

    retention: Mapping[str, Retention] = field(default_factory=dict)
    ttl: Mapping[str, float] = field(default_factory=dict)
    default: Retention = SHRED

    def retention_for(self, entity_type: str) -> Retention:
        return self.retention.get(entity_type, self.default)

    def ttl_for(self, entity_type: str) -> float | None:
        return self.ttl.get(entity_type)


@dataclass(frozen=True)
class ValueState:
    """What a reveal policy may know about a stored value before it is opened (no value).

    `ended`: the value's key epoch has ended (its conversation ended after it was vaulted).
    `status`: None for an ordinary live value, "temporary", or after the end what was kept:
    "masked" or "retained".  Gone values (shredded, expired) never reach a policy.
    """

    ref: str
    entity_type: str
    ended: bool
    status: str | None
    expires_at: float | None


@dataclass(frozen=True)
class Holdings:
    """What the vault still holds for a conversation id, over all its key epochs."""

    epochs: int  # key epochs ever created (0: nothing was ever vaulted)
    live: bool  # an epoch that has not ended (values may be added and read)
    masked: int  # values kept after an end under `mask`
    retained: int  # values kept after an end under `retain`
    retain_until: float | None  # when the last retained value goes

    @property
    def status(self) -> str:
        """`active`, `masked`, `retained`, `shredded` (values existed, none kept) or `ended`."""
        if self.live:
            return "active"
        if self.masked:
            return "masked"
        if self.retained:
            return "retained"
        return "shredded" if self.epochs else "ended"


@dataclass(frozen=True)
class EndSummary:
    """The outcome of `Vault.end` for one conversation."""

    ended_epochs: int
    shredded: int  # values destroyed by this end (shred types, temporary, past TTL)
    masked: int
    retained: int
    holdings: Holdings  # what remains afterwards, over all epochs

    @property
    def outcome(self) -> Outcome:
        """The audit outcome: what this end did (`noop` when there was nothing to end)."""
        if self.masked:
            return Outcome.MASKED
        if self.retained:
            return Outcome.RETAINED
        return Outcome.SHREDDED if self.ended_epochs else Outcome.NOOP


@dataclass(frozen=True)
class ExpirySummary:
    """One expiry pass: values forgotten and key epochs shredded, by conversation id."""

    forgotten: int = 0
    shredded_epochs: int = 0
    conversations: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UpkeepSummary:
    """One key-maintenance pass (`Vault.maintain`; docs/keys.md, "Buckets").

    `moved`: data keys re-wrapped (survivors of ending buckets, legacy epochs);
    `destroyed`: KEKs destroyed; `legacy_left`: epochs still under a pre-provider KEK;
    `settled`: the files hold no page from before the shreds so far (SQLite: the WAL was
    checkpointed and truncated; PostgreSQL: `kek_buckets` was rewritten), False when it
    must be retried (a reader held an old snapshot, a lock was busy).
    """

    moved: int = 0
    destroyed: int = 0
    legacy_left: int = 0
    settled: bool = True


@dataclass(frozen=True)
class SubjectValue:
    """One vaulted value handed to its own subject (`Vault.subject_export`)."""

    conversation_id: str
    ref: str
    entity_type: str
    created_at: float
    status: str | None  # None (live), "temporary", "masked" or "retained"
    value: str = field(repr=False)


@dataclass(frozen=True)
class ErasureSummary:
    """`Vault.subject_erase`: what was destroyed for one person."""

    conversations: int  # conversation ids that held anything
    epochs: int  # key epochs whose data key was destroyed now
    keks_destroyed: int  # KEKs retired and destroyed so older copies open nothing
    final: bool  # True when every KEK involved is one whose destroy is real (PKCS#11, transit)
