"""The gateway's share of migration 0010: its rows move to the pseudonym with the vault's.

Why here: history lines and the state row are keyed by the conversation id, which before
pseudonymous conversations was the channel's raw sender id (a phone number, an e-mail
address).  `Vault.migrate_pseudonyms` renames each conversation in one transaction and
calls `GatewayRows.move` inside it, so a conversation's history, state and values are
either all under the old id or all under the pseudonym (docs/keys.md, "Pseudonyms").
Rate counters are windows of a minute or so: a legacy one is simply deleted.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update

from coatcheck.middleware.gateway.conversation import SENDER_ID
from coatcheck.middleware.gateway.store.statements import HISTORY, RATE, STATE
from coatcheck.vault import PSEUDONYM_RE, Transaction, Vault

__all__ = ["GatewayRows", "migrate_pseudonyms"]


def _legacy(ids: list[str]) -> set[str]:
    return {cid for cid in ids if PSEUDONYM_RE.fullmatch(cid) is None}


class GatewayRows:
    """`vault.LegacyRows` over the gateway's history, state and rate counters."""

    def legacy_ids(self, tx: Transaction) -> set[str]:
        found: set[str] = set()
        for column in (HISTORY.c.conversation_id, STATE.c.conversation_id, RATE.c.sender):
            found |= _legacy(list(tx.execute(select(column).distinct()).scalars()))
        return found

    def move(self, tx: Transaction, old: str, new: str) -> int:
        changed = tx.execute(delete(RATE).where(RATE.c.sender == old)).rowcount
        taken = tx.execute(select(STATE.c.conversation_id).where(STATE.c.conversation_id == new))
        state = STATE.c.conversation_id == old
        if taken.first() is None:
            changed += tx.execute(update(STATE).where(state).values(conversation_id=new)).rowcount
        else:  # the pseudonym wrote first (a race with a new worker): its state stands
            changed += tx.execute(delete(STATE).where(state)).rowcount
        history = update(HISTORY).where(HISTORY.c.conversation_id == old)
        return changed + tx.execute(history.values(conversation_id=new)).rowcount


def migrate_pseudonyms(vault: Vault) -> int:
    """The start-up step: conversations stored under raw ids move to their pseudonyms."""
    return vault.migrate_pseudonyms(GatewayRows(), sender_type=SENDER_ID)
