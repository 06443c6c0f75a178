"""Request limits enforced before any parsing: body bytes and JSON nesting depth.

A pure ASGI middleware reads the body once (stopping at the byte limit), scans its nesting
depth without building objects, and replays it to the app.  Text fields are checked by
`coatcheck.middleware.gateway.text.clean_text` (lone surrogates and control characters).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coatcheck.middleware.gateway.errors import GatewayError, PayloadTooLarge, TooDeep
from coatcheck.middleware.llm import openai_error
from coatcheck.middleware.service.handlers import OPENAI_PREFIX

__all__ = ["BodyLimits", "json_depth"]


def json_depth(body: bytes) -> int:
    """Maximum nesting depth of a JSON document, counted without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x7D, 0x5D):
            depth -= 1
    return deepest


class BodyLimits:
    """ASGI middleware: 413 past `max_bytes`, 400 past `max_depth` (JSON bodies only).

    The refusal comes before routing, so the exception handlers never see it: its body is
    shaped here, in OpenAI's error shape on the OpenAI-compatible routes (an SDK client
    reads `error.message` there) and in ours elsewhere.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
        except GatewayError as exc:
            await _send_error(send, exc, str(scope.get("path", "")))
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                raise PayloadTooLarge("body")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise PayloadTooLarge("body")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_depth(body) > self.max_depth:
            raise TooDeep("body")
        return body


async def _send_error(send: Send, exc: GatewayError, path: str) -> None:
    if path.startswith(OPENAI_PREFIX):
        body = openai_error(exc.message, "invalid_request_error", None, exc.code)
    else:
        body = {"error": exc.code, "message": exc.message}
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": exc.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
