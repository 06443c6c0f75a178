"""The real gateway on a real uvicorn server (loopback, its own thread), routed to a fake
model provider: what the endpoint tests, the example and the benchmark drive."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from coatcheck.middleware.app import create_app
from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.services import Services, services_of
from coatcheck.middleware.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str  # the server's base URL
    keys: dict[Role, str]
    services: Services

    @property
    def base(self) -> str:
        """What an OpenAI client's `base_url` is."""
        return f"{self.url}/openai/v1"

    def auth(self, role: Role = Role.CHANNEL) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def cid(self, client_id: str) -> str:
        """The stored conversation id of a client's id (its keyed pseudonym)."""
        return self.services.vault.pseudonym(client_id)


def settings_for(db_url: str, tmp: Path, upstream: str | None, **extra: Any) -> Settings:
    """Settings on `db_url` with the provider at `upstream` (a base URL ending in /v1)."""
    return Settings(
        database_url=db_url,
        key_file=tmp / "llm.key",
        apikeys_file=tmp / "llm.apikeys",
        llm_upstream_url=upstream,
        sweep_interval_seconds=0,
        bot_url=None,
        config=None,
        **extra,
    )


@contextmanager
def served(settings: Settings) -> Iterator[Served]:
    """`create_app(settings)` on uvicorn at a free loopback port, one key per role."""
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    try:
        services = services_of(app.state)
        keys = {role: services.store.keys.create(role) for role in Role}
        yield Served(f"http://127.0.0.1:{port}", keys, services)
    finally:
        server.should_exit = True
        thread.join(30)
