"""A fake model provider on loopback: the OpenAI chat-completions API, streamed or whole.

It records every request (headers and body) so tests can assert that no value went up, and
answers as the test scripts it: echo the prompt (as the benchmark's capture does), rewrite
the placeholders it saw the way models do, add PII of its own, call tools, refuse, or fail
with an OpenAI-shaped error. A streamed answer is cut at the given byte offsets, each piece
written and flushed on its own.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Answer:
    content: str | None = None
    tool_calls: list[tuple[str, str]] = field(default_factory=list)  # (name, arguments)
    refusal: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # vendor string fields of the delta
    finish_reason: str = "stop"


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes
    body: Any

    def everything(self) -> str:
        """All the provider could read: headers and the raw body."""
        return json.dumps(self.headers) + self.raw.decode("utf-8", "replace")


def last_user_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1].get("content") or ""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content)
    return str(content)


def echo(body: dict[str, Any]) -> Answer:
    return Answer(content=last_user_text(body))


@dataclass
class FakeUpstream:
    answer: Callable[[dict[str, Any]], Answer] = echo
    piece: int = 1  # characters per streamed delta
    splits: list[int] | None = None  # byte offsets at which the stream is cut
    error: tuple[int, dict[str, Any]] | None = None
    cut_after: int | None = None  # bytes after which the stream just stops
    usage: bool = True
    eof_delay: float = 0  # seconds between the last event and the end of the body
    received: list[Received] = field(default_factory=list)
    peers: list[object] = field(default_factory=list)  # the client address of each request

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        return app

    async def _models(self, _: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw)
        self.received.append(Received(dict(request.headers), raw, body))
        transport = request.transport
        self.peers.append(transport.get_extra_info("peername") if transport else None)
        if self.error is not None:
            return web.json_response(self.error[1], status=self.error[0])
        answer = self.answer(body)
        if not body.get("stream"):
            return web.json_response(_whole(answer))
        stream = b"".join(_frames(answer, self.piece, self.usage))
        if self.cut_after is not None:
            stream = stream[: self.cut_after]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        cuts = sorted({0, *(self.splits or []), len(stream)})
        for a, b in itertools.pairwise(cuts):
            await response.write(stream[a:b])
            await asyncio.sleep(0)
        if self.cut_after is None:
            await asyncio.sleep(self.eof_delay)
            await response.write_eof()
        return response


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    event = {
        "id": "chatcmpl-upstream",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "fake-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _frames(answer: Answer, piece: int, usage: bool) -> list[bytes]:
    frames = [_chunk({"role": "assistant", "content": ""})]
    for text in _pieces(answer.content or "", piece):
        frames.append(_chunk({"content": text}))
    for name, value in answer.extra.items():
        frames += [_chunk({"content": "", name: text}) for text in _pieces(value, piece)]
    if answer.refusal:
        frames += [_chunk({"refusal": text}) for text in _pieces(answer.refusal, piece)]
    for index, (name, arguments) in enumerate(answer.tool_calls):
        head = {"index": index, "id": f"call_{index}", "type": "function"}
        frames.append(
            _chunk({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
        )
        for text in _pieces(arguments, piece):
            frames.append(
                _chunk({"tool_calls": [{"index": index, "function": {"arguments": text}}]})
            )
    frames.append(_chunk({}, answer.finish_reason))
    if usage:
        tail = {
            "id": "chatcmpl-upstream",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "fake-model",
        }
        counts = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
        frames.append(
            b"data: " + json.dumps({**tail, "choices": [], "usage": counts}).encode() + b"\n\n"
        )
    frames.append(b"data: [DONE]\n\n")
    return frames


def _whole(answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.refusal:
        message["refusal"] = answer.refusal
    message.update(answer.extra)
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": args}}
            for i, (name, args) in enumerate(answer.tool_calls)
        ]
    return {
        "id": "chatcmpl-upstream",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fake-model",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
    }
