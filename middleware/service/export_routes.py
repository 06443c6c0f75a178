"""Export controls over HTTP: the redaction config (admin) and exporting a conversation.

The config lives in one database row per tenant with a version, read on every export (one
primary-key lookup), so a change made through any worker applies to the very next record
on every worker without a restart or a cache to invalidate. Records are built from the
redacted history only: the vault is never opened, and display forms are cut down to bare
references (`mask` would otherwise hand part of a value to a third party).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

import anyio.from_thread
from anyio import to_thread
from fastapi import APIRouter, Path
from pydantic import ValidationError
from sqlalchemy import Engine, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from coatcheck.middleware.export import (
    MANDATORY_FIELDS,
    ConversationRecord,
    EntityRef,
    ExportConfig,
    ExportSinkError,
    Turn,
    apply_export_config,
)
from coatcheck.middleware.models import ExportRedaction
from coatcheck.middleware.render import parse_references, replace_references
from coatcheck.middleware.service.deps import AdminKey, GatewayDep
from coatcheck.middleware.service.errors import BadText, ConversationNotFound, StorageUnavailable
from coatcheck.middleware.service.limits import clean_text
from coatcheck.middleware.service.state import Gateway
from coatcheck.middleware.service.store import guarded, guarded_conn, read_history

__all__ = [
    "StoredConfig",
    "build_record",
    "export_at_end",
    "export_conversation",
    "export_conversation_sync",
    "read_export_config",
    "router",
    "write_export_config",
]

log = logging.getLogger(__name__)

router = APIRouter()

CONFIG_PATH = "/v1/config/export-redaction"
Status = Literal["active", "ended", "masked", "retained", "shredded"]


# -- the stored config --------------------------------------------------------------------


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


def _table() -> Table:
    return cast(Table, ExportRedaction.__table__)


def read_export_config(engine: Engine, tenant: str) -> StoredConfig:
    """The newest committed config (one indexed row); version 0 when never set.

    A row that no longer validates reads as the privacy-first default (and logs an error).
    """
    table = _table()
    query = select(table.c.config_json, table.c.version).where(table.c.tenant == tenant)
    try:
        with engine.connect() as conn:
            row = conn.execute(query).first()
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None
    if row is None:
        return StoredConfig(None, 0)
    if row.config_json is None:
        return StoredConfig(None, int(row.version))
    try:
        config = ExportConfig.model_validate_json(row.config_json)
    except ValidationError:
        # Stored by an older release whose rules allowed it (say, before a field became
        # mandatory): fall back to the narrowest export rather than fail or widen.
        log.error("stored export config is no longer valid; using the privacy-first default")
        return StoredConfig(None, int(row.version))
    return StoredConfig(config, int(row.version))


def write_export_config(
    engine: Engine, tenant: str, config: ExportConfig | None, now: float
) -> StoredConfig:
    """Store `config` (None restores the default) and bump the version, in one upsert."""
    table = _table()
    payload = None if config is None else config.model_dump_json()
    with guarded_conn(engine) as conn:
        dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
        stmt = dialect_insert(table).values(
            tenant=tenant, config_json=payload, version=1, updated_at=now
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=[table.c.tenant],
            set_={
                "config_json": stmt.excluded.config_json,
                "version": table.c.version + 1,
                "updated_at": stmt.excluded.updated_at,
            },
        ).returning(table.c.version)
        version = int(conn.execute(upsert).scalar_one())
    return StoredConfig(config, version)


@router.get(CONFIG_PATH)
def get_export_redaction(gw: GatewayDep, _: AdminKey) -> dict[str, Any]:
    return read_export_config(gw.reader, gw.settings.tenant).describe()


@router.put(CONFIG_PATH)
def put_export_redaction(body: ExportConfig, gw: GatewayDep, _: AdminKey) -> dict[str, Any]:
    """Validated by `ExportConfig` (422 naming the bad path); applies to the next export."""
    stored = write_export_config(gw.engine, gw.settings.tenant, body, gw.clock())
    log.info(
        "export redaction config set: type=%s fields=%d version=%d",
        body.type,
        len(body.fields),
        stored.version,
    )
    return stored.describe()


@router.delete(CONFIG_PATH)
def delete_export_redaction(gw: GatewayDep, _: AdminKey) -> dict[str, Any]:
    """Back to the privacy-first default (mandatory fields only); the version still grows."""
    stored = write_export_config(gw.engine, gw.settings.tenant, None, gw.clock())
    log.info("export redaction config reset to default: version=%d", stored.version)
    return stored.describe()


# -- exporting a conversation ---------------------------------------------------------------


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
) -> ConversationRecord:
    """A `ConversationRecord` from redacted history lines (`store.read_history` rows)."""
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
        channel="rest",
        turns=turns,
        metrics=metrics,
    )


def _load(gw: Gateway, conversation_id: str) -> tuple[StoredConfig, list[dict[str, Any]]]:
    """The current config and the redacted history, both on the lock-free read engine."""
    stored = read_export_config(gw.reader, gw.settings.tenant)
    with guarded(sessionmaker(gw.reader)) as session:
        history = read_history(session, conversation_id)
    return stored, history


async def export_conversation(
    gw: Gateway,
    conversation_id: str,
    *,
    status: Status = "active",
    ended_at: float | None = None,
) -> dict[str, Any]:
    """Build, filter (newest config) and deliver one conversation's record to every sink.

    Every sink is tried even when one fails; then the first failure is raised
    (`ExportSinkError`, 502). Delivery is at least once: a retry after a partial failure
    sends the record again, and receivers deduplicate on the mandatory fields.
    Returns what was sent, with the config version applied.
    """
    stored, history = await to_thread.run_sync(_load, gw, conversation_id, limiter=gw.db_limiter)
    if not history:
        raise ConversationNotFound("conversation_id")
    record = build_record(gw.settings.tenant, conversation_id, history, status, ended_at)
    filtered = apply_export_config(record.model_dump(mode="json"), stored.config)
    delivered = await _deliver(gw, filtered)
    log.info("conversation exported: config_version=%d sinks=%d", stored.version, delivered)
    return {"config_version": stored.version, "delivered": delivered, "record": filtered}


async def _deliver(gw: Gateway, record: dict[str, Any]) -> int:
    """Send to every sink, then raise the first failure (if any); the count delivered."""
    failure: ExportSinkError | None = None
    delivered = 0
    for sink in gw.export_sinks:
        try:
            await sink.send(record)
            delivered += 1
        except ExportSinkError as exc:
            failure = failure or exc
    if failure is not None:
        raise failure
    return delivered


def export_at_end(gw: Gateway, conversation_id: str, status: str, ended_at: float | None) -> None:
    """Export the record of a conversation that just ended; called by `end_conversation`.

    Runs in the worker thread that ended it, which may hold the worker's database limiter:
    so the record is read right here (not through the limiter, which would deadlock) and
    only the delivery hops to the event loop. The end is already committed: a failed
    delivery is logged (sink name only) and can be repeated with the export route.
    """
    if not gw.export_sinks:
        return
    stored, history = _load(gw, conversation_id)
    if not history:
        return
    kind = cast(Status, status) if status in get_args(Status) else "ended"
    record = build_record(gw.settings.tenant, conversation_id, history, kind, ended_at)
    filtered = apply_export_config(record.model_dump(mode="json"), stored.config)
    try:
        anyio.from_thread.run(_deliver, gw, filtered)
    except ExportSinkError as exc:
        log.warning("export at conversation end failed: sink=%s", exc.sink)


def export_conversation_sync(
    gw: Gateway,
    conversation_id: str,
    *,
    status: Status = "active",
    ended_at: float | None = None,
) -> dict[str, Any]:
    """`export_conversation` for sync routes (threadpool): runs on the app's event loop."""
    call = functools.partial(
        export_conversation, gw, conversation_id, status=status, ended_at=ended_at
    )
    result: dict[str, Any] = anyio.from_thread.run(call)
    return result


@router.post("/v1/conversations/{conversation_id}/export")
async def export_route(
    gw: GatewayDep, _: AdminKey, conversation_id: str = Path(min_length=1, max_length=255)
) -> dict[str, Any]:
    try:
        conv = clean_text(conversation_id)
    except ValueError:
        raise BadText("conversation_id") from None
    return await export_conversation(gw, conv)
