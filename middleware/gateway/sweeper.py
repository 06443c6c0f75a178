"""The sweeper: idle-timeout ends, TTL and retention expiries, past rate-limit windows; in
every worker, each thing done once.

Every worker runs `run_sweeper` (started in the app's lifespan, every
`COATCHECK_SWEEP_INTERVAL_SECONDS`); correctness never depends on there being one:

- idle ends: the candidates are read lock-free, then each goes through
  `Lifecycle.end(..., "idle")`, whose conditional claim (`status = 'active' AND
  last_activity <= cutoff`) lets one worker end it; the others' UPDATE waits for that
  commit and matches nothing.  A message that arrived meanwhile moved `last_activity`, so
  the claim misses too.
- expiries: `Vault.expire_due` locks the epochs holding due values FOR UPDATE SKIP LOCKED
  (PostgreSQL) and re-checks each value in its UPDATE.  The status of the conversations
  it touched is brought up to date afterwards, one short transaction each (the state row
  is locked first: the lock order of `end_conversation` is state row -> epochs -> values
  -> audit head, and the expiry's audit append must stay its last lock).  Retained
  conversations past their deadline are re-synced on every pass, so a crash between the
  two leaves no stale status behind.

Everything is audited by the vault (`end`, `expire`, `shred`, actor `sweeper`).  The clock
is the gateway's (injected in tests); `Sweeper.sweep_once` is what tests call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio
from anyio import CapacityLimiter, to_thread

from coatcheck.middleware.gateway.lifecycle import EndReason, Lifecycle
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.middleware.gateway.store.db import Clock
from coatcheck.vault import Vault

__all__ = ["SWEEPER", "SweepReport", "Sweeper"]

log = logging.getLogger(__name__)

SWEEPER = "sweeper"
_BATCH = 500
_MAX_ROUNDS = 20


@dataclass(frozen=True)
class SweepReport:
    """What one pass did (this worker's share only)."""

    ended: tuple[str, ...] = ()
    forgotten: int = 0
    shredded_epochs: int = 0
    rate_rows_dropped: int = 0


class Sweeper:
    """Idle ends, expiries and rate-window clean-up for one worker."""

    def __init__(
        self,
        store: GatewayStore,
        vault: Vault,
        lifecycle: Lifecycle,
        *,
        clock: Clock,
        rate_window: int,
        limiter: CapacityLimiter,
    ) -> None:
        self._store = store
        self._vault = vault
        self._lifecycle = lifecycle
        self._clock = clock
        self.rate_window = rate_window
        self._limiter = limiter

    def sweep_once(self, *, batch: int = _BATCH) -> SweepReport:
        """One pass: end idle conversations, forget due values and shred emptied epochs,
        then drop the rate counters of past windows."""
        ended = self._idle_ends(batch)
        forgotten = shredded = 0
        touched: set[str] = set()
        for _ in range(_MAX_ROUNDS):
            with self._store.transaction() as tx:
                summary = self._vault.expire_due(SWEEPER, limit=batch, tx=tx)
            forgotten += summary.forgotten
            shredded += summary.shredded_epochs
            touched |= summary.conversations
            if summary.forgotten == 0 and summary.shredded_epochs == 0:
                break
        states = self._store.conversations
        stale = states.not_active_among(touched, _BATCH)
        stale |= states.retained_past(self._clock(), batch)
        for conversation_id in sorted(stale):
            self._lifecycle.sync_status(conversation_id)
        # One row per sender and window would otherwise pile up forever (and keep every
        # sender id that ever wrote); several workers deleting the same rows is harmless.
        current = int(self._clock() // self.rate_window) * self.rate_window
        dropped = self._store.messages.drop_past_windows(current, batch, _MAX_ROUNDS)
        return SweepReport(tuple(ended), forgotten, shredded, dropped)

    def _idle_ends(self, batch: int) -> list[str]:
        timeout = self._lifecycle.idle_timeout
        if timeout <= 0:
            return []
        cutoff = self._clock() - timeout
        ended = []
        for _ in range(_MAX_ROUNDS):
            candidates = self._store.conversations.idle_since(cutoff, batch)
            for conversation_id in candidates:
                if self._lifecycle.end(conversation_id, SWEEPER, EndReason.IDLE).ended:
                    ended.append(conversation_id)
            if len(candidates) < batch:
                break
        return ended

    async def run(self, interval: float) -> None:
        """Sweep every `interval` seconds until cancelled; a failed pass is logged and
        retried.

        Each pass runs in a worker thread under the gateway's database limiter (on SQLite
        it queues with the messages instead of fighting them for the write lock).
        Cancelling waits for a running pass to finish, so the engines are never disposed
        under it.
        """
        while True:
            await anyio.sleep(interval)
            try:
                report = await to_thread.run_sync(self.sweep_once, limiter=self._limiter)
            except Exception as exc:  # keep sweeping: the next pass retries what failed
                log.warning("sweep failed: %s", type(exc).__name__)
                continue
            if report.ended or report.forgotten or report.shredded_epochs:
                log.info(
                    "sweep: %d idle conversations ended, %d values forgotten, %d keys shredded",
                    len(report.ended),
                    report.forgotten,
                    report.shredded_epochs,
                )
            if report.rate_rows_dropped:
                log.debug("sweep: %d past rate-limit windows dropped", report.rate_rows_dropped)
