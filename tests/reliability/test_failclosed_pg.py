"""Fast variant of `python -m reliability.failclosed`: its own PostgreSQL cluster stopped
mid-load for 2 s, then started again (needs root for `runuser -u postgres` and the
PostgreSQL 15 binaries; marked postgres like the other real-server tests)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from reliability.failclosed import run
from reliability.harness import PG_BIN

PG_URL = os.environ.get("COATCHECK_TEST_PG_URL")


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="COATCHECK_TEST_PG_URL not set")
def test_database_stopped_mid_load() -> None:
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None or os.getuid() != 0:
        pytest.fail(f"needs {PG_BIN}/initdb, runuser and root to make a throwaway cluster")
    assert Path(PG_BIN / "pg_ctl").exists()
    figures = run(down=2.0, threads=2, recover_within=30.0)
    assert figures["answered_while_down"] > 0
    assert figures["statuses_while_down"] == [503]
    assert figures["down_messages_at_bot"] == 0 and figures["canaries_at_bot"] == 0
    assert figures["health_while_down"] == [503]
    assert figures["recovered_after_s"] is not None
    assert figures["last_20_statuses"] == [200] and figures["same_processes"]
    assert figures["ok"], figures
