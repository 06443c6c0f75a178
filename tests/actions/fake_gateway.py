"""A small stand-in for the gateway's capture route, served for real on a loopback port.

`GET /v1/conversations/{id}/capture` answers from `captures` (what the gateway would have
recorded as each conversation's latest capture result, docs/actions.md); `POST .../context`
is accepted. Every request's raw path and Authorization header are recorded, so tests can
see what the client actually put on the wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.external.loopback import serve

KEY = "cck_fake-action-key"


@dataclass
class FakeGateway:
    """What the fake answers (`captures`, `status`) and what it saw (`requests`)."""

    captures: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: int = 200
    requests: list[tuple[str, str, str, str]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/conversations/{conversation_id}/capture", self._capture)
        app.router.add_post("/v1/conversations/{conversation_id}/context", self._context)
        return app

    def _seen(self, request: web.Request) -> web.Response | None:
        conversation = request.match_info["conversation_id"]
        auth = request.headers.get("Authorization", "")
        self.requests.append((request.method, request.raw_path, conversation, auth))
        if auth != f"Bearer {KEY}":
            return web.json_response({"error": "unauthorized"}, status=401)
        if self.status != 200:
            return web.json_response({"error": "internal_error"}, status=self.status)
        return None

    async def _capture(self, request: web.Request) -> web.Response:
        refused = self._seen(request)
        if refused is not None:
            return refused
        conversation = request.match_info["conversation_id"]
        record = self.captures.get(conversation)
        return web.json_response({"conversation_id": conversation, "capture": record})

    async def _context(self, request: web.Request) -> web.Response:
        refused = self._seen(request)
        if refused is not None:
            return refused
        return web.json_response({"conversation_id": request.match_info["conversation_id"]})


@asynccontextmanager
async def fake_gateway() -> AsyncIterator[tuple[FakeGateway, str]]:
    """The fake and its base URL, for the duration of one test."""
    fake = FakeGateway()
    async with serve(fake.app()) as base:
        yield fake, base
