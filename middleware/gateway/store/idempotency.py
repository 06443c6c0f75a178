"""A channel's message ids (`gw_idempotency`): what makes a repeated message act once.

A row is claimed (`pending`) in the transaction that records the message, so the message
and its id commit together: of two attempts, exactly one records it.  The replies'
reference form is stored when they are (`done`).  Ids are keyed digests (never the
client's id); rows past the window are dropped by the sweeper.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update

from coatcheck.middleware.gateway.store.db import Db
from coatcheck.middleware.gateway.store.statements import IDEMPOTENCY, dialect_insert
from coatcheck.vault import Transaction

__all__ = ["DONE", "PENDING", "MessageIds"]

PENDING = "pending"
DONE = "done"


class MessageIds:
    """Look up, claim and complete message ids by digest."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def seen(self, digest: str, since: float) -> tuple[str, str | None] | None:
        """`(state, replies_json)` of an id seen since `since` (lock-free), else None."""
        rows = self._db.read(
            select(IDEMPOTENCY.c.state, IDEMPOTENCY.c.replies_json).where(
                IDEMPOTENCY.c.id == digest, IDEMPOTENCY.c.created_at >= since
            )
        )
        return (str(rows[0].state), rows[0].replies_json) if rows else None

    def claim(self, tx: Transaction, digest: str, conversation_id: str, since: float) -> bool:
        """Record the id as `pending` in the caller's transaction; False when it was seen
        within the window (an older row is replaced)."""
        now = self._db.clock()
        tx.execute(
            delete(IDEMPOTENCY).where(IDEMPOTENCY.c.id == digest, IDEMPOTENCY.c.created_at < since)
        )
        inserted = tx.execute(
            dialect_insert(tx.dialect, IDEMPOTENCY)
            .values(id=digest, conversation_id=conversation_id, state=PENDING, created_at=now)
            .on_conflict_do_nothing(index_elements=[IDEMPOTENCY.c.id])
            .returning(IDEMPOTENCY.c.id)
        ).first()
        return inserted is not None

    def complete(self, tx: Transaction, digest: str, replies_json: str) -> None:
        """The replies (reference form) of a recorded message, in the caller's transaction."""
        tx.execute(
            update(IDEMPOTENCY)
            .where(IDEMPOTENCY.c.id == digest)
            .values(state=DONE, replies_json=replies_json)
        )

    def drop_before(self, cutoff: float, limit: int) -> int:
        """Delete up to `limit` rows older than `cutoff` (the sweeper)."""
        ids = self._db.scalars(
            select(IDEMPOTENCY.c.id).where(IDEMPOTENCY.c.created_at < cutoff).limit(limit)
        )
        if not ids:
            return 0
        with self._db.transaction() as tx:
            return int(tx.execute(delete(IDEMPOTENCY).where(IDEMPOTENCY.c.id.in_(ids))).rowcount)

    def forget(self, tx: Transaction, ids: tuple[str, ...]) -> int:
        """Delete the message ids of the conversations `ids` (a subject's erasure)."""
        return int(
            tx.execute(delete(IDEMPOTENCY).where(IDEMPOTENCY.c.conversation_id.in_(ids))).rowcount
            or 0
        )
