"""Per-reference check budgets (`gw_check_budget`): how many checks each reference had.

`spend` takes one unit in one transaction: the row is created at 0 if missing, then
raised by a conditional UPDATE (`used < limit`), so concurrent checks on any worker
never overspend.  Rows hold a conversation id and a reference id, never a value.
"""

from __future__ import annotations

from sqlalchemy import delete, update

from coatcheck.middleware.gateway.store.db import Db
from coatcheck.middleware.gateway.store.statements import CHECKS, dialect_insert
from coatcheck.vault import Transaction

__all__ = ["CheckBudgets"]


class CheckBudgets:
    """Spend and forget check budgets."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def spend(self, conversation_id: str, ref: str, limit: int) -> bool:
        """Take one check from the reference's budget; False when it is spent."""
        with self._db.transaction() as tx:
            dialect = tx.dialect
            tx.execute(
                dialect_insert(dialect, CHECKS)
                .values(conversation_id=conversation_id, ref=ref, used=0)
                .on_conflict_do_nothing()
            )
            raised = tx.execute(
                update(CHECKS)
                .where(
                    CHECKS.c.conversation_id == conversation_id,
                    CHECKS.c.ref == ref,
                    CHECKS.c.used < limit,
                )
                .values(used=CHECKS.c.used + 1)
            )
            return raised.rowcount == 1

    def forget(self, tx: Transaction, ids: tuple[str, ...]) -> int:
        """Drop the budgets of these conversations (subject erasure)."""
        return tx.execute(delete(CHECKS).where(CHECKS.c.conversation_id.in_(ids))).rowcount
