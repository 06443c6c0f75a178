"""Conversation lifecycle: THE way a conversation ends, and its status after expiries.

`Lifecycle.end` is the one way a conversation ends: the `/end` route, the bot's `end`
directive and the sweeper's idle timeout all call it.  In ONE transaction it claims the
conversation's state row (a conditional UPDATE: of two workers, one wins; the other's
UPDATE waits for the winner's commit and then matches nothing), applies the per-type
retention in the vault (`Vault.end` in the same `Transaction`, audited) and stores the
outcome, and, in that same transaction, whatever must commit with the end (`in_end`: the
export outbox's record of the ended session, so a crash loses neither).  After the commit
it settles the vault's files (`Vault.settle`: what the end shredded leaves the live
database files; the sweeper's idle ends settle once per pass) and tells its listeners
(the outbox worker, woken).  A conversation's lifecycle owns every key epoch: nothing is
vaulted into an ended conversation except through a message (which reopens it), and the
sweeper ends any live epoch without an active state row (`EndReason.ORPHAN`).
Decisions: docs/lifecycle.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.middleware.gateway.store.db import Clock
from coatcheck.vault import Transaction, Vault

__all__ = ["EndHook", "EndListener", "EndReason", "EndResult", "Lifecycle"]


class EndReason(StrEnum):
    API = "api"  # POST /v1/conversations/{id}/end
    BOT = "bot"  # the bot's {"end": true} directive
    IDLE = "idle"  # the sweeper: no message for COATCHECK_IDLE_TIMEOUT_SECONDS
    ORPHAN = "orphan"  # the sweeper: a live key epoch whose conversation is not active


@dataclass(frozen=True)
class EndResult:
    """What `Lifecycle.end` did.

    `ended` is True when this call ended the conversation (False: it had ended already,
    or for an idle end, another worker ended it or a message arrived).  `status` is the
    conversation's status afterwards (see `ConversationRecords.status`).
    """

    conversation_id: str
    ended: bool
    status: str
    reason: str
    ended_at: float | None
    retain_until: float | None


EndListener = Callable[[EndResult], None]
EndHook = Callable[[Transaction, EndResult], None]


class Lifecycle:
    """Ends conversations under the retention policy; `idle_timeout` 0 means never idle."""

    def __init__(
        self,
        store: GatewayStore,
        vault: Vault,
        *,
        clock: Clock,
        idle_timeout: float,
        listeners: Sequence[EndListener] = (),
        in_end: Sequence[EndHook] = (),
        tenant: str = "default",
    ) -> None:
        self._store = store
        self._states = store.conversations
        self._vault = vault
        self._clock = clock
        self.idle_timeout = idle_timeout
        self._listeners = tuple(listeners)
        self._in_end = tuple(in_end)
        self._tenant = tenant

    def end(self, conversation_id: str, actor: str, reason: str) -> EndResult:
        """End the conversation now (or, for `idle`, only if it is still idle); one
        transaction.

        Idempotent: ending an ended conversation changes nothing but still ends any key
        epoch opened since (e.g. by `/v1/redact`), and answers its current status.
        """
        why = EndReason(reason)
        with self._store.transaction() as tx:
            result = self._end(tx, conversation_id, actor, why)
            if result.ended:  # committed with the end, or not at all
                for hook in self._in_end:
                    hook(tx, result)
        if why not in (EndReason.IDLE, EndReason.ORPHAN):  # the sweeper settles once a pass
            self._vault.settle()  # what the end shredded leaves the live files now (docs/keys.md)
        if result.ended:  # after the commit: one place for every way a conversation ends
            for listener in self._listeners:
                listener(result)
        return result

    def _end(self, tx: Transaction, conversation_id: str, actor: str, why: EndReason) -> EndResult:
        now = self._clock()
        cutoff = None
        if why is EndReason.IDLE:
            if self.idle_timeout <= 0:
                return self._unchanged(tx, conversation_id, why)
            cutoff = now - self.idle_timeout
        if why is EndReason.ORPHAN:
            if self._states.lock(tx, conversation_id) == "active" or not (
                self._states.has_live_epoch(tx, self._tenant, conversation_id)
            ):  # the idle timeout's, or another sweeper ended it meanwhile
                return self._unchanged(tx, conversation_id, why)
            claimed = False
        else:
            claimed = self._states.claim_end(tx, conversation_id, why.value, now, cutoff)
        if not claimed:
            if why is EndReason.IDLE:
                return self._unchanged(tx, conversation_id, why)
            # A conversation the gateway never recorded (e.g. only `/v1/redact`) is stored
            # ended; a row created first by a concurrent message is left to that message.
            claimed = self._states.insert_ended(tx, conversation_id, why.value, now)
            if not claimed:  # already ended: still lock the row first (lock order, below)
                self._states.lock(tx, conversation_id)
        # Lock order everywhere: state row -> key epochs -> values -> audit head.
        summary = self._vault.end(conversation_id, actor, why.value, tx=tx)
        holdings = summary.holdings
        status = holdings.status if holdings.status != "active" else "ended"
        row = self._states.set_outcome(tx, conversation_id, status, holdings.retain_until)
        ended_at = row.ended_at if row is not None else now
        return EndResult(
            conversation_id, claimed, status, why.value, ended_at, holdings.retain_until
        )

    def _unchanged(self, tx: Transaction, conversation_id: str, why: EndReason) -> EndResult:
        row = self._states.end_state(tx, conversation_id)
        if row is None:
            return EndResult(conversation_id, False, "unknown", why.value, None, None)
        return EndResult(
            conversation_id, False, row.status, why.value, row.ended_at, row.retain_until
        )

    def sync_status(self, conversation_id: str) -> None:
        """After an expiry: an ended conversation's status follows what the vault still
        holds.  The state row is locked before the vault is read, so an `end` committing
        meanwhile is seen, never overwritten with an older picture."""
        with self._store.transaction() as tx:
            status = self._states.lock(tx, conversation_id)
            if status is None or status == "active":
                return
            holdings = self._vault.holdings(conversation_id, tx=tx)
            if holdings.status == "active":
                return
            self._states.set_status(tx, conversation_id, holdings.status, holdings.retain_until)

    def open_for_values(self, tx: Transaction, conversation_id: str) -> bool:
        """In the transaction that vaults values outside the message path (`/v1/redact`):
        start a never-seen conversation (state row, idle timeout, retention) and lock its
        row; False when it has ended (the caller rolls back: nothing is vaulted)."""
        return self._states.open_for_values(tx, conversation_id, self._clock())

    def ensure_active(self, conversation_id: str) -> str:
        """The conversation's status, starting it if the gateway never saw it (before
        vaulting outside the webhook, so the idle sweeper ends such a conversation too)."""
        with self._store.transaction() as tx:
            return self._states.ensure_active(tx, conversation_id, self._clock())
