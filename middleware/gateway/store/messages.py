"""The per-message tables: redacted history lines and rate counters (plus the rule read).

Called per message, so the hot statements are prebuilt (`statements.py`) and run on the
driver; everything here is Core, no ORM unit of work.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select

from coatcheck.middleware.gateway.ratelimit import RateLimit
from coatcheck.middleware.gateway.rules import ContextRule
from coatcheck.middleware.gateway.store.db import Db
from coatcheck.middleware.gateway.store.statements import (
    HISTORY,
    RATE,
    READ_STATE,
    REPLY_LINES,
    STATE,
    count_statement,
    new_state_row,
    record_statements,
)
from coatcheck.vault import Transaction

__all__ = ["Messages"]


class Messages:
    """History lines, the rate counters, and the per-message state they ride with."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def read_state(
        self,
        conversation_id: str,
        rate_key: str,
        rate: RateLimit,
        key: tuple[str, RateLimit] | None = None,
    ) -> tuple[ContextRule | None, int, int]:
        """The pending rule and this window's counts (the rate key's, and the API key's
        `key` counter), read without any write lock.

        One round-trip (three indexed scalar subqueries) on the read-only engine; the counts
        are only pre-checks (the authoritative bumps happen with the message's history line).
        """
        now = self._db.clock()
        params = {
            "cid": conversation_id,
            "sender": rate_key,
            "start": rate.window_start(now),
            "key": "" if key is None else key[0],
            "kstart": 0 if key is None else key[1].window_start(now),
        }
        with self._db.reading() as tx:
            ((context, count, key_count),) = tx.rows(READ_STATE, params)
        rule = None if context is None else ContextRule.from_json(context)
        return rule, int(count or 0), int(key_count or 0)

    def record_inbound(
        self,
        tx: Transaction,
        conversation_id: str,
        rate_key: str,
        text: str,
        rate: RateLimit,
        consume: bool,
        entities: str | None = None,
        capture: str | None = None,
    ) -> None:
        """Count the message, touch the conversation (consuming the rule it used), store its
        line, in the caller's transaction.

        The rate upsert raises `RateLimited` past the limit, which rolls everything back;
        then the history row with the conversation's state upsert riding along:
        `last_activity` (for the idle timeout), a reopen if the conversation had ended, the
        consumed rule cleared, the capture record set to `capture` (a secure capture's
        result) or cleared.
        """
        now = self._db.clock()
        self._count(tx, rate_key, rate, now)
        params = {
            "cid": conversation_id,
            "now": now,
            "text": text,
            "entities": entities,
            "capture": capture,
        }
        for stmt in record_statements(tx.dialect, consume):
            tx.rowcount(stmt, params)

    def _count(self, tx: Transaction, rate_key: str, rate: RateLimit, now: float) -> None:
        stmt = count_statement(tx.dialect)
        (count,) = tx.scalars(stmt, {"sender": rate_key, "start": rate.window_start(now)})
        if int(count) > rate.limit:
            raise rate.refused(now)

    def record_replies(
        self,
        tx: Transaction,
        conversation_id: str,
        lines: list[str],
        rule: ContextRule | None,
    ) -> None:
        """Store the bot's reference-form lines and, if it set one, the next message's rule."""
        now = self._db.clock()
        if lines:
            tx.many(REPLY_LINES, [{"cid": conversation_id, "now": now, "text": t} for t in lines])
        if rule is not None:
            payload = rule.to_json()
            stmt = new_state_row(tx.dialect, conversation_id, now, context_json=payload)
            tx.execute(
                stmt.on_conflict_do_update(
                    index_elements=[STATE.c.conversation_id],
                    set_={"context_json": payload, "updated_at": now},
                )
            )

    def record_retry(
        self,
        conversation_id: str,
        rate_key: str,
        rate: RateLimit,
        line: str,
        entities: str | None,
        rule: ContextRule,
        then: Callable[[Transaction], None] | None = None,
    ) -> None:
        """A failed secure-capture attempt with retries left: count it, keep the (retried)
        rule, store the user's line and the gateway's retry answer, one transaction
        (`then(tx)` last in it: the message id's claim)."""
        with self._db.transaction() as tx:
            if then is not None:
                then(tx)
            now = self._db.clock()
            self._count(tx, rate_key, rate, now)
            payload = rule.to_json()
            stmt = new_state_row(tx.dialect, conversation_id, now, context_json=payload)
            tx.execute(
                stmt.on_conflict_do_update(
                    index_elements=[STATE.c.conversation_id],
                    set_={
                        "context_json": payload,
                        "updated_at": now,
                        "last_activity": now,
                        "last_capture_json": None,
                    },
                )
            )
            tx.execute(
                HISTORY.insert(),
                [
                    {
                        "conversation_id": conversation_id,
                        "direction": direction,
                        "text": text,
                        "created_at": now,
                        "entities_json": found,
                    }
                    for direction, text, found in (
                        ("in", line, entities),
                        ("out", rule.retry_text, None),
                    )
                ],
            )

    def bump(self, tx: Transaction, limits: tuple[tuple[str, RateLimit], ...]) -> None:
        """Count one use against each `(key, limit)` in the caller's transaction; the
        first over its limit raises `RateLimited` (rolling back the caller's work)."""
        now = self._db.clock()
        for key, rate in limits:
            self._count(tx, key, rate, now)

    def epoch_history(
        self, tx: Transaction, conversation_id: str, since: float | None
    ) -> list[dict[str, Any]]:
        """The redacted lines since `since` (the ended session's turns), oldest first, in
        the caller's transaction (the end's: what it exports is what it ended)."""
        query = (
            select(
                HISTORY.c.direction, HISTORY.c.text, HISTORY.c.created_at, HISTORY.c.entities_json
            )
            .where(HISTORY.c.conversation_id == conversation_id)
            .order_by(HISTORY.c.id)
        )
        if since is not None:
            query = query.where(HISTORY.c.created_at >= since)
        return [
            {"direction": r.direction, "text": r.text, "at": r.created_at, "entities": []}
            for r in tx.execute(query).all()
        ]

    def history(self, conversation_id: str) -> list[dict[str, Any]]:
        """The redacted transcript, both directions, oldest first (lock-free read)."""
        rows = self._db.read(
            select(
                HISTORY.c.direction, HISTORY.c.text, HISTORY.c.created_at, HISTORY.c.entities_json
            )
            .where(HISTORY.c.conversation_id == conversation_id)
            .order_by(HISTORY.c.id)
        )
        return [
            {
                "direction": r.direction,
                "text": r.text,
                "at": r.created_at,
                "entities": json.loads(r.entities_json) if r.entities_json else [],
            }
            for r in rows
        ]

    def forget_rates(self, tx: Transaction, keys: tuple[str, ...]) -> int:
        """Delete every rate counter of the rate keys `keys` (a subject's erasure)."""
        return tx.execute(delete(RATE).where(RATE.c.sender.in_(keys))).rowcount

    def forget_history(self, tx: Transaction, ids: tuple[str, ...]) -> int:
        """Delete every history line of the conversations `ids` (a subject's erasure)."""
        return tx.execute(delete(HISTORY).where(HISTORY.c.conversation_id.in_(ids))).rowcount

    def drop_past_windows(self, current_start: int, batch: int, rounds: int) -> int:
        """Delete rate counters of windows before `current_start`, in batches of short
        transactions (a backlog never holds the write lock for long)."""
        query = select(RATE.c.id).where(RATE.c.window_start < current_start).limit(batch)
        dropped = 0
        for _ in range(rounds):
            ids = self._db.scalars(query)
            if ids:
                with self._db.transaction() as tx:
                    dropped += tx.execute(delete(RATE).where(RATE.c.id.in_(ids))).rowcount
            if len(ids) < batch:
                break
        return dropped
