"""A real gateway for the export and external tests, built with tests/harness.py (the
app factory, a TestClient running its lifespan, an injected clock, one API key per role)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.settings import Settings
from tests.harness import GatewayClient, open_gateway


class Harness(GatewayClient):
    """The handle these suites use: `say` asserts the webhook answered, `call` any route."""

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
        client, keys, clock = open_gateway(Settings(**values))
        self.clients.append(client)
        return Harness(client, keys, clock)

    def close(self) -> None:
        for client in self.clients:
            client.__exit__(None, None, None)
