"""Engines and schema upgrades for SQLite and PostgreSQL.

SQLite runs in WAL with `BEGIN IMMEDIATE` transactions: every transaction takes the write
lock up front, so a read-then-write (audit chain, tokenize) never fails half-way with
SQLITE_BUSY; `busy_timeout` makes workers queue instead.  PostgreSQL uses psycopg 3.
`upgrade()` runs alembic programmatically under a lock so several workers may start at once.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url

from alembic import command

__all__ = ["ALEMBIC_DIR", "make_engine", "normalise_url", "upgrade"]

ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"
_PG_LOCK_KEY = 0x636F6174  # "coat"
_BUSY_MS = 30_000


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
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine configured for the vault's concurrency model."""
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        connect_args = {"check_same_thread": False, "timeout": _BUSY_MS / 1000}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


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
