"""One chat completion through the gateway: plan -> redact -> provider -> filter -> client.

`ChatCompletions` is the protocol-level core the HTTP route wraps (docs/llm.md, "Wiring"):

    prepared = await core.prepare(conversation_id, body)     # 400 / 503 before anything goes up
    if prepared.stream:
        frames = await core.open_stream(prepared)             # provider errors -> JSON errors
        return StreamingResponse(frames, media_type="text/event-stream")
    return JSONResponse(await core.complete(prepared))

Fail closed: the provider is only called with a body every string of which passed the
redactor; a redactor failure raises before that. Once a stream has started, a failure ends
it with an OpenAI error event (after releasing, filtered, what was held) and no `[DONE]`.
`on_exchange` (injected) receives what history keeps: the redacted prompt strings and the
answer's fields, references instead of values.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from coatcheck.middleware.llm.errors import LlmError, UpstreamProtocolError, UpstreamUnavailable
from coatcheck.middleware.llm.placeholders import PlaceholderGrammar
from coatcheck.middleware.llm.redact import Redaction
from coatcheck.middleware.llm.request import plan_request
from coatcheck.middleware.llm.response import StreamRewriter, rewrite_completion
from coatcheck.middleware.llm.response_detect import ResponseDetector
from coatcheck.middleware.llm.sse import SseDecoder, encode_event
from coatcheck.middleware.llm.upstream import UpstreamAnswer

__all__ = ["CONVERSATION_HEADER", "ChatCompletions", "Exchange", "Prepared", "conversation_for"]

CONVERSATION_HEADER = "X-Coatcheck-Conversation"
FLUSH_SECONDS = 0.001  # the longest a filtered frame waits for the rest of its read
DRAIN_SECONDS = 0.05  # how long the end of a provider's body is awaited after `[DONE]`
FIRST_BITE = 1024  # bytes of a read decoded at a time until the first text is out
RUN = 64  # payloads of one read filtered between two looks at the clock


def conversation_for(header: str | None, user: str | None, new_id: Callable[[], str]) -> str:
    """Header, else `user:<user>`, else a conversation of its own (docs/llm.md)."""
    if header:
        return header
    if user:
        return f"user:{user}"
    return f"llm-{new_id()}"


class Redactor(Protocol):
    grammar: PlaceholderGrammar

    async def redact(self, conversation_id: str, texts: Sequence[str]) -> Redaction: ...

    def redact_sync(
        self,
        conversation_id: str,
        texts: Sequence[str],
        *,
        record: Callable[[Any, Redaction], None] | None = None,
    ) -> Redaction: ...


class Provider(Protocol):
    async def chat(self, body: bytes, *, stream: bool) -> UpstreamAnswer: ...


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request ready to go up: the redacted body and this request's restore map."""

    conversation_id: str
    body: dict[str, Any]
    redaction: Redaction
    paths: list[str]
    stream: bool
    model: str


@dataclass
class Exchange:
    """What history keeps of one completion: no values, references in their place."""

    conversation_id: str
    prompt: list[tuple[str, str]]  # (path, text) as sent up, placeholders as references
    answer: dict[tuple[int, tuple[str | int, ...]], str] = field(default_factory=dict)
    complete: bool = True


