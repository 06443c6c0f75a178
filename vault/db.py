"""Engines and schema upgrades for SQLite and PostgreSQL.

SQLite runs in WAL with `BEGIN IMMEDIATE` transactions: every transaction takes the write
lock up front, so a read-then-write (audit chain, tokenize) never fails half-way with
SQLITE_BUSY; `busy_timeout` makes workers queue instead.  PostgreSQL uses psycopg 3.
`upgrade()` runs alembic programmatically under a lock so several workers may start at once.

PostgreSQL connections are pinged on checkout only when they sat idle in the pool for
more than a second (`ping_after_idle_s`), not on every checkout as `pool_pre_ping` does:
that extra round trip was a quarter of a tokenize call.  A dead connection found by the
ping is replaced transparently (`DisconnectionError`); one that dies within the idle window fails
that call once and SQLAlchemy then invalidates the pool, which is what `pool_pre_ping` could
not prevent either (the server can go away between the ping and the query).
"""

from __future__ import annotations

import fcntl
import importlib.util
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError

from alembic import command

__all__ = ["ALEMBIC_DIR", "make_engine", "normalise_url", "upgrade"]


def _migrations_dir() -> Path:
    """Where `coatcheck.migrations` (the repository's alembic/ folder) is installed.

    Found through the import system, not relative to this file: a wheel puts it beside
    `coatcheck/vault/`, a source tree keeps it in the top-level `alembic/` folder.
    """
    spec = importlib.util.find_spec("coatcheck.migrations")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("coatcheck.migrations is not installed")  # a broken install
    return Path(next(iter(spec.submodule_search_locations)))


ALEMBIC_DIR = _migrations_dir()
_PG_LOCK_KEY = 0x636F6174  # "coat"
_BUSY_MS = 30_000
_PING_AFTER_IDLE_S = 1.0


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` become `postgresql+psycopg://` (psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # Straight to the driver: through exec_driver_sql this BEGIN cost as much as a query.
    conn.connection.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]


def _mark_idle(_dbapi_conn: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _idle_pinger(after_s: float) -> Callable[[Any, Any, Any], None]:
    def ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        """Check a connection that sat idle a while; a dead one is replaced by the pool."""
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < after_s:
            return
        try:
            cur = dbapi_conn.cursor()
            cur.execute("SELECT 1")
            cur.close()
            dbapi_conn.rollback()
        except Exception as exc:
            raise DisconnectionError() from exc

    return ping_if_idle


def make_engine(
    url: str, *, ping_after_idle_s: float = _PING_AFTER_IDLE_S, **kwargs: Any
) -> Engine:
    """An engine configured for the vault's concurrency model."""
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        connect_args = {"check_same_thread": False, "timeout": _BUSY_MS / 1000}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, **kwargs)
    event.listen(engine, "checkin", _mark_idle)
    event.listen(engine, "checkout", _idle_pinger(ping_after_idle_s))
    return engine


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """Serialise concurrent upgrades: advisory lock on PostgreSQL, a file lock on SQLite."""
    db = engine.url.database
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
            try:
                yield conn
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
    elif db and db != ":memory:":
        lock_path = Path(db).with_name(Path(db).name + ".migrate.lock")
        with lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                with engine.connect() as conn:
                    yield conn
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        with engine.connect() as conn:
            yield conn


def upgrade(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (needs the repo's `alembic/`: editable installs)."""
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    with _migration_lock(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()
    if isinstance(url_or_engine, str):
        engine.dispose()
