"""The LLM gateway's placeholder book on the database (`coatcheck.middleware.llm.book`).

`number_many` runs inside the vault's tokenize transaction (`then(tx, refs)`), so the
numbers commit with the values or not at all.  Per new reference: bump the
(conversation, label) counter (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`: a row lock
on PostgreSQL, the write lock on SQLite), then insert the placeholder with `ON CONFLICT
(tenant, conversation_id, ref_id) DO NOTHING`; when that inserts nothing, a concurrent
request numbered the same reference first and its number is read back (the counter value
is lost: gaps, never duplicates).  The unique constraints decide, not process memory, so
any number of workers agree.  Rows hold references only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, and_, delete, select, tuple_

from coatcheck.middleware.gateway.store.db import Db
from coatcheck.middleware.gateway.store.statements import dialect_insert
from coatcheck.middleware.models import LlmPlaceholder, LlmPlaceholderCounter
from coatcheck.vault import Transaction

__all__ = ["Placeholders"]

PLACEHOLDERS = cast(Table, LlmPlaceholder.__table__)
COUNTERS = cast(Table, LlmPlaceholderCounter.__table__)


class Placeholders:
    """`PlaceholderBook` on `llm_placeholders` / `llm_placeholder_counters`, per tenant."""

    def __init__(self, db: Db, tenant: str) -> None:
        self._db = db
        self._tenant = tenant

    def number_many(
        self, conversation_id: str, items: Sequence[tuple[str, str]], conn: Any = None
    ) -> list[int]:
        """One number per (label, ref_id), in the caller's transaction (`conn`); without one
        (tools, tests) in a transaction of its own."""
        if conn is None:
            with self._db.transaction() as own:
                return self.number_many(conversation_id, items, own)
        tx: Transaction = conn
        known = self._known(tx, conversation_id, [ref for _, ref in items])
        out: list[int] = []
        for label, ref in items:
            if ref not in known:
                known[ref] = self._number(tx, conversation_id, label, ref)
            out.append(known[ref])
        return out

    def _known(self, tx: Transaction, conversation_id: str, refs: list[str]) -> dict[str, int]:
        if not refs:
            return {}
        p = PLACEHOLDERS.c
        rows = tx.execute(
            select(p.ref_id, p.n).where(
                p.tenant == self._tenant,
                p.conversation_id == conversation_id,
                p.ref_id.in_(sorted(set(refs))),
            )
        ).all()
        return {row.ref_id: int(row.n) for row in rows}

    def _number(self, tx: Transaction, conversation_id: str, label: str, ref: str) -> int:
        key = {"tenant": self._tenant, "conversation_id": conversation_id, "label": label}
        counter = dialect_insert(tx.dialect, COUNTERS).values(**key, last_n=1)
        bump = counter.on_conflict_do_update(
            index_elements=["tenant", "conversation_id", "label"],
            set_={"last_n": COUNTERS.c.last_n + 1},
        ).returning(COUNTERS.c.last_n)
        n = int(tx.execute(bump).scalar_one())
        now = self._db.clock()
        row = {**key, "n": n, "ref_id": ref, "created_at": now}
        placeholder = dialect_insert(tx.dialect, PLACEHOLDERS).values(**row)
        insert = placeholder.on_conflict_do_nothing(
            index_elements=["tenant", "conversation_id", "ref_id"]
        ).returning(PLACEHOLDERS.c.n)
        taken = tx.execute(insert).scalar_one_or_none()
        if taken is not None:
            return int(taken)
        return self._known(tx, conversation_id, [ref])[ref]  # a concurrent request won

    def lookup_many(
        self, conversation_id: str, keys: Sequence[tuple[str, int]], conn: Any = None
    ) -> list[str | None]:
        """placeholder -> ref_id (None when unknown), for history and tools."""
        if not keys:
            return []
        p = PLACEHOLDERS.c
        query = select(p.label, p.n, p.ref_id).where(
            p.tenant == self._tenant,
            p.conversation_id == conversation_id,
            tuple_(p.label, p.n).in_([(label, n) for label, n in keys]),
        )
        rows = conn.execute(query).all() if conn is not None else self._db.read(query)
        found = {(row.label, int(row.n)): str(row.ref_id) for row in rows}
        return [found.get((label, n)) for label, n in keys]

    def forget(self, tx: Transaction, conversation_ids: tuple[str, ...]) -> int:
        """Delete the placeholders and counters of `conversation_ids` (their erasure)."""
        gone = 0
        for table in (PLACEHOLDERS, COUNTERS):
            where = and_(
                table.c.tenant == self._tenant, table.c.conversation_id.in_(conversation_ids)
            )
            gone += tx.execute(delete(table).where(where)).rowcount
        return gone
