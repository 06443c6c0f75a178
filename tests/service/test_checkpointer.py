"""SQLite WAL checkpoints run in the background, not inside a request's commit.

The gateway's engine has SQLite's autocheckpoint off and each worker checkpoints every
`COATCHECK_WAL_CHECKPOINT_SECONDS`; with the setting at 0, SQLite's own autocheckpoint is
kept.  The WAL's frame count after one more write tells whether a checkpoint ran: a
fully checkpointed WAL is restarted from its first frame by the next writer.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient
from gateway_helpers import Service, make_settings
from sqlalchemy import Engine, text

from middleware.service.app import create_app
from middleware.service.checkpointer import run_checkpointer
from vault.db import checkpoint, make_engine


def _autocheckpoint(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one())


def _write(engine: Engine, rows: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS filler (blob BLOB)"))
        for _ in range(rows):
            conn.execute(text("INSERT INTO filler VALUES (randomblob(3000))"))


def _frames_after_one_more_write(engine: Engine) -> int:
    _write(engine, 1)
    return checkpoint(engine)[1]


def test_checkpoint_copies_the_whole_wal(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}", wal_autocheckpoint=0)
    try:
        assert _autocheckpoint(engine) == 0
        for _ in range(20):
            _write(engine, 5)
        busy, frames, copied = checkpoint(engine)
        assert (busy, copied) == (0, frames) and frames > 20
    finally:
        engine.dispose()


def test_default_engine_keeps_sqlites_autocheckpoint(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        assert _autocheckpoint(engine) == 1000
    finally:
        engine.dispose()


@pytest.mark.parametrize("background", [True, False])
def test_the_background_loop_keeps_the_wal_short(tmp_path: Path, background: bool) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}", wal_autocheckpoint=0)

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            if background:
                tasks.start_soon(run_checkpointer, engine, 0.02)
            for _ in range(30):
                await anyio.to_thread.run_sync(_write, engine, 3)
            await anyio.sleep(0.2)
            tasks.cancel_scope.cancel()

    try:
        anyio.run(main)
        frames = _frames_after_one_more_write(engine)
        if background:
            assert frames < 10  # restarted after the loop's checkpoint: this write only
        else:
            assert frames > 60  # every write since the start is still in the WAL
    finally:
        engine.dispose()


def test_gateway_engine_checkpoints_in_the_background(
    service_factory: Callable[..., Service],
) -> None:
    assert _autocheckpoint(service_factory().gateway.engine) == 0


def test_setting_zero_leaves_checkpoints_to_sqlite(
    service_factory: Callable[..., Service],
) -> None:
    assert _autocheckpoint(service_factory(wal_checkpoint_seconds=0).gateway.engine) == 1000


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
