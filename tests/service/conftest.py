"""Fixtures: a real app (TestClient runs its lifespan), a real stub bot on loopback."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from fastapi.testclient import TestClient
from gateway_helpers import Clock, Service, StubBot, make_settings
from sqlalchemy import create_engine, make_url, text

from middleware.service.apikeys import Role, create_key
from middleware.service.app import create_app
from middleware.service.state import Gateway
from middleware.service.store import guarded
from vault.db import normalise_url

PG_URL = os.environ.get("COATCHECK_TEST_PG_URL")


@pytest.fixture
def stub_bot() -> Iterator[StubBot]:
    bot = StubBot()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, web.AppRunner] = {}

    async def start() -> None:
        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", bot.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        bot.url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
        holder["runner"] = runner
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()))
    thread.start()
    assert ready.wait(10)
    yield bot
    asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    clients: list[TestClient] = []

    def build(**overrides: Any) -> Service:
        clock = Clock()
        app = create_app(make_settings(tmp_path, **overrides), clock=clock)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        gw: Gateway = app.state.gateway
        with guarded(gw.sessions) as session:
            keys = {role: create_key(session, role) for role in Role}
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
