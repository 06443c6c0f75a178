"""The export outbox (`gw_export_outbox`): records waiting for their sinks.

Rows are written in the end's transaction (`enqueue`, the caller's `Transaction`); the
outbox worker claims due rows with a lease in one short transaction (`FOR UPDATE SKIP
LOCKED` on PostgreSQL: workers of several processes never claim the same row), and settles
each after its delivery: a delivered row is deleted, a failed one waits for its next
attempt or becomes a dead letter.  No statement here runs while a sink is being called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, or_, select, update

from coatcheck.middleware.gateway.store.db import Db
from coatcheck.middleware.gateway.store.statements import OUTBOX
from coatcheck.vault import Transaction

__all__ = ["DEAD", "PENDING", "Claimed", "Outboxes"]

PENDING = "pending"
DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this worker leased: deliver `record_json` to `sink`, then settle it."""

    id: int
    conversation_id: str
    sink: str
    record_json: str
    attempts: int


class Outboxes:
    """Enqueue in the caller's transaction; claim, settle and count in short ones."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def enqueue(
        self, tx: Transaction, conversation_id: str, rows: Sequence[tuple[str, str]]
    ) -> None:
        """One pending row per `(sink, record_json)`, due now."""
        now = self._db.clock()
        tx.execute(
            insert(OUTBOX),
            [
                {
                    "conversation_id": conversation_id,
                    "sink": sink,
                    "record_json": record,
                    "status": PENDING,
                    "attempts": 0,
                    "created_at": now,
                    "next_attempt_at": now,
                    "lease_until": None,
                    "last_error": None,
                }
                for sink, record in rows
            ],
        )

    def claim(self, lease_seconds: float, limit: int) -> list[Claimed]:
        """Lease up to `limit` due rows (oldest first) for `lease_seconds`.

        Looks on the lock-free reader first: an idle outbox (the usual case) costs one
        indexed read per poll, never a write transaction (on SQLite, the write lock)."""
        now = self._db.clock()
        due = (
            select(OUTBOX.c.id)
            .where(
                OUTBOX.c.status == PENDING,
                OUTBOX.c.next_attempt_at <= now,
                or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until <= now),
            )
            .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
            .limit(limit)
        )
        if not self._db.read(due.limit(1)):
            return []
        with self._db.transaction() as tx:
            if tx.dialect == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = [row[0] for row in tx.execute(due).all()]
            if not ids:
                return []
            rows = tx.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_(ids))
                .values(lease_until=now + lease_seconds)
                .returning(
                    OUTBOX.c.id,
                    OUTBOX.c.conversation_id,
                    OUTBOX.c.sink,
                    OUTBOX.c.record_json,
                    OUTBOX.c.attempts,
                )
            ).all()
        claimed = [
            Claimed(int(r.id), str(r.conversation_id), str(r.sink), str(r.record_json), r.attempts)
            for r in rows
        ]
        return sorted(claimed, key=lambda c: c.id)

    def delivered(self, row_id: int) -> None:
        """The sink took the record: the row goes."""
        with self._db.transaction() as tx:
            tx.execute(delete(OUTBOX).where(OUTBOX.c.id == row_id))

    def failed(self, row_id: int, attempts: int, retry_at: float | None, reason: str) -> None:
        """Record a failed attempt: due again at `retry_at`, or (None) a dead letter."""
        values: dict[str, object] = {
            "attempts": attempts,
            "lease_until": None,
            "last_error": reason[:200],
            "status": PENDING if retry_at is not None else DEAD,
        }
        if retry_at is not None:
            values["next_attempt_at"] = retry_at
        with self._db.transaction() as tx:
            tx.execute(update(OUTBOX).where(OUTBOX.c.id == row_id).values(**values))

    def counts(self) -> dict[str, int]:
        """Rows per status (lock-free)."""
        rows = self._db.read(select(OUTBOX.c.status, func.count()).group_by(OUTBOX.c.status))
        found = {PENDING: 0, DEAD: 0}
        found.update({str(status): int(count) for status, count in rows})
        return found

    def requeue_dead(self) -> int:
        """Dead letters become due now with a fresh attempt budget; how many."""
        now = self._db.clock()
        with self._db.transaction() as tx:
            return int(
                tx.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.status == DEAD)
                    .values(status=PENDING, attempts=0, next_attempt_at=now, lease_until=None)
                ).rowcount
                or 0
            )

    def forget(self, tx: Transaction, ids: tuple[str, ...]) -> int:
        """Delete the waiting records of the conversations `ids` (a subject's erasure)."""
        return int(
            tx.execute(delete(OUTBOX).where(OUTBOX.c.conversation_id.in_(ids))).rowcount or 0
        )
