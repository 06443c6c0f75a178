"""The gateway's SQLite WAL stays short, and a serving worker freezes its startup objects.

The gateway's engine checkpoints every 100 WAL pages (SQLite's default is 1,000): shorter
checkpoint pauses inside commits.  What must hold whatever the threshold: under a steady
stream of writes the WAL file stays bounded (a background checkpointer that could not
catch up with the writers let it grow without end; this is the test it would fail).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from gateway_helpers import Service, make_settings
from sqlalchemy import Engine, text

from middleware.service.app import WAL_AUTOCHECKPOINT_PAGES, create_app
from vault.db import make_engine


def _autocheckpoint(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one())


def test_gateway_engine_checkpoints_every_100_pages(
    service_factory: Callable[..., Service],
) -> None:
    assert _autocheckpoint(service_factory().gateway.engine) == WAL_AUTOCHECKPOINT_PAGES == 100


def test_plain_engine_keeps_sqlites_default(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        assert _autocheckpoint(engine) == 1000
    finally:
        engine.dispose()


@pytest.mark.parametrize(("pages", "bounded"), [(WAL_AUTOCHECKPOINT_PAGES, True), (0, False)])
def test_wal_stays_bounded_under_steady_writes(tmp_path: Path, pages: int, bounded: bool) -> None:
    path = tmp_path / "w.db"
    engine = make_engine(f"sqlite:///{path}", wal_autocheckpoint=pages)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE filler (blob BLOB)"))
        for _ in range(300):  # ~3 pages per commit: ~900 pages written in all
            with engine.begin() as conn:
                for _ in range(3):
                    conn.execute(text("INSERT INTO filler VALUES (randomblob(3000))"))
        wal = path.with_name("w.db-wal").stat().st_size
        if bounded:
            assert wal < 1_000_000  # ~(100 pages + one commit) of 4 KiB, reused from the start
        else:  # the control: with no checkpoint at all every page is still in the WAL
            assert wal > 3_000_000
    finally:
        engine.dispose()


def test_worker_app_freezes_what_startup_built(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    gc.unfreeze()
    try:
        with TestClient(create_app(settings, freeze_gc=False)):
            assert gc.get_freeze_count() == 0
        with TestClient(create_app(settings, freeze_gc=True)):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
