"""A loopback HTTP server hosting the core, for running the external benchmark against it
before the service route exists (tests/llm/test_benchmark.py; `python -m tests.llm.core_server`).

It is not the gateway: no API keys, an in-memory vault and placeholder book, the real
detector with its default configuration. It shows what the protocol-level core does with the
benchmark's traffic.
"""

from __future__ import annotations

import argparse
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


def build_app(upstream_url: str) -> web.Application:
    state: dict[str, Any] = {}
    vault, book = MemoryVault(), MemoryBook()

    async def startup(app: web.Application) -> None:
        session = aiohttp.ClientSession()
        state["session"] = session
        prompt = redactor(vault, book)
        response = ShapedDetector(DETECTOR.detect, WORD_TYPES)
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
    args = parser.parse_args()
    web.run_app(build_app(args.upstream), host="127.0.0.1", port=args.port)
