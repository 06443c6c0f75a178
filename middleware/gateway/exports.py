"""Exporting conversation records to third parties, and the stored redaction config.

The config lives in one database row per tenant with a version, read on every export (one
primary-key lookup), so a change made through any worker applies to the very next record
on every worker without a restart or a cache to invalidate.  A conversation's end writes
its record to the outbox in the end's own transaction (`record_at_end`); the outbox worker
(`outbox.py`) delivers it.  Records are built from the
redacted history only: the vault is never opened, and display forms are cut down to bare
references (`mask` would otherwise hand part of a value to a third party).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

import anyio.from_thread
from anyio import CapacityLimiter, to_thread
from pydantic import ValidationError

from coatcheck.grammar import parse_references, replace_references
from coatcheck.middleware.export import (
    MANDATORY_FIELDS,
    ConversationRecord,
    EntityRef,
    ExportConfig,
    ExportSink,
    ExportSinkError,
    Turn,
    apply_export_config,
)
from coatcheck.middleware.gateway.errors import ConversationNotFound
from coatcheck.middleware.gateway.lifecycle import EndResult
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.vault import Transaction

__all__ = ["Exporter", "Status", "StoredConfig", "build_record"]

log = logging.getLogger(__name__)

Status = Literal["active", "ended", "masked", "retained", "shredded"]


@dataclass(frozen=True)
class StoredConfig:
    """The tenant's current config (None: the privacy-first default) and its version."""

    config: ExportConfig | None
    version: int

    def describe(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "type": "allow" if cfg is None else cfg.type,
            "fields": [] if cfg is None else list(cfg.fields),
            "mandatory": sorted(MANDATORY_FIELDS),
            "default": cfg is None,
            "version": self.version,
        }


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _bare(text: str) -> str:
    """References without their display form: nothing of a value, masked or not, leaves."""
    return replace_references(text, lambda ref: ref.reference)


def build_record(
    tenant: str,
    conversation_id: str,
    history: list[dict[str, Any]],
    status: Status = "active",
    ended_at: float | None = None,
    *,
    channel: str,
) -> ConversationRecord:
    """A `ConversationRecord` from redacted history lines (`Messages.history` rows);
    `channel` is the channel adapter's name."""
    turns: list[Turn] = []
    per_type: dict[str, int] = {}
    for line in history:
        refs = parse_references(line["text"])
        for ref in refs:
            per_type[ref.entity_type] = per_type.get(ref.entity_type, 0) + 1
        turns.append(
            Turn(
                direction="user" if line["direction"] == "in" else "bot",
                text=_bare(line["text"]),
                entities=[EntityRef(type=r.entity_type, ref=r.reference) for r in refs],
                at=_at(line["at"]),
            )
        )
    first, last = history[0]["at"], history[-1]["at"]
    metrics = {
        "turns": len(turns),
        "user_turns": sum(t.direction == "user" for t in turns),
        "bot_turns": sum(t.direction == "bot" for t in turns),
        "entities": {"total": sum(per_type.values()), "by_type": per_type},
        "duration_seconds": round(last - first, 3),
    }
    return ConversationRecord(
        conversation_id=conversation_id,
        tenant=tenant,
        started_at=_at(first),
        ended_at=None if ended_at is None else _at(ended_at),
        status=status,
        channel=channel,
        turns=turns,
        metrics=metrics,
    )


