"""The conversation state table: the pending rule and the lifecycle of each conversation.

`status` is `active`, or after the end what the vault kept (`masked`, `retained`,
`shredded`, `ended`); docs/lifecycle.md.  The lifecycle's statements run in the caller's
transaction (the end claims the row, then the vault ends its epochs in the same
transaction), the listings on the lock-free reader.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, and_, delete, func, or_, select, update

from coatcheck.middleware.gateway.rules import ContextRule
from coatcheck.middleware.gateway.store.db import Db
from coatcheck.middleware.gateway.store.statements import LIVE_VALUES, STATE, new_state_row
from coatcheck.vault import Transaction
from coatcheck.vault.models import Conversation

_EPOCHS = Conversation.__table__

__all__ = ["Conversations"]


class Conversations:
    """Reads and writes of `gw_conversation_state`."""

    def __init__(self, db: Db) -> None:
        self._db = db

    # -- rules ------------------------------------------------------------------------------

    def set_rule(self, conversation_id: str, rule: ContextRule | None) -> None:
        """Store (or clear, with None) the rule for the conversation's next user message;
        a new row starts the conversation."""
        payload = None if rule is None else rule.to_json()
        now = self._db.clock()
        with self._db.transaction() as tx:
            stmt = new_state_row(tx.dialect, conversation_id, now, context_json=payload)
            tx.execute(
                stmt.on_conflict_do_update(
                    index_elements=[STATE.c.conversation_id],
                    set_={"context_json": payload, "updated_at": now},
                )
            )

    def latest_capture(self, conversation_id: str) -> str | None:
        """The capture record (JSON) of the conversation's latest user message, if that
        message was a secure-capture result the gateway sent; one primary-key read on the
        lock-free reader."""
        rows = self._db.read(
            select(STATE.c.last_capture_json).where(STATE.c.conversation_id == conversation_id)
        )
        return None if not rows else rows[0].last_capture_json

    # -- lifecycle (in the caller's transaction) ------------------------------------------

    def ensure_active(self, tx: Transaction, conversation_id: str, now: float) -> str:
        """The conversation's status, starting it (an `active` row) if never seen."""
        tx.execute(
            new_state_row(tx.dialect, conversation_id, now).on_conflict_do_nothing(
                index_elements=[STATE.c.conversation_id]
            )
        )
        status = tx.execute(
            select(STATE.c.status).where(STATE.c.conversation_id == conversation_id)
        ).scalar_one()
        return str(status)

    def claim_end(
        self,
        tx: Transaction,
        conversation_id: str,
        reason: str,
        now: float,
        idle_cutoff: float | None = None,
    ) -> bool:
        """Mark an active conversation ended (with `idle_cutoff`: only if idle since then).

        A conditional UPDATE: of two workers, one wins; the other's UPDATE waits for the
        winner's commit and then matches nothing.
        """
        claim = update(STATE).where(
            STATE.c.conversation_id == conversation_id, STATE.c.status == "active"
        )
        if idle_cutoff is not None:
            claim = claim.where(STATE.c.last_activity <= idle_cutoff)
        closing = claim.values(
            status="ended",
            ended_at=now,
            end_reason=reason,
            context_json=None,
            last_capture_json=None,
            updated_at=now,
        )
        return tx.execute(closing.returning(STATE.c.conversation_id)).first() is not None

    def insert_ended(self, tx: Transaction, conversation_id: str, reason: str, now: float) -> bool:
        """Store a conversation the gateway never recorded as ended; False if a row exists."""
        ended = new_state_row(
            tx.dialect, conversation_id, now, status="ended", ended_at=now, end_reason=reason
        )
        created = tx.execute(
            ended.on_conflict_do_nothing(index_elements=[STATE.c.conversation_id]).returning(
                STATE.c.conversation_id
            )
        ).first()
        return created is not None

    def lock(self, tx: Transaction, conversation_id: str) -> str | None:
        """Lock the state row (FOR UPDATE) and read its status (None: no row)."""
        status = tx.execute(
            select(STATE.c.status)
            .where(STATE.c.conversation_id == conversation_id)
            .with_for_update()
        ).scalar()
        return None if status is None else str(status)

    def set_outcome(
        self, tx: Transaction, conversation_id: str, status: str, retain_until: float | None
    ) -> Row[*tuple[Any, ...]] | None:
        """Store what the end kept (status, retain deadline, no rule); `(ended_at,)` of the
        row, None when there is no row."""
        return tx.execute(
            update(STATE)
            .where(STATE.c.conversation_id == conversation_id)
            .values(
                status=status, retain_until=retain_until, context_json=None, last_capture_json=None
            )
            .returning(STATE.c.ended_at)
        ).first()

    def set_status(
        self, tx: Transaction, conversation_id: str, status: str, retain_until: float | None
    ) -> None:
        """After an expiry: the status follows what the vault still holds."""
        tx.execute(
            update(STATE)
            .where(STATE.c.conversation_id == conversation_id)
            .values(status=status, retain_until=retain_until)
        )

    def forget(self, tx: Transaction, ids: tuple[str, ...]) -> int:
        """Delete the state rows of the conversations `ids` (a subject's erasure)."""
        return tx.execute(delete(STATE).where(STATE.c.conversation_id.in_(ids))).rowcount

    def end_state(self, tx: Transaction, conversation_id: str) -> Row[*tuple[Any, ...]] | None:
        """`(status, ended_at, retain_until)` of the row, or None."""
        return tx.execute(
            select(STATE.c.status, STATE.c.ended_at, STATE.c.retain_until).where(
                STATE.c.conversation_id == conversation_id
            )
        ).first()

    def started_at(self, tx: Transaction, conversation_id: str) -> float | None:
        """When the conversation's current session started (its key epoch's turns are the
        history lines since), in the caller's transaction."""
        started = tx.execute(
            select(STATE.c.started_at).where(STATE.c.conversation_id == conversation_id)
        ).scalar()
        return None if started is None else float(started)

    def open_for_values(self, tx: Transaction, conversation_id: str, now: float) -> bool:
        """Start a never-seen conversation (an `active` row, the idle timeout applies) and
        lock its row; False when it exists and is not active (ended: nothing may be vaulted
        into it outside the message path), in the caller's transaction."""
        tx.execute(
            new_state_row(tx.dialect, conversation_id, now).on_conflict_do_nothing(
                index_elements=[STATE.c.conversation_id]
            )
        )
        return self.lock(tx, conversation_id) == "active"

    def has_live_epoch(self, tx: Transaction, tenant: str, conversation_id: str) -> bool:
        """Whether a key epoch of the conversation is still live, in the caller's
        transaction (an orphan another sweeper ended meanwhile is not one any more)."""
        found = tx.execute(
            select(_EPOCHS.c.id)
            .where(
                _EPOCHS.c.tenant == tenant,
                _EPOCHS.c.conversation_id == conversation_id,
                _EPOCHS.c.ended_at.is_(None),
                _EPOCHS.c.wrapped_dek.is_not(None),
            )
            .limit(1)
        ).first()
        return found is not None

    def live_values(self, tx: Transaction, tenant: str, conversation_id: str) -> int:
        """How many values the conversation's live key epoch holds (the per-conversation
        cap), in the caller's transaction (prebuilt: it runs with every message)."""
        (count,) = tx.scalars(LIVE_VALUES, {"tenant": tenant, "cid": conversation_id})
        return int(count or 0)

    def status(self, tx: Transaction, conversation_id: str) -> str | None:
        """The status in `tx` (on the reader), None when the gateway never saw it."""
        status = tx.execute(
            select(STATE.c.status).where(STATE.c.conversation_id == conversation_id)
        ).scalar()
        return None if status is None else str(status)

    # -- listings (lock-free) ---------------------------------------------------------------

    def list_conversations(
        self,
        *,
        search: str | None,
        status: str | None,
        since: float | None,
        until: float | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Conversations most recently active first (`ConversationRecords.list_conversations`)."""
        started = func.coalesce(STATE.c.started_at, STATE.c.updated_at)
        last = func.coalesce(STATE.c.last_activity, STATE.c.updated_at)
        query = select(
            STATE.c.conversation_id,
            STATE.c.status,
            started.label("started_at"),
            last.label("last_activity"),
            STATE.c.ended_at,
        )
        if search:
            query = query.where(STATE.c.conversation_id.icontains(search, autoescape=True))
        if status is not None:
            query = query.where(STATE.c.status == status)
        if since is not None:
            query = query.where(last >= since)
        if until is not None:
            query = query.where(started < until)
        query = query.order_by(last.desc(), STATE.c.conversation_id).limit(limit)
        return [
            {
                "conversation_id": row.conversation_id,
                "status": row.status,
                "started_at": row.started_at,
                "last_activity": row.last_activity,
                "ended_at": row.ended_at,
            }
            for row in self._db.read(query)
        ]

    def idle_since(self, cutoff: float, limit: int) -> list[str]:
        """Active conversations with no message since `cutoff`, longest idle first."""
        return self._db.scalars(
            select(STATE.c.conversation_id)
            .where(STATE.c.status == "active", STATE.c.last_activity <= cutoff)
            .order_by(STATE.c.last_activity)
            .limit(limit)
        )

    def not_active_among(self, conversation_ids: set[str], batch: int) -> set[str]:
        """Those of `conversation_ids` that are not active (their status may change)."""
        found: set[str] = set()
        ids = sorted(conversation_ids)
        for start in range(0, len(ids), batch):
            query = select(STATE.c.conversation_id).where(
                STATE.c.conversation_id.in_(ids[start : start + batch]),
                STATE.c.status != "active",
            )
            found.update(self._db.scalars(query))
        return found

    def orphans(self, tenant: str, limit: int) -> list[str]:
        """Conversations with a live key epoch but no active state row (none at all, or
        ended): epochs that nothing else would end.  Opened by `/v1/redact` before it
        checked the lifecycle (or by a crash between two writes); the sweeper ends them."""
        query = (
            select(_EPOCHS.c.conversation_id)
            .select_from(
                _EPOCHS.outerjoin(STATE, STATE.c.conversation_id == _EPOCHS.c.conversation_id)
            )
            .where(
                _EPOCHS.c.tenant == tenant,
                _EPOCHS.c.ended_at.is_(None),
                _EPOCHS.c.wrapped_dek.is_not(None),
                or_(STATE.c.status.is_(None), and_(STATE.c.status != "active")),
            )
            .distinct()
            .limit(limit)
        )
        return [str(cid) for cid in self._db.scalars(query)]

    def retained_past(self, now: float, limit: int) -> set[str]:
        """Retained conversations whose deadline has passed."""
        query = (
            select(STATE.c.conversation_id)
            .where(STATE.c.status == "retained", STATE.c.retain_until <= now)
            .limit(limit)
        )
        return set(self._db.scalars(query))
