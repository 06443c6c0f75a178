"""A read-only engine for the gateway's per-message reads (API keys, context, rate).

The vault's engine opens every SQLite transaction with `BEGIN IMMEDIATE`, so even a
lookup takes the database-wide write lock and queues behind every writer.  The reads the
gateway makes per message need no lock: on SQLite this engine runs each statement in
autocommit (WAL readers never block or wait for the writer) with `query_only` on, so it
cannot write by mistake; on PostgreSQL it is a pool of its own in AUTOCOMMIT (no
BEGIN/COMMIT round-trips around a single SELECT) and without `pool_pre_ping` (see
`make_write_engine`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from coatcheck.vault.db import normalise_url

__all__ = ["make_read_engine", "make_write_engine"]

_BUSY_MS = 30_000


def _sqlite_read_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # autocommit: each SELECT is its own read snapshot
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
    cur.execute("PRAGMA query_only=ON")
    cur.close()


def make_read_engine(url: str) -> Engine:
    """An engine for lock-free single-statement reads of the gateway's tables."""
    url = normalise_url(url)
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, isolation_level="AUTOCOMMIT")
    connect_args = {"check_same_thread": False, "timeout": _BUSY_MS / 1000}
    engine = create_engine(url, connect_args=connect_args)
    event.listen(engine, "connect", _sqlite_read_pragmas)
    return engine


def make_write_engine(url: str, vault_engine: Engine) -> Engine:
    """The engine for the gateway's own writes (rate, rule, history).

    SQLite: the vault's engine (its `BEGIN IMMEDIATE` is what a read-then-write needs).
    PostgreSQL: a pool of its own without `pool_pre_ping`, whose extra `SELECT 1` per
    checkout cost a round-trip per transaction; a connection lost to a server restart
    fails one transaction (503, nothing sent to the bot) and SQLAlchemy then drops the
    stale pool.
    """
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        return vault_engine
    return create_engine(url)
