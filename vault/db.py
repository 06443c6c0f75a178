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

At rest (issue 15, docs/keys.md): SQLite connections run with `secure_delete` (freed cells
and pages are zeroed, so a shredded wrapped key does not linger in free space), the
database file is created 0600 before SQLite opens it (its WAL and SHM files take the
database file's mode), and an existing file open to group or others is narrowed to the
owner.  `read_transaction` is a transaction that never takes the write lock (the audit
verifier's), `checkpoint_wal` the TRUNCATE checkpoint that makes a shred final in the
live files.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import stat
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

__all__ = [
    "ALEMBIC_DIR",
    "checkpoint_wal",
    "make_engine",
    "normalise_url",
    "read_transaction",
    "sqlite_path",
    "upgrade",
]


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
# A checkpoint that must wait for readers blocks new writers meanwhile: wait this long at
# most, then leave it for the next settle (the shred stays pending, never half-done).
_CHECKPOINT_BUSY_MS = 250
_READ_ONLY = "coatcheck_read_only"


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
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # Straight to the driver: through exec_driver_sql this BEGIN cost as much as a query.
    # A read transaction (`read_transaction`) is a deferred BEGIN: a WAL reader that never
    # takes the write lock, so it delays no writer however long it reads.
    sql = "BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE"
    conn.connection.driver_connection.execute(sql)  # type: ignore[union-attr]


def sqlite_path(url: str | Engine) -> Path | None:
    """The database file of a SQLite URL or engine (None: another backend, or in memory)."""
    parsed = url.url if isinstance(url, Engine) else make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite":
        return None
    db = parsed.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db)


def _private_files(path: Path) -> None:
    """Create the database file 0600 if absent; narrow it and its WAL/SHM to the owner.

    SQLite creates a new database 0644 (less the umask) and gives its WAL and SHM files the
    database file's mode: made here first, the three are private.  A missing directory is
    the caller's (`FileNotFoundError` naming the file), as it is SQLite's.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        file = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError, PermissionError):
            info = file.stat()
            mode = stat.S_IMODE(info.st_mode)
            if mode & 0o077 and info.st_uid == os.geteuid():
                file.chmod(mode & 0o700)


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
        path = sqlite_path(url)
        if path is not None:
            _private_files(path)
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
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that reads one snapshot and takes no write lock.

    SQLite: a deferred BEGIN (a WAL reader: writers go on meanwhile).  PostgreSQL:
    REPEATABLE READ, READ ONLY.  Keep it short anyway: on SQLite an open reader holds
    back the WAL checkpoint that makes a shred final.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        else:
            conn.execution_options(**{_READ_ONLY: True})
        with conn.begin():
            yield conn


def checkpoint_wal(engine: Engine) -> bool:
    """SQLite: copy the WAL into the database and truncate it to zero bytes; True if done.

    Outside any transaction.  Old page images (a wrapped key before its shred) live on in
    WAL frames until then.  A reader on an older snapshot makes it report busy: it then
    waits at most `_CHECKPOINT_BUSY_MS` (new writers wait meanwhile) and returns False, and
    the caller tries again later.  Always True on other backends (nothing to do).
    """
    if engine.dialect.name != "sqlite":
        return True
    with engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        raw.execute(f"PRAGMA busy_timeout={_CHECKPOINT_BUSY_MS}")
        try:
            busy, log, done = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            raw.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
    return bool(busy == 0 and log in (0, -1) and done in (0, -1))


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
        fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as handle:
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
