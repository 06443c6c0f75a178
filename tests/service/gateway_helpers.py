"""Test helpers for the gateway tests: the stub bot, settings, the service handle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.settings import Settings
from tests.harness import GatewayClient

Script = Callable[[dict[str, Any]], list[dict[str, Any]]]

CONFIG = {
    "types": {"EMAIL_ADDRESS": {"confirm": False}, "PIN": {"capture": "whole"}},
    "actions": {"action_send_mail": ["EMAIL_ADDRESS"]},
    "grants": {"ttl_seconds": 30},
    "checks": {
        "budget_per_reference": 3,
        "declared": {
            "email_example": {
                "type": "EMAIL_ADDRESS",
                "op": "regex",
                "pattern": r".+@example\.com",
            },
            "email_other": {"type": "EMAIL_ADDRESS", "op": "regex", "pattern": r".+@other\.org"},
            "email_long": {"type": "EMAIL_ADDRESS", "op": "length", "min": 100},
            "email_is": {"type": "EMAIL_ADDRESS", "op": "equals"},
            "pin_digits": {"type": "PIN", "op": "digits"},
            "pin_four": {"type": "PIN", "op": "regex", "pattern": r"\d{4}"},
            "pin_is": {"type": "PIN", "op": "equals"},
            "card_luhn": {"type": "CREDIT_CARD", "op": "luhn"},
            "card_pin_four": {"type": "CARD_PIN", "op": "regex", "pattern": r"\d{4}"},
        },
    },
}


def echo(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"recipient_id": payload["sender"], "text": f"echo: {payload['message']}"}]


@dataclass
class StubBot:
    """A real HTTP bot on 127.0.0.1 that records every payload it receives."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    script: Script = echo

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.received.append(payload)
        return web.json_response(self.script(payload))


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    config = tmp_path / "coatcheck.yml"
    config.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'cc.db'}",
        "key_file": tmp_path / "coatcheck.key",
        "apikeys_file": tmp_path / "coatcheck.apikeys",
        "config": config,
        "rate_limit": 1000,
    }
    values.update(overrides)
    return Settings(**values)


class Service(GatewayClient):
    """The gateway under test; `say` posts one channel message and returns the response."""

    def say(self, sender: str, message: str) -> Any:
        return self.client.post(
            "/webhooks/rest/webhook",
            json={"sender": sender, "message": message},
            headers=self.auth(Role.CHANNEL),
        )
