"""A real gateway for the export and external tests: the app factory, a TestClient (its
lifespan runs), an injected clock and one API key per role. Shared by tests/export and
tests/external (tests/service's helpers are not importable from here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from middleware.service.apikeys import Role, create_key
from middleware.service.app import create_app
from middleware.service.state import Gateway
from middleware.service.store import guarded
from middleware.settings import Settings


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    client: TestClient
    keys: dict[Role, str]
    clock: Clock

    @property
    def gateway(self) -> Gateway:
        gw: Gateway = self.client.app.state.gateway  # type: ignore[attr-defined]
        return gw

    def auth(self, role: Role | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.keys[role]}"}

    def say(self, sender: str, message: str) -> Any:
        response = self.client.post(
            "/webhooks/rest/webhook",
            json={"sender": sender, "message": message},
            headers=self.auth(Role.CHANNEL),
        )
        assert response.status_code == 200, response.text
        return response.json()

    def call(self, method: str, path: str, role: Role | None = Role.ADMIN, **kw: Any) -> Any:
        return self.client.request(method, path, headers=self.auth(role), **kw)


@dataclass
class GatewayFactory:
    """Builds gateways in `tmp_path` (shared key file, so apps on one database agree)."""

    tmp_path: Path
    clients: list[TestClient] = field(default_factory=list)

    def build(self, config: dict[str, Any], **overrides: Any) -> Harness:
        path = self.tmp_path / f"coatcheck-{len(self.clients)}.yml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{self.tmp_path / 'cc.db'}",
            "key_file": self.tmp_path / "coatcheck.key",
            "apikeys_file": self.tmp_path / "coatcheck.apikeys",
            "config": path,
            "rate_limit": 1000,
            "bot_url": None,  # the built-in echo bot answers with the redacted text
        }
        values.update(overrides)
        clock = Clock()
        client = TestClient(
            create_app(Settings(**values), clock=clock), raise_server_exceptions=False
        )
        client.__enter__()
        self.clients.append(client)
        gw: Gateway = client.app.state.gateway  # type: ignore[attr-defined]
        with guarded(gw.sessions) as session:
            keys = {role: create_key(session, role) for role in Role}
        return Harness(client, keys, clock)

    def close(self) -> None:
        for client in self.clients:
            client.__exit__(None, None, None)
