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
- keys: `Vault.maintain` moves data keys out of buckets that ended, destroys KEKs nothing
  needs any more and settles the files (docs/keys.md), so a shred is final within the
  documented bound; each KEK destroy is claimed with a row lock, so once.
- audit: every `COATCHECK_AUDIT_VERIFY_SECONDS` the chain is verified incrementally
  (`verify_once`), without the write lock; the log viewer shows the newest result.

Everything is audited by the vault (`end`, `expire`, `shred`, `kek_destroy`, actor
`sweeper`).  The clock is the gateway's (injected in tests); `Sweeper.sweep_once` and
`Sweeper.verify_once` are what tests call.
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
    keks_destroyed: int = 0
    orphans_ended: tuple[str, ...] = ()
    message_ids_dropped: int = 0


class Sweeper:
    """Idle ends, expiries, rate-window clean-up, key upkeep and audit verification for
    one worker; `verify_every` seconds between verifications (0: never)."""

    def __init__(
        self,
        store: GatewayStore,
        vault: Vault,
        lifecycle: Lifecycle,
        *,
        clock: Clock,
        rate_window: int,
        limiter: CapacityLimiter,
        verify_every: float = 0.0,
        tenant: str = "default",
        idempotency_window: float = 86400.0,
    ) -> None:
        self._store = store
        self._vault = vault
        self._lifecycle = lifecycle
        self._clock = clock
        self.rate_window = rate_window
        self._limiter = limiter
        self.verify_every = verify_every
        self._tenant = tenant
        self._idempotency_window = idempotency_window

    def sweep_once(self, *, batch: int = _BATCH) -> SweepReport:
        """One pass: end idle conversations, forget due values and shred emptied epochs,
        drop the rate counters of past windows, then the keys' upkeep (`Vault.maintain`)."""
        ended = self._idle_ends(batch)
        orphans = self._orphan_ends(batch)
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
        ids = self._store.message_ids.drop_before(self._clock() - self._idempotency_window, batch)
        upkeep = self._vault.maintain(SWEEPER, limit=batch)
        return SweepReport(
            tuple(ended), forgotten, shredded, dropped, upkeep.destroyed, tuple(orphans), ids
        )

    def _orphan_ends(self, batch: int) -> list[str]:
        """End every live key epoch whose conversation is not active (or has no state
        row): nothing else would ever end it (docs/lifecycle.md, "Every epoch has an end")."""
        ended = []
        for conversation_id in self._store.conversations.orphans(self._tenant, batch):
            self._lifecycle.end(conversation_id, SWEEPER, EndReason.ORPHAN)
            ended.append(conversation_id)
        return ended

    def verify_once(self) -> bool:
        """Verify the audit chain from the newest good verification (read transactions
        only: no writer waits for it); the result is recorded for the log viewer.  Whether
        it holds."""
        report = self._vault.verify_audit()
        if not report.ok:
            log.error("audit chain BROKEN at row %s", report.first_bad)
        return report.ok

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
        under it.  The audit chain is verified first when `verify_every` has passed: in its
        own thread, outside the limiter (it only reads, and no writer waits for it).
        """
        verified_at = self._clock()
        while True:
            await anyio.sleep(interval)
            if self.verify_every > 0 and self._clock() - verified_at >= self.verify_every:
                verified_at = self._clock()
                try:
                    await to_thread.run_sync(self.verify_once)
                except Exception as exc:
                    log.warning("audit verification failed: %s", type(exc).__name__)
            try:
                report = await to_thread.run_sync(self.sweep_once, limiter=self._limiter)
            except Exception as exc:  # keep sweeping: the next pass retries what failed
                log.warning("sweep failed: %s", type(exc).__name__)
                continue
            if report.keks_destroyed:
                log.info("sweep: %d key-encryption keys destroyed", report.keks_destroyed)
            if report.orphans_ended:
                log.warning("sweep: %d orphaned key epochs ended", len(report.orphans_ended))
            if report.ended or report.forgotten or report.shredded_epochs:
                log.info(
                    "sweep: %d idle conversations ended, %d values forgotten, %d keys shredded",
                    len(report.ended),
                    report.forgotten,
                    report.shredded_epochs,
                )
            if report.rate_rows_dropped:
                log.debug("sweep: %d past rate-limit windows dropped", report.rate_rows_dropped)
