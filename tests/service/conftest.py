"""Fixtures: a real app (TestClient runs its lifespan), a real stub bot on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from fastapi.testclient import TestClient
from gateway_helpers import Clock, Service, StubBot, make_settings

from middleware.service.apikeys import Role, create_key
from middleware.service.app import create_app
from middleware.service.state import Gateway
from middleware.service.store import guarded


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
