"""What the gateway test suites share, so each builds a gateway and a loopback peer the same way.

- `threaded(app)` / `serving(path, handler)`: a real aiohttp server on 127.0.0.1 (a free
  port) in its own thread and loop, for tests that drive the gateway's synchronous
  TestClient while the gateway calls the peer (a stub bot, an export receiver, a vault).
- `open_gateway(settings)`: the real app with its lifespan running and one API key per role.
- `GatewayClient`: the handle the suites extend (`Service`, `Harness`, `App`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiohttp import web
from fastapi.testclient import TestClient

from middleware.service.apikeys import Role, create_key
from middleware.service.app import create_app
from middleware.service.state import Gateway
from middleware.service.store import guarded
from middleware.settings import Settings
from tests.conftest import FakeClock

__all__ = ["GATEWAY_EPOCH", "GatewayClient", "open_gateway", "serving", "threaded"]

GATEWAY_EPOCH = 1_800_000_000.0  # the gateway suites' injected "now"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextmanager
def threaded(app: web.Application) -> Iterator[str]:
    """Run `app` on a free loopback port in its own thread and event loop; the base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, web.AppRunner | str] = {}

    async def start() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        holder["runner"] = runner
        holder["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        ready.set()

    def main() -> None:
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    try:
        assert ready.wait(10), "loopback server did not start"
        yield str(holder["url"])
    finally:
        runner = holder.get("runner")
        if isinstance(runner, web.AppRunner):
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextmanager
def serving(path: str, handler: Handler) -> Iterator[str]:
    """`handler` answering POSTs at `path` on a loopback server; yields the full URL."""
    app = web.Application()
    app.router.add_post(path, handler)
    with threaded(app) as base:
        yield base + path


@dataclass
class GatewayClient:
    """A running gateway: its TestClient, one API key per role, the clock it was given."""

    client: TestClient
    keys: dict[Role, str]
    clock: FakeClock

    @property
    def gateway(self) -> Gateway:
        gw: Gateway = self.client.app.state.gateway  # type: ignore[attr-defined]
        return gw

    def auth(self, role: Role | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.keys[role]}"}


def open_gateway(settings: Settings) -> tuple[TestClient, dict[Role, str], FakeClock]:
    """The app built from `settings`, lifespan entered (close with `client.__exit__`)."""
    clock = FakeClock(GATEWAY_EPOCH)
    client = TestClient(create_app(settings, clock=clock), raise_server_exceptions=False)
    client.__enter__()
    gw: Gateway = client.app.state.gateway  # type: ignore[attr-defined]
    with guarded(gw.sessions) as session:
        keys = {role: create_key(session, role) for role in Role}
    return client, keys, clock
