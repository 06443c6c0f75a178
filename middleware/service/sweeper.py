"""The sweeper: idle-timeout ends, TTL and retention expiries, past rate-limit windows; in
every worker, each thing done once.

Every worker runs `run_sweeper` (started in the app's lifespan, every
`COATCHECK_SWEEP_INTERVAL_SECONDS`); correctness never depends on there being one:

- idle ends: the candidates are read lock-free, then each goes through
  `end_conversation(..., "idle")`, whose conditional claim (`status = 'active' AND
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
  (`verify_once`), without the write lock; the viewer shows the newest result.

Everything is audited by the vault (`end`, `expire`, `shred`, `kek_destroy`, actor
`sweeper`).  The clock is the gateway's (injected in tests); `sweep_once` is what tests call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

import anyio
from anyio import to_thread
from sqlalchemy import Select, Table, delete, select
from sqlalchemy.exc import SQLAlchemyError

from coatcheck.middleware.models import ConversationState, RateCounter
from coatcheck.middleware.service.errors import StorageUnavailable
from coatcheck.middleware.service.lifecycle import EndReason, end_conversation, sync_status
from coatcheck.middleware.service.state import Gateway
from coatcheck.middleware.service.store import guarded_conn, guarded_tx

__all__ = ["SWEEPER", "SweepReport", "run_sweeper", "sweep_once", "verify_once"]

log = logging.getLogger(__name__)

SWEEPER = "sweeper"
_BATCH = 500
_MAX_ROUNDS = 20
_STATE = cast(Table, ConversationState.__table__)
_RATE = cast(Table, RateCounter.__table__)


@dataclass(frozen=True)
class SweepReport:
    """What one pass did (this worker's share only)."""

    ended: tuple[str, ...] = ()
    forgotten: int = 0
    shredded_epochs: int = 0
    rate_rows_dropped: int = 0
    keks_destroyed: int = 0


def sweep_once(gw: Gateway, *, batch: int = _BATCH) -> SweepReport:
    """One pass: end idle conversations, forget due values and shred emptied epochs, then
    drop the rate counters of past windows."""
    ended = _idle_ends(gw, batch)
    forgotten = shredded = 0
    touched: set[str] = set()
    for _ in range(_MAX_ROUNDS):
        with guarded_tx(gw.writer) as tx:
            summary = gw.vault.expire_due(SWEEPER, limit=batch, tx=tx)
        forgotten += summary.forgotten
        shredded += summary.shredded_epochs
        touched |= summary.conversations
        if summary.forgotten == 0 and summary.shredded_epochs == 0:
            break
    for conversation_id in sorted(_ended_among(gw, touched) | _retained_past_deadline(gw, batch)):
        with guarded_tx(gw.writer) as tx:
            sync_status(tx, gw, conversation_id)
    dropped = _drop_past_rate_windows(gw, batch)
    upkeep = gw.vault.maintain(SWEEPER, limit=batch)
    return SweepReport(tuple(ended), forgotten, shredded, dropped, upkeep.destroyed)


def verify_once(gw: Gateway) -> bool:
    """Verify the audit chain from the newest good verification (read transactions only:
    no writer waits for it); the result is recorded for the viewer.  Whether it holds."""
    report = gw.vault.verify_audit()
    if not report.ok:
        log.error("audit chain BROKEN at row %s", report.first_bad)
    return report.ok


def _drop_past_rate_windows(gw: Gateway, batch: int) -> int:
    """Delete rate counters of windows that are over: one row per sender and window would
    otherwise pile up forever (and keep every sender id that ever wrote).  In batches of
    `batch` ids, each its own short transaction, so a backlog never holds the write lock
    for long; several workers deleting the same rows is harmless."""
    window = gw.settings.rate_window_seconds
    current = int(gw.clock() // window) * window
    query = select(_RATE.c.id).where(_RATE.c.window_start < current).limit(batch)
    dropped = 0
    for _ in range(_MAX_ROUNDS):
        ids = _read(gw, query)
        if ids:
            with guarded_conn(gw.writer) as conn:
                dropped += conn.execute(delete(_RATE).where(_RATE.c.id.in_(ids))).rowcount
        if len(ids) < batch:
            break
    return dropped


def _ended_among(gw: Gateway, conversation_ids: set[str]) -> set[str]:
    """Those whose status may change (active ones keep theirs): one lock-free read."""
    found: set[str] = set()
    ids = sorted(conversation_ids)
    for start in range(0, len(ids), _BATCH):
        query = select(_STATE.c.conversation_id).where(
            _STATE.c.conversation_id.in_(ids[start : start + _BATCH]),
            _STATE.c.status != "active",
        )
        found.update(_read(gw, query))
    return found


def _retained_past_deadline(gw: Gateway, batch: int) -> set[str]:
    query = (
        select(_STATE.c.conversation_id)
        .where(_STATE.c.status == "retained", _STATE.c.retain_until <= gw.clock())
        .limit(batch)
    )
    return set(_read(gw, query))


def _read(gw: Gateway, query: Select[Any]) -> list[str]:
    try:
        with gw.reader.connect() as conn:
            return list(conn.execute(query).scalars())
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None


def _idle_ends(gw: Gateway, batch: int) -> list[str]:
    timeout = gw.settings.idle_timeout_seconds
    if timeout <= 0:
        return []
    cutoff = gw.clock() - timeout
    query = (
        select(_STATE.c.conversation_id)
        .where(_STATE.c.status == "active", _STATE.c.last_activity <= cutoff)
        .order_by(_STATE.c.last_activity)
        .limit(batch)
    )
    ended = []
    for _ in range(_MAX_ROUNDS):
        candidates = _read(gw, query)
        for conversation_id in candidates:
            if end_conversation(gw, conversation_id, SWEEPER, EndReason.IDLE).ended:
                ended.append(conversation_id)
        if len(candidates) < batch:
            break
    return ended


async def run_sweeper(gw: Gateway, interval: float) -> None:
    """Sweep every `interval` seconds until cancelled; a failed pass is logged and retried.

    Each pass runs in a worker thread under the gateway's database limiter (on SQLite it
    queues with the messages instead of fighting them for the write lock).  Cancelling
    waits for a running pass to finish, so the engines are never disposed under it.
    """
    verify_every = gw.settings.audit_verify_seconds
    verified_at = gw.clock()
    while True:
        await anyio.sleep(interval)
        if verify_every > 0 and gw.clock() - verified_at >= verify_every:
            verified_at = gw.clock()
            try:  # in its own thread, outside the limiter: it reads, and no writer waits
                await to_thread.run_sync(verify_once, gw)
            except Exception as exc:
                log.warning("audit verification failed: %s", type(exc).__name__)
        try:
            report = await to_thread.run_sync(sweep_once, gw, limiter=gw.db_limiter)
        except Exception as exc:  # keep sweeping: the next pass retries what failed
            log.warning("sweep failed: %s", type(exc).__name__)
            continue
        if report.keks_destroyed:
            log.info("sweep: %d key-encryption keys destroyed", report.keks_destroyed)
        if report.ended or report.forgotten or report.shredded_epochs:
            log.info(
                "sweep: %d idle conversations ended, %d values forgotten, %d keys shredded",
                len(report.ended),
                report.forgotten,
                report.shredded_epochs,
            )
        if report.rate_rows_dropped:
            log.debug("sweep: %d past rate-limit windows dropped", report.rate_rows_dropped)
