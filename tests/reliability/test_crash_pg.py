"""Fast variant of `python -m reliability.crash`: 2 workers on PostgreSQL, 2 kill -9s."""

from __future__ import annotations

import os

import pytest

from reliability.crash import run

PG_URL = os.environ.get("COATCHECK_TEST_PG_URL")


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="COATCHECK_TEST_PG_URL not set")
def test_kill_workers_under_load() -> None:
    assert PG_URL is not None
    figures = run(PG_URL, messages=40, kills=2, threads=3, conversations=5, seed=7)
    assert figures["kills"] == 2
    assert figures["ok_2xx"] >= 30
    assert figures["missing_from_history"] == 0
    assert figures["refs_failed"] == 0 and figures["refs_revealed"] >= 6 * figures["ok_2xx"]
    assert figures["canaries_found_db"] == 0 and figures["canaries_found_log"] == 0
    assert figures["raw_in_replies"] == 0
    assert figures["audit_ok"], figures["audit_verify"]
    assert figures["ok"], figures
