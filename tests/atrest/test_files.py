"""SQLite's files are private: created 0600 (the WAL and SHM take the database's mode), an
existing database open to others narrowed to its owner."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from coatcheck.vault import Vault, make_engine, upgrade


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_and_its_wal_and_shm_are_0600(tmp_path: Path) -> None:
    path = tmp_path / "cc.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    assert _mode(path) == 0o600  # before SQLite opened it
    upgrade(engine)
    Vault(engine, b"k" * 8 + bytes(range(24))).tokenize("c", "EMAIL", "a@example.org")
    for suffix in ("", "-wal", "-shm", ".migrate.lock"):
        assert _mode(path.with_name(path.name + suffix)) == 0o600, suffix
    engine.dispose()


def test_an_existing_database_open_to_others_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "cc.db"
    with sqlite3.connect(path) as conn:  # made elsewhere, 0644 like SQLite's default
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
    path.chmod(0o644)
    wal = path.with_name("cc.db-wal")
    wal.write_bytes(b"")
    wal.chmod(0o664)
    make_engine(f"sqlite:///{path}").dispose()
    assert _mode(path) == 0o600 and _mode(wal) == 0o600
