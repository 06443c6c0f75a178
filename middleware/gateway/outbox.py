"""The outbox worker: delivers the export records that conversation ends left behind.

Each worker process runs one (`OutboxWorker.run`, started by the app's lifespan beside the
sweeper).  A pass claims due rows with a lease (a short transaction), then delivers them
concurrently on the event loop, holding no database connection and no slot of the
database limiter while a sink takes its time: a slow or dead sink delays only its own
records, never a message.  Each row is then settled in a short transaction: deleted once
delivered; on failure due again after an exponential backoff, and a dead letter after
`max_attempts` (kept, counted, requeued by an admin: `POST /v1/exports/outbox/requeue`).

Delivery is at least once: a worker that dies after a sink accepted a record but before the
row was deleted leaves it to be sent again when its lease runs out (receivers deduplicate
on `conversation_id` + `ended_at`, which every record carries).  A row is never lost: it
was committed with the end, and is deleted only after a sink's 2xx (or its fsync).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Callable, Mapping

import anyio
from anyio import CapacityLimiter, to_thread

from coatcheck.middleware.export import ExportSink, ExportSinkError, OutboxSettings
from coatcheck.middleware.gateway.lifecycle import EndResult
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.middleware.gateway.store.db import Clock
from coatcheck.middleware.gateway.store.outbox import Claimed

__all__ = ["OutboxWorker"]

log = logging.getLogger(__name__)

SINK_REMOVED = "sink no longer configured"


class OutboxWorker:
    """Drains the outbox into the configured sinks (`sinks`: by `sink_key`)."""

    def __init__(
        self,
        store: GatewayStore,
        sinks: Mapping[str, ExportSink],
        settings: OutboxSettings,
        *,
        clock: Clock,
        limiter: CapacityLimiter,
    ) -> None:
        self._outbox = store.outbox
        self._sinks = dict(sinks)
        self.settings = settings
        self._clock = clock
        self._limiter = limiter
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt `attempts + 1`: doubling from `backoff_seconds`, capped."""
        base = self.settings.backoff_seconds * 2 ** min(attempts - 1, 30)
        return float(min(base, self.settings.max_backoff_seconds))

    async def drain_once(self) -> int:
        """Claim the due rows and deliver them (concurrently); how many were delivered.

        The claim and each settlement are short transactions through the database limiter
        (on SQLite they queue with the messages instead of meeting them in the busy
        handler); the deliveries hold nothing."""
        if not self._sinks:
            return 0
        claimed = await to_thread.run_sync(
            self._outbox.claim,
            self.settings.lease_seconds,
            self.settings.batch,
            limiter=self._limiter,
        )
        delivered = 0

        async def one(row: Claimed) -> None:
            nonlocal delivered
            if await self._deliver(row):
                delivered += 1

        async with anyio.create_task_group() as group:
            for row in claimed:
                group.start_soon(one, row)
        return delivered

    async def _deliver(self, row: Claimed) -> bool:
        sink = self._sinks.get(row.sink)
        attempts = row.attempts + 1
        if sink is None:
            await self._settle(self._outbox.failed, row.id, attempts, None, SINK_REMOVED)
            log.error("export record dead-lettered: its sink is no longer configured")
            return False
        try:
            await sink.send(json.loads(row.record_json))
        except ExportSinkError as exc:
            retry_at = None
            if attempts < self.settings.max_attempts:
                retry_at = self._clock() + self.backoff(attempts)
            await self._settle(self._outbox.failed, row.id, attempts, retry_at, exc.reason)
            if retry_at is None:
                log.error("export record dead-lettered: sink=%s attempts=%d", exc.sink, attempts)
            else:
                log.warning("export delivery failed (will retry): sink=%s", exc.sink)
            return False
        await self._settle(self._outbox.delivered, row.id)
        return True

    async def _settle(self, call: Callable[..., object], *args: object) -> None:
        """Run one settlement off the loop; a database failure is logged (the lease runs
        out and the row is tried again: at least once)."""
        try:
            await to_thread.run_sync(functools.partial(call, *args), limiter=self._limiter)
        except Exception as exc:
            log.warning("outbox settlement failed: %s", type(exc).__name__)

    def counts(self) -> dict[str, int]:
        """Records waiting (`pending`) and dead letters (`dead`)."""
        return self._outbox.counts()

    def requeue_dead(self) -> int:
        """Give every dead letter a fresh attempt budget, due now; how many."""
        requeued = self._outbox.requeue_dead()
        if requeued:
            log.info("outbox: %d dead letters requeued", requeued)
        return requeued

    def nudge(self, result: EndResult) -> None:
        """A `Lifecycle` listener: a conversation ended, so look at the outbox now rather
        than at the next poll (thread-safe; a no-op before `run` starts)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Drain every `poll_seconds` (or at once when nudged) until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while True:
            try:
                while await self.drain_once() >= self.settings.batch:
                    pass  # a backlog: keep going
            except Exception as exc:  # keep draining: the next pass retries
                log.warning("outbox pass failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)
            self._wake.clear()
