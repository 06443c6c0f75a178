"""A small customer vault (aiohttp app) for the tests: every auth type and failure mode."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# "CUST-7Q2K9X" is a customer id as a chat user types it (the gateway tests); its value
# matches no global pattern, so only "never logged" keeps it out of the logs.
VALUES = {
    "r1": "alice@example.com",
    "r/2": "4111 1111 1111 1111",
    "CUST-7Q2K9X": "Quokka-Canary Lighthouse Nine",
    "r 3+x?": "carol@example.org",
}
BIG_TOKEN_BYTES = 80 * 1024 * 1024  # the 80 MB token answer
USER, PASSWORD, BEARER, API_KEY = "svc", "pw-s3cret", "bearer-s3cret", "key-s3cret"
CLIENT_ID, CLIENT_SECRET = "client", "client-s3cret"


@dataclass
class VaultState:
    """What the server saw, and knobs the tests turn."""

    hits: Counter[str] = field(default_factory=Counter)
    tokens_issued: list[str] = field(default_factory=list)
    token_expires_in: float = 60.0
    revoked: set[str] = field(default_factory=set)
    fail_first: int = 2
    slow_seconds: float = 1.0
    paths: list[str] = field(default_factory=list)  # every request's raw path
    big_token_sent: int = 0  # bytes of the 80 MB token answer that left the server


def _value(request: web.Request) -> web.Response:
    ref = request.match_info["ref"]
    if ref not in VALUES:
        return web.json_response({"error": "unknown"}, status=404)
    return web.json_response({"value": VALUES[ref]})


def build_app(state: VaultState) -> web.Application:
    """Routes: one per auth type, a POST lookup, an OAuth2 token endpoint, failure modes."""

    def check(request: web.Request, ok: bool, name: str) -> web.Response:
        state.hits[name] += 1
        return _value(request) if ok else web.json_response({"error": "auth"}, status=401)

    async def none(request: web.Request) -> web.Response:
        return check(request, True, "none")

    async def basic(request: web.Request) -> web.Response:
        good = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return check(request, request.headers.get("Authorization") == f"Basic {good}", "basic")

    async def bearer(request: web.Request) -> web.Response:
        return check(request, request.headers.get("Authorization") == f"Bearer {BEARER}", "bearer")

    async def key_header(request: web.Request) -> web.Response:
        return check(request, request.headers.get("X-Api-Key") == API_KEY, "key_header")

    async def key_query(request: web.Request) -> web.Response:
        return check(request, request.query.get("api_key") == API_KEY, "key_query")

    async def token(request: web.Request) -> web.Response:
        good = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = await request.post()
        if request.headers.get("Authorization") != f"Basic {good}":
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        issued = f"tok-{len(state.tokens_issued)}"
        state.tokens_issued.append(issued)
        return web.json_response(
            {"access_token": issued, "token_type": "Bearer", "expires_in": state.token_expires_in}
        )

    async def oauth(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        live = set(state.tokens_issued) - state.revoked
        return check(request, auth.removeprefix("Bearer ") in live, "oauth")

    async def lookup(request: web.Request) -> web.Response:
        state.hits["lookup"] += 1
        body = await request.json()
        if body.get("opt", "absent") is not None or body.get("fields") != ["value"]:
            return web.json_response({"error": "template"}, status=400)
        ref = body.get("query", {}).get("id")
        if ref not in VALUES:
            return web.json_response({"error": "unknown"}, status=404)
        return web.json_response({"data": {"value": VALUES[ref]}})

    async def slow(request: web.Request) -> web.Response:
        state.hits["slow"] += 1
        await asyncio.sleep(state.slow_seconds)
        return _value(request)

    async def garbage(request: web.Request) -> web.Response:
        state.hits["garbage"] += 1
        return web.Response(text=f"<html>{VALUES['r1']}</html>", content_type="text/html")

    async def shape(request: web.Request) -> web.Response:
        return web.json_response({"value": {"nested": VALUES["r1"]}})

    async def flaky(request: web.Request) -> web.Response:
        state.hits["flaky"] += 1
        if state.hits["flaky"] <= state.fail_first:
            return web.Response(status=500, text=VALUES["r1"])
        return _value(request)

    async def forbidden(request: web.Request) -> web.Response:
        state.hits["forbidden"] += 1
        return web.Response(status=403)

    async def redirect(request: web.Request) -> web.Response:
        state.hits["redirect"] += 1
        raise web.HTTPFound("/none/r1")

    async def huge(request: web.Request) -> web.Response:
        state.hits["huge"] += 1
        return web.json_response({"value": VALUES["r1"], "pad": "x" * 100_000})

    async def big_token(request: web.Request) -> web.StreamResponse:
        """A token endpoint answering an 80 MB (valid JSON) token, chunked, no length."""
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        await resp.prepare(request)
        chunk = b"A" * (1 << 20)
        try:
            await resp.write(b'{"expires_in": 60, "access_token": "')
            while state.big_token_sent < BIG_TOKEN_BYTES:
                await resp.write(chunk)
                state.big_token_sent += len(chunk)
            await resp.write(b'"}')
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading and closed
        return resp

    @web.middleware
    async def record_path(request: web.Request, handler: Any) -> web.StreamResponse:
        state.paths.append(request.raw_path)
        response: web.StreamResponse = await handler(request)
        return response

    app = web.Application(middlewares=[record_path])
    app.router.add_post("/big-token", big_token)
    app.router.add_get("/redirect/{ref}", redirect)
    app.router.add_get("/huge/{ref}", huge)
    app.router.add_get("/none/{ref}", none)
    app.router.add_get("/basic/{ref}", basic)
    app.router.add_get("/bearer/{ref}", bearer)
    app.router.add_get("/key-header/{ref}", key_header)
    app.router.add_get("/key-query/{ref}", key_query)
    app.router.add_post("/token", token)
    app.router.add_get("/oauth/{ref}", oauth)
    app.router.add_post("/lookup", lookup)
    app.router.add_get("/slow/{ref}", slow)
    app.router.add_get("/garbage/{ref}", garbage)
    app.router.add_get("/shape/{ref}", shape)
    app.router.add_get("/flaky/{ref}", flaky)
    app.router.add_get("/forbidden/{ref}", forbidden)
    return app
