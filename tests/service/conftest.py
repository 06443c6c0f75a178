"""Fixtures: a real app (TestClient runs its lifespan), a real stub bot on loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from gateway_helpers import Service, StubBot, make_settings
from sqlalchemy import create_engine, make_url, text

from coatcheck.vault.db import normalise_url
from tests.harness import open_gateway, serving

PG_URL = os.environ.get("COATCHECK_TEST_PG_URL")


@pytest.fixture
def stub_bot() -> Iterator[StubBot]:
    bot = StubBot()
    with serving("/webhooks/rest/webhook", bot.handle) as url:
        bot.url = url
        yield bot


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    clients: list[TestClient] = []

    def build(**overrides: Any) -> Service:
        client, keys, clock = open_gateway(make_settings(tmp_path, **overrides))
        clients.append(client)
        return Service(client, keys, clock)

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def service(service_factory: Callable[..., Service], stub_bot: StubBot) -> Service:
    return service_factory(bot_url=stub_bot.url)


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database of its own, so the test can drop it mid-flight."""
    if not PG_URL:
        pytest.skip("COATCHECK_TEST_PG_URL not set")
    name = f"cc_gw_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield str(make_url(normalise_url(PG_URL)).set(database=name).render_as_string(False))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