class ChatCompletions:
    """The gateway's chat-completions core; everything it talks to is injected."""

    def __init__(
        self,
        redactor: Redactor,
        provider: Provider,
        detector: ResponseDetector,
        *,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: secrets.token_hex(12),
        on_exchange: Callable[[Exchange], Awaitable[None]] | None = None,
    ) -> None:
        self._redactor = redactor
        self._provider = provider
        self._detector = detector
        self._clock = clock
        self._new_id = new_id
        self._on_exchange = on_exchange

    async def prepare(self, conversation_id: str, body: object) -> Prepared:
        plan = plan_request(body)
        redaction = await self._redactor.redact(conversation_id, plan.texts)
        upstream = plan.fill(redaction.texts)
        return Prepared(conversation_id, upstream, redaction, plan.paths, plan.stream, plan.model)

    def prepare_sync(
        self,
        conversation_id: str,
        body: object,
        *,
        record: Callable[[Any, Prepared], None] | None = None,
    ) -> Prepared:
        """`prepare` for a caller already off the event loop.  `record(tx, prepared)` runs
        inside the vault's transaction (`tx` None when nothing was vaulted): the gateway
        stores and counts the prompt line with the values, one commit, before anything
        goes up."""
        plan = plan_request(body)

        def prepared(redaction: Redaction) -> Prepared:
            upstream = plan.fill(redaction.texts)
            return Prepared(
                conversation_id, upstream, redaction, plan.paths, plan.stream, plan.model
            )

        keep = None
        if record is not None:

            def keep(tx: Any, redaction: Redaction) -> None:
                record(tx, prepared(redaction))

        return prepared(self._redactor.redact_sync(conversation_id, plan.texts, record=keep))

    def _encoded(self, prepared: Prepared) -> bytes:
        return json.dumps(prepared.body, ensure_ascii=False).encode("utf-8")

    def _exchange(self, prepared: Prepared, answer: dict[Any, str], complete: bool) -> Exchange:
        prompt = list(zip(prepared.paths, prepared.redaction.records, strict=True))
        return Exchange(prepared.conversation_id, prompt, answer, complete)

    async def complete(self, prepared: Prepared) -> dict[str, Any]:
        """A non-streamed completion: the client's body (raises `LlmError`s)."""
        answer = await self._provider.chat(self._encoded(prepared), stream=False)
        try:
            if answer.event_stream:
                raise UpstreamProtocolError("unexpected_stream")
            payload = await answer.json()
        finally:
            answer.close()
        body, records = rewrite_completion(
            payload,
            self._redactor.grammar,
            prepared.redaction.restore,
            self._detector,
            response_id=f"chatcmpl-{self._new_id()}",
            created=int(self._clock()),
            model=prepared.model,
        )
        if self._on_exchange is not None:
            await self._on_exchange(self._exchange(prepared, records, True))
        return body

    async def open_stream(self, prepared: Prepared) -> AsyncIterator[bytes]:
        """Call the provider; its errors raise here, before the client gets a status line.
        The returned iterator yields our SSE frames and closes the provider's answer."""
        answer = await self._provider.chat(self._encoded(prepared), stream=True)
        if not answer.event_stream:
            answer.close()
            raise UpstreamProtocolError("not_a_stream")
        rewriter = StreamRewriter(
            self._redactor.grammar,
            prepared.redaction.restore,
            self._detector,
            response_id=f"chatcmpl-{self._new_id()}",
            created=int(self._clock()),
            model=prepared.model,
        )
        return self._frames(prepared, answer, rewriter)

    async def _frames(
        self, prepared: Prepared, answer: UpstreamAnswer, rewriter: StreamRewriter
    ) -> AsyncIterator[bytes]:
        # Until the client has its first text, the read is decoded a bite at a time and its
        # payloads filtered one at a time, what they give going out at once (time to first
        # token).  After that, the frames of one read of the provider's stream go out as one
        # write, its text-only payloads filtered in runs (`StreamRewriter.events`), but none
        # waits more than `FLUSH_SECONDS` for the rest of a long read (bench/llm.py: under
        # load one read can hold most of a stream).
        decoder = SseDecoder()
        pending: list[bytes] = []
        try:
            async for chunk, read_ends in _bites(answer, rewriter):
                datas = decoder.feed(chunk)
                since = time.perf_counter()
                at = 0
                while at < len(datas) and not rewriter.done:
                    first = not rewriter.text_out
                    step = 1 if first else RUN
                    rewriter.events(datas[at : at + step], pending)
                    at += step
                    if pending and (
                        (first and rewriter.text_out) or time.perf_counter() - since > FLUSH_SECONDS
                    ):
                        batch, pending = b"".join(pending), []
                        yield batch
                        since = time.perf_counter()
                if pending and (read_ends or rewriter.done):
                    batch, pending = b"".join(pending), []
                    yield batch
                if rewriter.done:
                    await answer.drain(DRAIN_SECONDS)
                    break
            if not rewriter.done:
                rewriter.events(decoder.finish(), pending)
            if not rewriter.done:
                if rewriter.unfinished():
                    raise UpstreamUnavailable("stream_ended_early")
                pending += rewriter.end()
            if pending:
                batch, pending = b"".join(pending), []
                yield batch
        except LlmError as exc:
            yield b"".join([*pending, *rewriter.release_held(), encode_event(exc.body())])
        finally:
            answer.close()
            if self._on_exchange is not None:
                exchange = self._exchange(prepared, rewriter.record_texts(), rewriter.done)
                await self._on_exchange(exchange)


async def _bites(
    answer: UpstreamAnswer, rewriter: StreamRewriter
) -> AsyncIterator[tuple[bytes, bool]]:
    """The provider's reads, each with True; before the client has its first text, in
    `FIRST_BITE` pieces (False but for the last): a read can hold a whole answer, and
    decoding all of it would come before the first token."""
    async for chunk in answer.chunks():
        while not rewriter.text_out and len(chunk) > FIRST_BITE:
            yield chunk[:FIRST_BITE], False
            chunk = chunk[FIRST_BITE:]
        yield chunk, True
