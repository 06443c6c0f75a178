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

import functools
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, tuple_

from coatcheck.middleware.gateway.store.db import Db
from coatcheck.middleware.gateway.store.statements import dialect_insert
from coatcheck.middleware.models import LlmPlaceholder, LlmPlaceholderCounter
from coatcheck.vault import Statement, Transaction

__all__ = ["PLACEHOLDERS", "Placeholders", "forget_placeholders"]

PLACEHOLDERS = cast(Table, LlmPlaceholder.__table__)
COUNTERS = cast(Table, LlmPlaceholderCounter.__table__)
_KEY = ["tenant", "conversation_id"]

# Prebuilt (compiled once per dialect, run on the driver): building the Core statements per
# request cost more than the database's work (bench/llm.py).
_KNOWN = Statement(
    select(PLACEHOLDERS.c.ref_id, PLACEHOLDERS.c.n).where(
        PLACEHOLDERS.c.tenant == bindparam("tenant"),
        PLACEHOLDERS.c.conversation_id == bindparam("cid"),
    )
)


@functools.cache
def _bump(dialect: str) -> Statement:
    """The (conversation, label) counter, +1 (1 when new); RETURNING the number."""
    stmt = dialect_insert(dialect, COUNTERS).values(
        tenant=bindparam("tenant"),
        conversation_id=bindparam("cid"),
        label=bindparam("label"),
        last_n=bindparam("one"),
    )
    return Statement(
        stmt.on_conflict_do_update(
            index_elements=[*_KEY, "label"], set_={"last_n": COUNTERS.c.last_n + 1}
        ).returning(COUNTERS.c.last_n)
    )


@functools.cache
def _claim(dialect: str) -> Statement:
    """The placeholder row, unless the reference already has one (then no row back)."""
    stmt = dialect_insert(dialect, PLACEHOLDERS).values(
        tenant=bindparam("tenant"),
        conversation_id=bindparam("cid"),
        label=bindparam("label"),
        n=bindparam("n"),
        ref_id=bindparam("ref"),
        created_at=bindparam("now"),
    )
    return Statement(
        stmt.on_conflict_do_nothing(index_elements=[*_KEY, "ref_id"]).returning(PLACEHOLDERS.c.n)
    )


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
        known = self._known(tx, conversation_id)
        out: list[int] = []
        for label, ref in items:
            if ref not in known:
                known[ref] = self._number(tx, conversation_id, label, ref)
            out.append(known[ref])
        return out

    def _known(self, tx: Transaction, conversation_id: str) -> dict[str, int]:
        """Every numbered reference of the conversation (its primary-key prefix)."""
        rows = tx.rows(_KNOWN, {"tenant": self._tenant, "cid": conversation_id})
        return {row.ref_id: int(row.n) for row in rows}

    def _number(self, tx: Transaction, conversation_id: str, label: str, ref: str) -> int:
        key = {"tenant": self._tenant, "cid": conversation_id, "label": label}
        (n,) = tx.scalars(_bump(tx.dialect), {**key, "one": 1})
        row = {**key, "n": int(n), "ref": ref, "now": self._db.clock()}
        taken = tx.scalars(_claim(tx.dialect), row)
        if taken:
            return int(taken[0])
        return self._known(tx, conversation_id)[ref]  # a concurrent request won

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


def forget_placeholders(tx: Transaction, conversation_ids: tuple[str, ...]) -> int:
    """Delete the placeholders and counters of `conversation_ids`, every tenant's (the
    conversations' erasure, beside their history lines)."""
    gone = 0
    for table in (PLACEHOLDERS, COUNTERS):
        where = table.c.conversation_id.in_(conversation_ids)
        gone += tx.execute(delete(table).where(where)).rowcount
    return gone
