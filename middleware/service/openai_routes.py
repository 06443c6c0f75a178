"""The OpenAI-compatible routes: a client's base URL is `http://HOST:PORT/openai/v1`.

`POST /chat/completions` (streamed as server-sent events or whole) and `GET /models`
(the provider's list, passed through), for a `channel` key (Bearer), through the OpenAI
channel adapter and the LLM conversation service (docs/llm.md).  Every error on these
paths is in OpenAI's shape (`handlers.py`); nothing reaches the provider before the
request is redacted and its prompt line stored.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from coatcheck.middleware.adapters.openai_chat import CONVERSATION_HEADER, OpenAiChannel
from coatcheck.middleware.gateway.llm_chat import LlmChats
from coatcheck.middleware.gateway.services import services_of
from coatcheck.middleware.llm import NotConfigured
from coatcheck.middleware.service.deps import ChannelKey, ConversationsDep

__all__ = ["PREFIX", "openai_router"]

PREFIX = "/openai/v1"
# The request body as the API docs (and the API fuzzer) see it: the common shape. The route
# reads the body itself (the LLM core walks every key, known or not: docs/llm.md).
_CHAT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["model", "messages"],
                "properties": {
                    "model": {"type": "string"},
                    "messages": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["role", "content"],
                            "properties": {
                                "role": {"type": "string", "enum": ["system", "user"]},
                                "content": {"type": "string"},
                            },
                        },
                    },
                    "stream": {"type": "boolean"},
                    "user": {"type": "string"},
                },
            }
        }
    },
}
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def _llm(request: Request) -> LlmChats:
    llm = services_of(request.app.state).llm
    if llm is None:
        raise NotConfigured()
    return llm


LlmDep = Annotated[LlmChats, Depends(_llm)]


def _json(payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, media_type="application/json", headers=headers)


def openai_router(channel: OpenAiChannel) -> APIRouter:
    """The routes under `/openai/v1` (the key is checked before anything else)."""
    router = APIRouter(prefix=PREFIX)

    @router.post("/chat/completions", openapi_extra={"requestBody": _CHAT_BODY})
    async def chat_completions(
        request: Request, _: ChannelKey, llm: LlmDep, conversations: ConversationsDep
    ) -> Response:
        """A chat completion with every value replaced by a placeholder on the way up and
        restored (only this request's) on the way down; the conversation id comes back in
        `X-Coatcheck-Conversation`.  The client's id (a header it chose, or its `user`,
        often an e-mail address) is stored only as its keyed pseudonym, like a sender's."""
        body = channel.parse(await request.body())
        conversation = channel.conversation(request.headers.get(CONVERSATION_HEADER), body)
        prepared = await llm.prepare(conversations.pseudonym(conversation), body)
        headers = channel.echo_headers(conversation)
        if not prepared.stream:
            return _json(await llm.complete(prepared), headers)
        frames = await llm.open_stream(prepared)
        return StreamingResponse(
            frames, media_type="text/event-stream", headers={**_SSE_HEADERS, **headers}
        )

    @router.get("/models")
    async def models(_: ChannelKey, llm: LlmDep) -> Response:
        """The provider's model list, as it answered it."""
        return _json(await llm.models())

    return router
