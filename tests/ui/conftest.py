"""Fixtures for the log viewer: one live `coatcheck serve` shared by the UI tests (SQLite
file), the same server on PostgreSQL for the `postgres` runs (helpers in ui_live.py), and
Debian's chromium driven by Playwright for the browser tests.

Without chromium the browser tests are skipped with the reason (the README's test command
must pass on a fresh machine); `.ci/run` installs it and sets `COATCHECK_REQUIRE_BROWSER=1`,
which turns that skip into a failure, as `CI` does for PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text
from ui_live import PG_URL, Live, serve

from coatcheck.vault.db import normalise_url

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = os.environ.get("COATCHECK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium (Playwright's own download is not used: no internet needed).

    Per module: Playwright's sync API keeps an event loop running in the main thread while
    it is open, and later tests that call `asyncio.run` must not find one.
    """
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("COATCHECK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message} and COATCHECK_REQUIRE_BROWSER=1: failing, not skipping")
        pytest.skip(f"{message}: browser tests skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield chromium
        finally:
            chromium.close()


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
