"""Fixtures for the log viewer: one live `coatcheck serve` shared by the UI tests (SQLite
file), and the same server on PostgreSQL for the `postgres` runs (helpers in ui_live.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from ui_live import PG_URL, Live, serve

from coatcheck.vault.db import normalise_url


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("ui-live")
    with serve(tmp, f"sqlite:///{tmp / 'ui.db'}") as server:
        yield server


@pytest.fixture(scope="module")
def live_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The same server on PostgreSQL, in a fresh schema (dropped afterwards)."""
    if not PG_URL:
        pytest.skip("COATCHECK_TEST_PG_URL not set")
    schema = f"cc_test_ui_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        tmp = tmp_path_factory.mktemp("ui-live-pg")
        with serve(tmp, f"{PG_URL}{sep}options=-csearch_path%3D{schema}") as server:
            yield server
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
