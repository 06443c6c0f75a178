"""Support for the reliability tests: a real stub bot on loopback and an in-process app.

Nothing here is a mock: the bot is a real aiohttp server on 127.0.0.1 and the app is the
real `create_app` with its lifespan (database, migrations, vault) run by `TestClient`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.settings import Settings
from tests.harness import GatewayClient, open_gateway, serving

PUBLIC = "public"
ALL_ROLES = tuple(Role)

# (method, path template) -> roles that get past auth (admin always does), or PUBLIC.
# An empty set means admin only. Agent and auditor pass the key check on `/v1/reveal`;
# what they get is then decided by the lifecycle rules (middleware/service/staff.py).
EXPECT: dict[tuple[str, str], frozenset[Role] | str] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/static-offline-docs/{path}"): PUBLIC,  # the docs' own assets (no CDN)
    ("GET", "/ready"): PUBLIC,
    ("GET", "/metrics"): frozenset({Role.MONITOR}),
    ("POST", "/v1/external/{entity_type}/test"): frozenset(),
    ("POST", "/webhooks/rest/webhook"): frozenset({Role.CHANNEL}),
    ("POST", "/openai/v1/chat/completions"): frozenset({Role.CHANNEL}),
    ("GET", "/openai/v1/models"): frozenset({Role.CHANNEL}),
    ("POST", "/v1/redact"): frozenset({Role.CHANNEL, Role.BOT, Role.ACTION_SERVER}),
    ("POST", "/v1/grants"): frozenset({Role.ACTION_SERVER}),
    ("POST", "/v1/reveal"): frozenset({Role.ACTION_SERVER, Role.AGENT, Role.AUDITOR}),
    ("POST", "/v1/check"): frozenset({Role.BOT, Role.ACTION_SERVER}),
    ("POST", "/v1/conversations/{conversation_id}/context"): frozenset(
        {Role.BOT, Role.ACTION_SERVER}
    ),
    ("POST", "/v1/conversations/{conversation_id}/end"): frozenset({Role.CHANNEL, Role.BOT}),
    ("POST", "/v1/conversations/{conversation_id}/temporary"): frozenset(
        {Role.BOT, Role.ACTION_SERVER}
    ),
    ("GET", "/v1/conversations/{conversation_id}/history"): frozenset(
        {Role.VIEWER, Role.AGENT, Role.AUDITOR}
    ),
    ("GET", "/v1/conversations/{conversation_id}/capture"): frozenset({Role.ACTION_SERVER}),
    ("POST", "/v1/senders/history"): frozenset({Role.VIEWER, Role.AGENT, Role.AUDITOR}),
    ("POST", "/v1/conversations/{conversation_id}/export"): frozenset(),
    ("GET", "/v1/config/export-redaction"): frozenset(),
    ("PUT", "/v1/config/export-redaction"): frozenset(),
    ("DELETE", "/v1/config/export-redaction"): frozenset(),
    ("GET", "/v1/exports/outbox"): frozenset(),
    ("POST", "/v1/exports/outbox/requeue"): frozenset(),
    ("POST", "/v1/subjects/erase"): frozenset(),
    ("POST", "/v1/subjects/export"): frozenset(),
}
# Roles that pass the key check but whose answer the route decides by other rules.
STAFF_REVEAL = {("POST", "/v1/reveal"): frozenset({Role.AGENT, Role.AUDITOR})}


@dataclass(frozen=True)
class Ui:
    """What a `/ui/` route answers: the UI takes a session cookie, never an API key.

    `anonymous`: the status with no session (200 public, 303 to /ui/login, 401, 403) and
    `error` its code; `csrf`: a POST that must carry the session's (or the sign-in
    form's) CSRF token, answered 403 `csrf_failed` without it.
    """

    anonymous: int
    error: str | None = None
    csrf: bool = False


UI_EXPECT: dict[tuple[str, str], Ui] = {
    ("GET", "/ui/login"): Ui(200),
    ("GET", "/ui/static/{name}"): Ui(200),
    ("GET", "/ui/"): Ui(303),
    ("GET", "/ui/conversations/{conversation_id}"): Ui(303),
    ("GET", "/ui/audit"): Ui(303),
    ("POST", "/ui/login"): Ui(403, "csrf_failed", csrf=True),
    ("POST", "/ui/logout"): Ui(303, csrf=True),
    ("POST", "/ui/find-sender"): Ui(303, csrf=True),
    ("POST", "/ui/conversations/{conversation_id}/reveal"): Ui(401, "not_signed_in", csrf=True),
}
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


CONFIG: dict[str, Any] = {
    # e-mail addresses are masked at the end (kept for auditors' reporting), so the
    # lifecycle refusals of staff reveals can be seen; other types are shredded
    "types": {"PIN": {"capture": "whole"}, "EMAIL_ADDRESS": {"retention": "mask"}},
    "actions": {"action_send_mail": ["EMAIL_ADDRESS", "PHONE_NUMBER"]},
    "grants": {"ttl_seconds": 30},
}


@dataclass
class RecordingBot:
    """Echoes the (redacted) message back and keeps every payload it received."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.received.append(payload)
        return web.json_response([{"recipient_id": payload["sender"], "text": payload["message"]}])


@dataclass
class Receiver:
    """A loopback analytics endpoint (an export webhook sink): keeps every body, says 200."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.json_response({"ok": True})


@contextmanager
def running_bot() -> Iterator[RecordingBot]:
    bot = RecordingBot()
    with serving("/webhooks/rest/webhook", bot.handle) as url:
        bot.url = url
        yield bot


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    with serving("/collect", receiver.handle) as url:
        receiver.url = url
        yield receiver


class App(GatewayClient):
    """The gateway under test, plus signing in to the log viewer."""

    def ui_sign_in(self, role: Role) -> str:
        """Sign in to /ui/ with `role`'s key (the client keeps the cookie); the CSRF token."""
        self.client.cookies.clear()
        form = self.client.get("/ui/login")
        token = CSRF_RE.search(form.text)
        assert form.status_code == 200 and token is not None
        signed = self.client.post(
            "/ui/login",
            data={"api_key": self.keys[role], "csrf": token.group(1)},
            follow_redirects=False,
        )
        assert signed.status_code == 303, signed.text
        page = self.client.get("/ui/")
        csrf = CSRF_RE.search(page.text)
        assert page.status_code == 200 and csrf is not None
        return csrf.group(1)


@contextmanager
def running_app(
    tmp_path: Path, bot_url: str, extra_config: dict[str, Any] | None = None, **overrides: Any
) -> Iterator[App]:
    config = tmp_path / "coatcheck.yml"
    config.write_text(yaml.safe_dump({**CONFIG, **(extra_config or {})}), encoding="utf-8")
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'cc.db'}",
        "key_file": tmp_path / "coatcheck.key",
        "apikeys_file": tmp_path / "coatcheck.apikeys",
        "config": config,
        "rate_limit": 100_000,
        "bot_url": bot_url,
    }
    values.update(overrides)
    client, keys, clock = open_gateway(Settings(**values))
    try:
        yield App(client, keys, clock)
    finally:
        client.__exit__(None, None, None)
