"""A live gateway for the edge tests: the real app under uvicorn on a loopback port.

`live_gateway` runs `create_app` in a uvicorn server on its own thread (real HTTP, real
lifespan: the sweeper and the outbox worker run as in `coatcheck serve`), with an
injectable clock, and creates one API key per role in its database.  `Peer` is a loopback
HTTP peer (a bot stand-in or an export receiver) whose handler a test scripts.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from aiohttp import web
from fastapi import FastAPI
from sqlalchemy import create_engine, make_url, text

from coatcheck.middleware.app import create_app
from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.services import Services, services_of
from coatcheck.middleware.settings import Settings
from coatcheck.vault.db import normalise_url
from reliability.harness import free_port, threaded

__all__ = ["Live", "Peer", "database_url", "live_gateway", "wait_for"]

PG_URL = os.environ.get("COATCHECK_TEST_PG_URL")


def wait_for(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll `check` until it holds (fails the test after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def database_url(tmp_path: Path, backend: str) -> Iterator[str]:
    """A SQLite file in `tmp_path`, or a fresh PostgreSQL database (dropped after)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'edges.db'}"
        return
    if not PG_URL:
        pytest.skip("COATCHECK_TEST_PG_URL not set")
    name = f"cc_edges_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield str(make_url(normalise_url(PG_URL)).set(database=name).render_as_string(False))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Live:
    """A running gateway: base URL, one key per role, the app (for its services)."""

    url: str
    keys: dict[Role, str]
    app: FastAPI
    http: httpx.Client

    @property
    def services(self) -> Services:
        return services_of(self.app.state)

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def cid(self, sender: str) -> str:
        """The conversation id a channel sender's turns are kept under (its pseudonym):
        what the bot, the stores and every non-channel caller name it by."""
        return self.services.vault.pseudonym(sender)

    def say(
        self,
        sender: str,
        message: str,
        *,
        role: Role = Role.CHANNEL,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {"sender": sender, "message": message}
        if metadata is not None:
            body["metadata"] = metadata
        auth = {"Authorization": f"Bearer {key}"} if key is not None else self.auth(role)
        return self.http.post(
            "/webhooks/rest/webhook", json=body, headers={**auth, **(headers or {})}
        )

    def call(self, method: str, path: str, role: Role = Role.ADMIN, **kw: Any) -> httpx.Response:
        return self.http.request(method, path, headers=self.auth(role), **kw)

    def new_key(self, role: Role) -> str:
        return self.services.store.keys.create(role)


@contextmanager
def live_gateway(
    tmp_path: Path,
    *,
    db_url: str,
    config: dict[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
    **overrides: Any,
) -> Iterator[Live]:
    """`create_app` under uvicorn on 127.0.0.1 (its own thread), lifespan running."""
    path = tmp_path / f"edges-{uuid.uuid4().hex[:6]}.yml"
    path.write_text(yaml.safe_dump(config or {}), encoding="utf-8")
    values: dict[str, Any] = {
        "database_url": db_url,
        "key_file": tmp_path / "edges.key",
        "apikeys_file": tmp_path / "edges.apikeys",
        "config": path,
        "rate_limit": 100_000,
        "bot_url": None,
        "apikey_cache_seconds": 0,
    }
    values.update(overrides)
    app = create_app(Settings(**values), clock=clock)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 60, "uvicorn to start")
        store = services_of(app.state).store
        keys = {role: store.keys.create(role) for role in Role}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            yield Live(f"http://127.0.0.1:{port}", keys, app, http)
    finally:
        server.should_exit = True
        thread.join(30)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Peer:
    """A loopback HTTP peer (bot stand-in, export receiver); `handler` is the script."""

    path: str
    handler: Handler
    url: str = ""
    bodies: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        return await self.handler(request)

    @contextmanager
    def running(self) -> Iterator[Peer]:
        app = web.Application()
        app.router.add_post(self.path, self._handle)
        with threaded(app) as base:
            self.url = base + self.path
            yield self


async def hold(seconds: float) -> None:
    """Sleep inside a peer's handler (its own event loop)."""
    await asyncio.sleep(seconds)
