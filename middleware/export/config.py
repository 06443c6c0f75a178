"""The export redaction config: an allow or deny list of dotted paths.

Paths are plain dotted names (`turns.text`); a segment that meets a list applies to every
element. Index syntax (`turns[0].text`) is rejected on purpose: a positional rule silently
changes meaning as conversations grow, and per-element policy is not a privacy control.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

__all__ = [
    "MANDATORY_FIELDS",
    "PRIVACY_FIRST",
    "ExportConfig",
    "ExportSection",
    "OutboxSettings",
    "SinkSpec",
]

MANDATORY_FIELDS: frozenset[str] = frozenset({"conversation_id", "tenant", "ended_at"})
"""Top-level fields every exported record keeps: without them a record cannot be joined,
deduplicated or expired by the receiver."""

_PATH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class ExportConfig(BaseModel):
    """`{"type": "allow" | "deny", "fields": [dotted paths]}`, validated at load time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["allow", "deny"]
    # Bounded: the config is stored in one row and compiled on every export.
    fields: tuple[Annotated[str, Field(max_length=200)], ...] = Field(default=(), max_length=256)

    @field_validator("fields")
    @classmethod
    def _paths_are_dotted_names(cls, fields: tuple[str, ...]) -> tuple[str, ...]:
        # Messages name the position, never the path: an error body must not repeat what
        # the request carried (it may be anything, PII included).
        for index, path in enumerate(fields):
            if not _PATH_RE.fullmatch(path):
                raise ValueError(
                    f"fields[{index}]: invalid path: use dotted names like 'turns.text' "
                    "(list indices such as 'turns[0]' are not supported)"
                )
        return fields

    @model_validator(mode="after")
    def _deny_spares_mandatory(self) -> ExportConfig:
        if self.type == "deny":
            for index, path in enumerate(self.fields):
                head = path.split(".", 1)[0]
                if head in MANDATORY_FIELDS:  # `head` is one of ours, so it may be named
                    raise ValueError(f"fields[{index}]: {head!r} is mandatory and cannot be denied")
        return self

    def allowed_paths(self) -> tuple[str, ...]:
        """The allow list with the mandatory fields added (they always leave)."""
        return tuple(sorted(MANDATORY_FIELDS)) + self.fields


PRIVACY_FIRST = ExportConfig(type="allow", fields=())


class SinkSpec(BaseModel):
    """One destination: exactly one of `jsonl` (a file path) or `webhook` (an http(s) URL).

    A webhook on a loopback or private address (by IP or after name resolution) is refused
    at send time unless `allow_private_network: true` says the receiver is meant to be there.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    jsonl: Path | None = None
    webhook: HttpUrl | None = None
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    allow_private_network: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> SinkSpec:
        if (self.jsonl is None) == (self.webhook is None):
            raise ValueError("give exactly one of jsonl or webhook")
        if self.allow_private_network and self.webhook is None:
            raise ValueError("allow_private_network applies to webhook sinks only")
        return self


class OutboxSettings(BaseModel):
    """`export.outbox:` — how the outbox worker retries a sink (docs/export.md).

    A failed delivery waits `backoff_seconds * 2**(attempts-1)` (at most
    `max_backoff_seconds`) before the next attempt; after `max_attempts` the record is a
    dead letter.  A claimed row is someone else's for `lease_seconds` (longer than any
    sink's timeout): a worker that dies mid-delivery leaves it to be retried after that.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    poll_seconds: float = Field(default=1.0, gt=0, le=60)
    batch: int = Field(default=50, ge=1, le=1000)
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_seconds: float = Field(default=5.0, gt=0, le=3600)
    max_backoff_seconds: float = Field(default=3600.0, gt=0, le=86400)
    lease_seconds: float = Field(default=120.0, ge=1, le=3600)


class ExportSection(BaseModel):
    """The YAML `export:` section: where exported records go (the filter lives in the DB)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sinks: tuple[SinkSpec, ...] = Field(default=(), max_length=16)
    outbox: OutboxSettings = OutboxSettings()

    @model_validator(mode="after")
    def _lease_outlives_timeouts(self) -> ExportSection:
        longest = max((s.timeout_seconds for s in self.sinks), default=0.0)
        if self.outbox.lease_seconds <= longest:
            raise ValueError("outbox.lease_seconds must be longer than every sink's timeout")
        return self