class Exporter:
    """Builds, filters (newest stored config) and delivers records to the sinks.

    `channel` is the channel adapter's name, recorded in every record; `sink_keys` name
    the configured sinks (`sink_key`) for the outbox rows written at each end.
    """

    def __init__(
        self,
        store: GatewayStore,
        sinks: Sequence[ExportSink],
        *,
        tenant: str,
        channel: str,
        limiter: CapacityLimiter,
        sink_keys: Sequence[str] = (),
    ) -> None:
        self._store = store
        self._sinks = tuple(sinks)
        self._sink_keys = tuple(sink_keys)
        self._tenant = tenant
        self._channel = channel
        self._limiter = limiter

    # -- the stored config ----------------------------------------------------------------

    def stored_config(self) -> StoredConfig:
        """The newest committed config (one indexed row); version 0 when never set.

        A row that no longer validates reads as the privacy-first default (and logs an
        error): stored by an older release whose rules allowed it (say, before a field
        became mandatory), it falls back to the narrowest export rather than fail or widen.
        """
        row = self._store.exports.read(self._tenant)
        if row is None:
            return StoredConfig(None, 0)
        payload, version = row
        if payload is None:
            return StoredConfig(None, version)
        try:
            config = ExportConfig.model_validate_json(payload)
        except ValidationError:
            log.error("stored export config is no longer valid; using the privacy-first default")
            return StoredConfig(None, version)
        return StoredConfig(config, version)

    def set_config(self, config: ExportConfig | None) -> StoredConfig:
        """Store `config` (None restores the default) and bump the version; applies to the
        next export on every worker."""
        payload = None if config is None else config.model_dump_json()
        stored = StoredConfig(config, self._store.exports.write(self._tenant, payload))
        if config is None:
            log.info("export redaction config reset to default: version=%d", stored.version)
        else:
            log.info(
                "export redaction config set: type=%s fields=%d version=%d",
                config.type,
                len(config.fields),
                stored.version,
            )
        return stored

    # -- exporting ------------------------------------------------------------------------

    def _load(self, conversation_id: str) -> tuple[StoredConfig, list[dict[str, Any]]]:
        """The current config and the redacted history, both on the lock-free reader."""
        return self.stored_config(), self._store.messages.history(conversation_id)

    def _filtered(
        self,
        stored: StoredConfig,
        conversation_id: str,
        history: list[dict[str, Any]],
        status: Status,
        ended_at: float | None,
    ) -> dict[str, Any]:
        record = build_record(
            self._tenant, conversation_id, history, status, ended_at, channel=self._channel
        )
        return apply_export_config(record.model_dump(mode="json"), stored.config)

    async def export(
        self, conversation_id: str, *, status: Status = "active", ended_at: float | None = None
    ) -> dict[str, Any]:
        """Build, filter and deliver one conversation's record to every sink.

        Every sink is tried even when one fails; then the first failure is raised
        (`ExportSinkError`, 502).  Delivery is at least once: a retry after a partial
        failure sends the record again, and receivers deduplicate on the mandatory fields.
        Returns what was sent, with the config version applied.
        """
        stored, history = await to_thread.run_sync(
            self._load, conversation_id, limiter=self._limiter
        )
        if not history:
            raise ConversationNotFound("conversation_id")
        filtered = self._filtered(stored, conversation_id, history, status, ended_at)
        delivered = await self._deliver(filtered)
        log.info("conversation exported: config_version=%d sinks=%d", stored.version, delivered)
        return {"config_version": stored.version, "delivered": delivered, "record": filtered}

    def export_sync(
        self, conversation_id: str, *, status: Status = "active", ended_at: float | None = None
    ) -> dict[str, Any]:
        """`export` for sync callers in a worker thread: runs on the app's event loop."""
        call = functools.partial(self.export, conversation_id, status=status, ended_at=ended_at)
        result: dict[str, Any] = anyio.from_thread.run(call)
        return result

    async def _deliver(self, record: dict[str, Any]) -> int:
        """Send to every sink, then raise the first failure (if any); the count delivered."""
        failure: ExportSinkError | None = None
        delivered = 0
        for sink in self._sinks:
            try:
                await sink.send(record)
                delivered += 1
            except ExportSinkError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return delivered

    def record_at_end(self, tx: Transaction, result: EndResult) -> None:
        """Put the ended session's record in the outbox, one row per sink (a `Lifecycle`
        hook: runs inside the end's transaction, so the end and its record commit together
        and a crash loses neither).

        The record holds the turns of the ended key epoch only (the history lines since
        the session started), filtered by the config stored at this moment.  Nothing is
        sent here: the outbox worker delivers, outside the request path and the database
        limiter.
        """
        if not self._sink_keys:
            return
        since = self._store.conversations.started_at(tx, result.conversation_id)
        history = self._store.messages.epoch_history(tx, result.conversation_id, since)
        if not history:
            return
        status = cast(Status, result.status) if result.status in get_args(Status) else "ended"
        filtered = self._filtered(
            self.stored_config(), result.conversation_id, history, status, result.ended_at
        )
        payload = json.dumps(filtered, ensure_ascii=False, separators=(",", ":"))
        self._store.outbox.enqueue(
            tx, result.conversation_id, [(key, payload) for key in self._sink_keys]
        )
