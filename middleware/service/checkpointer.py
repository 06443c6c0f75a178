"""SQLite's WAL checkpoints, moved out of the request path.

By default SQLite checkpoints inside a commit: the commit that pushes the WAL past 1,000
pages copies them into the database file (and syncs it) before it returns, and the
request that made it waits.  Under load that was the largest part of the gateway's c1
p99 on SQLite (docs/performance.md).  So the gateway's SQLite engine is made with
`wal_autocheckpoint=0` and every worker runs `run_checkpointer`: a PASSIVE checkpoint in a
thread every `COATCHECK_WAL_CHECKPOINT_SECONDS`.  PASSIVE neither waits for nor blocks
readers and writers; several workers checkpointing at once is harmless.  A failed
checkpoint is logged by class name and tried again next round: the WAL then grows, nothing
is lost, and SQLite's own checkpoint on the last connection's close still runs.
"""

from __future__ import annotations

import logging
import sqlite3

import anyio
from anyio import to_thread
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from vault.db import checkpoint

__all__ = ["run_checkpointer"]

log = logging.getLogger(__name__)


async def run_checkpointer(engine: Engine, interval: float) -> None:
    """Checkpoint `engine`'s WAL every `interval` seconds until cancelled."""
    while True:
        await anyio.sleep(interval)
        try:
            await to_thread.run_sync(checkpoint, engine)
        except (SQLAlchemyError, sqlite3.Error) as exc:
            log.warning("WAL checkpoint failed: %s", type(exc).__name__)
