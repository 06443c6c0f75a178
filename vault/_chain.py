"""The hash-chained audit log (private: only the vault appends; records in `audit.py`).

Each row stores the previous row's hash and SHA-256 over a canonical JSON encoding of its
own fields (id included), so editing, deleting or reordering a row breaks the chain, and
`verify()` names the first bad row.  Appends are serialised through the single
`audit_head` row, and happen in the caller's transaction so an action and its audit
record commit together.  Rows never hold a value.

Speed: `Chain` remembers the head it last wrote and advances it with one conditional
`UPDATE audit_head ... WHERE last_id = :old AND last_hash = :old_hash`.  The UPDATE takes
the head's row lock (PostgreSQL) or runs under the write lock (SQLite's BEGIN IMMEDIATE),
so when it matches one row this transaction owns the head; when another worker moved the
head first it matches none, and the chain falls back to SELECT ... FOR UPDATE and
recomputes.  A stale guess therefore costs one statement, never a fork in the chain.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from coatcheck.vault import _driver
from coatcheck.vault.audit import AuditRecord, AuditReport
from coatcheck.vault.models import AuditHead, AuditRow

__all__ = ["Chain", "Entry", "list_rows", "verify"]

GENESIS = "0" * 64
_HEAD = cast(Table, AuditHead.__table__)
_LOG = cast(Table, AuditRow.__table__)


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


_READ_HEAD = select(_HEAD.c.last_id, _HEAD.c.last_hash).where(_HEAD.c.id == 1).with_for_update()
_MOVE_HEAD = _driver.Statement(
    update(_HEAD)
    .where(
        _HEAD.c.id == 1,
        _HEAD.c.last_id == bindparam("old_id"),
        _HEAD.c.last_hash == bindparam("old_hash"),
    )
    .values(last_id=bindparam("new_id"), last_hash=bindparam("new_hash"))
)
_SET_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(last_id=bindparam("new_id"), last_hash=bindparam("new_hash"))
)
_COLUMNS = [c.key for c in _LOG.columns]
_INSERT = _driver.Statement(insert(_LOG), _COLUMNS)


@dataclass(frozen=True)
class Entry:
    """One record to append, before the chain gives it an id."""

    at: float
    tenant: str
    actor: str
    action: str
    outcome: str
    conversation_id: str | None = None
    ref: str | None = None
    entity_type: str | None = None
    purpose: str | None = None


def _link(entries: Sequence[Entry], last_id: int, last_hash: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    prev = last_hash
    for offset, e in enumerate(entries, start=1):
        record = AuditRecord(
            last_id + offset,
            e.at,
            e.tenant,
            e.actor,
            e.action,
            e.conversation_id,
            e.ref,
            e.entity_type,
            e.purpose,
            e.outcome,
        )
        row_hash = _digest(record, prev)
        rows.append({**record.__dict__, "prev_hash": prev, "row_hash": row_hash})
        prev = row_hash
    return rows


class Chain:
    """Appends to the chain, guessing the head from its own last write (checked in SQL)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._head: tuple[int, str] | None = None

    def append(self, conn: Connection, entries: Sequence[Entry]) -> None:
        """Append `entries` in order inside the caller's transaction."""
        if not entries:
            return
        with self._lock:
            guess = self._head
        rows: list[dict[str, object]] | None = None
        if guess is not None:
            rows = _link(entries, *guess)
            moved = _MOVE_HEAD.rowcount(
                conn,
                {
                    "old_id": guess[0],
                    "old_hash": guess[1],
                    "new_id": rows[-1]["id"],
                    "new_hash": rows[-1]["row_hash"],
                },
            )
            if moved != 1:
                rows = None
        if rows is None:
            head = conn.execute(_READ_HEAD).one()
            rows = _link(entries, head.last_id, head.last_hash)
            conn.execute(_SET_HEAD, {"new_id": rows[-1]["id"], "new_hash": rows[-1]["row_hash"]})
        _INSERT.many(conn, rows)
        with self._lock:
            # Only a guess: if this transaction rolls back, the next UPDATE matches nothing.
            self._head = (cast(int, rows[-1]["id"]), cast(str, rows[-1]["row_hash"]))


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
