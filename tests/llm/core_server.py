"""A loopback HTTP server hosting the core, for running the external benchmark against it
before the service route exists (tests/llm/test_benchmark.py; `python -m tests.llm.core_server`).

It is not the gateway: no API keys, an in-memory vault and placeholder book. It shows what
the protocol-level core does with the benchmark's traffic.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

import aiohttp
from aiohttp import web

from coatcheck.middleware.llm import (
    CONVERSATION_HEADER,
    WORD_TYPES,
    ChatCompletions,
    LlmError,
    ShapedDetector,
    Upstream,
    conversation_for,
)
from tests.llm.helpers import DETECTOR, MemoryBook, MemoryVault, redactor

# Stand-ins until detection has them (the detection issue): three secret shapes, and the
# 9xx-area SSN / 555 phone shapes the benchmark plants without context words.
_EXTRA = (
    (
        "SECRET_TOKEN",
        re.compile(r"\bAKIA[0-9A-Z]{16}\b|\bghp_[A-Za-z0-9_]{36}\b|\bxox[abp]-[A-Za-z0-9-]{10,}\b"),
    ),
    ("US_SSN", re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")),
    ("PHONE_NUMBER", re.compile(r"(?<![\w-])\d{3}-\d{3}-\d{4}(?![\w-])")),
)


class _WithSecrets:
    """The real detector plus the stand-ins; overlaps resolved by the real detector first."""

    def detect(self, text: str) -> list[Any]:
        spans: list[Any] = list(DETECTOR.detect(text))
        for entity_type, pattern in _EXTRA:
            for m in pattern.finditer(text):
                if all(m.end() <= s.start or m.start() >= s.end for s in spans):
                    spans.append(_Span(m.start(), m.end(), entity_type, m.group(0)))
        return sorted(spans, key=lambda s: s.start)


class _Span:
    def __init__(self, start: int, end: int, entity_type: str, value: str) -> None:
        self.start, self.end, self.entity_type, self.value = start, end, entity_type, value


def build_app(upstream_url: str, *, secrets: bool = False) -> web.Application:
    detector: Any = _WithSecrets() if secrets else DETECTOR
    state: dict[str, Any] = {}
    vault, book = MemoryVault(), MemoryBook()

    async def startup(app: web.Application) -> None:
        session = aiohttp.ClientSession()
        state["session"] = session
        prompt = redactor(vault, book)
        prompt.detector = detector
        types = set(WORD_TYPES) | ({"SECRET_TOKEN"} if secrets else set())
        response = ShapedDetector(detector.detect, types)
        state["core"] = ChatCompletions(prompt, Upstream(session, upstream_url, None), response)

    async def cleanup(app: web.Application) -> None:
        await state["session"].close()

    async def chat(request: web.Request) -> web.StreamResponse:
        core: ChatCompletions = state["core"]
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": {"message": "body is not JSON"}}, status=400)
        try:
            user = body.get("user") if isinstance(body, dict) else None
            conversation = conversation_for(
                request.headers.get(CONVERSATION_HEADER), user, lambda: "r"
            )
            prepared = await core.prepare(conversation + str(id(request)), body)
            if not prepared.stream:
                return web.json_response(await core.complete(prepared))
            frames = await core.open_stream(prepared)
        except LlmError as exc:
            return web.json_response(exc.body(), status=exc.status)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        async for frame in frames:
            await response.write(frame)
        await response.write_eof()
        return response

    app = web.Application()
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    app.router.add_post("/v1/chat/completions", chat)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--secrets", action="store_true")
    args = parser.parse_args()
    web.run_app(build_app(args.upstream, secrets=args.secrets), host="127.0.0.1", port=args.port)
