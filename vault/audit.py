"""The hash-chained audit log.

Each row stores the previous row's hash and SHA-256 over a canonical JSON encoding of its
own fields (id included), so editing, deleting or reordering a row breaks the chain, and
`verify()` names the first bad row.  Appends are serialised through the single
`audit_head` row (SELECT ... FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already
serialises writers), and happen in the caller's transaction so an action and its audit
record commit together.  Rows never hold a value.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import Connection

from vault.models import AuditHead, AuditRow

__all__ = ["AuditRecord", "AuditReport", "append", "list_rows", "verify"]

GENESIS = "0" * 64
_HEAD = cast(Table, AuditHead.__table__)
_LOG = cast(Table, AuditRow.__table__)


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: float
    tenant: str
    actor: str
    action: str
    conversation_id: str | None
    ref: str | None
    entity_type: str | None
    purpose: str | None
    outcome: str


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    rows: int
    first_bad: int | None


def _digest(record: AuditRecord, prev_hash: str) -> str:
    fields = [
        record.id,
        repr(record.at),
        record.tenant,
        record.actor,
        record.action,
        record.conversation_id,
        record.ref,
        record.entity_type,
        record.purpose,
        record.outcome,
        prev_hash,
    ]
    canonical = json.dumps(fields, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def append(
    conn: Connection,
    *,
    at: float,
    tenant: str,
    actor: str,
    action: str,
    outcome: str,
    conversation_id: str | None = None,
    ref: str | None = None,
    entity_type: str | None = None,
    purpose: str | None = None,
) -> None:
    """Append one record inside the caller's transaction."""
    head = conn.execute(
        select(_HEAD.c.last_id, _HEAD.c.last_hash).where(_HEAD.c.id == 1).with_for_update()
    ).one()
    record = AuditRecord(
        head.last_id + 1,
        at,
        tenant,
        actor,
        action,
        conversation_id,
        ref,
        entity_type,
        purpose,
        outcome,
    )
    row_hash = _digest(record, head.last_hash)
    conn.execute(
        insert(_LOG).values(**record.__dict__, prev_hash=head.last_hash, row_hash=row_hash)
    )
    conn.execute(update(_HEAD).where(_HEAD.c.id == 1).values(last_id=record.id, last_hash=row_hash))


def _record(row: object) -> AuditRecord:
    return AuditRecord(**{name: getattr(row, name) for name in AuditRecord.__dataclass_fields__})


def verify(conn: Connection) -> AuditReport:
    """Walk the chain; the first row whose link or hash is wrong is `first_bad`."""
    prev, count, expected_id = GENESIS, 0, 1
    for row in conn.execute(select(_LOG).order_by(_LOG.c.id)):
        record = _record(row)
        if (
            record.id != expected_id
            or row.prev_hash != prev
            or _digest(record, prev) != row.row_hash
        ):
            return AuditReport(False, count, record.id)
        prev, count, expected_id = row.row_hash, count + 1, expected_id + 1
    head = conn.execute(select(_HEAD.c.last_id, _HEAD.c.last_hash)).one()
    if head.last_hash != prev or head.last_id != count:
        return AuditReport(False, count, count + 1)
    return AuditReport(True, count, None)


def list_rows(
    conn: Connection,
    *,
    conversation_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 1000,
) -> list[AuditRecord]:
    """Audit records, newest first, filtered by any of conversation, actor, action."""
    query = select(_LOG).order_by(_LOG.c.id.desc()).limit(limit)
    if conversation_id is not None:
        query = query.where(_LOG.c.conversation_id == conversation_id)
    if actor is not None:
        query = query.where(_LOG.c.actor == actor)
    if action is not None:
        query = query.where(_LOG.c.action == action)
    return [_record(row) for row in conn.execute(query)]
