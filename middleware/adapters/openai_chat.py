"""OpenAI's chat-completions protocol, both sides: the channel (clients of
`/openai/v1/chat/completions`) and the bot (the model provider behind it).

Channel (`OpenAiChannel`): the body is parsed here (400 in OpenAI's shape, naming what is
wrong, never a value); the conversation is the `X-Coatcheck-Conversation` header, else
`user:<user>` from the body, else one conversation per request (docs/llm.md, "Conversation
ids"); it is also the rate key, as the sender is on the Rasa path.  The body itself is
planned and redacted whole by the LLM core (`coatcheck.middleware.llm`): a chat request
carries the whole history, tools and vendor keys, more than the neutral turn holds.

Bot (`openai_provider`): the provider's OpenAI-compatible API at
`COATCHECK_LLM_UPSTREAM_URL` with `COATCHECK_LLM_UPSTREAM_API_KEY`, on the worker's
shared aiohttp session; only our headers and the redacted body go up.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

import aiohttp

from coatcheck.middleware.gateway.text import clean_text
from coatcheck.middleware.llm import (
    CONVERSATION_HEADER,
    InvalidRequest,
    Upstream,
    conversation_for,
)

__all__ = ["CHANNEL", "CONVERSATION_HEADER", "OpenAiChannel", "openai_provider"]

CHANNEL = "openai"
_MAX_ID = 255


def _new_id() -> str:
    return secrets.token_hex(12)


class OpenAiChannel:
    """A chat-completions request as (conversation id, body)."""

    name = CHANNEL

    def __init__(self, new_id: Callable[[], str] = _new_id) -> None:
        self._new_id = new_id

    def parse(self, raw: bytes) -> object:
        """The JSON body; 400 `invalid_json` when it is not JSON (no text quoted)."""
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequest(
                "the body is not valid JSON", param=None, code="invalid_json"
            ) from None

    def conversation(self, header: str | None, body: object) -> str:
        """Header, else `user:<user>`, else a conversation of its own; 400 names the
        header or `user` when it is empty, too long or holds control characters."""
        user = body.get("user") if isinstance(body, dict) else None
        if user is not None and not isinstance(user, str):
            raise InvalidRequest("user must be a string", param="user", code="invalid_type")
        if header is not None:
            _check(header, CONVERSATION_HEADER)
        elif user:
            _check(f"user:{user}", "user")
        return conversation_for(header, user, self._new_id)

    def echo_headers(self, conversation_id: str) -> dict[str, str]:
        """The conversation id for the client (`X-Coatcheck-Conversation`), when it can be
        a header value (printable ASCII); else nothing."""
        if conversation_id.isascii() and conversation_id.isprintable():
            return {CONVERSATION_HEADER: conversation_id}
        return {}


def _check(value: str, name: str) -> None:
    try:
        clean_text(value)
        if "\r" in value or "\n" in value:  # a header value cannot hold them either
            raise ValueError(name)
    except ValueError:
        raise InvalidRequest(
            f"{name}: invalid characters", param=name, code="invalid_value"
        ) from None
    if not value.strip() or len(value) > _MAX_ID:
        raise InvalidRequest(
            f"{name}: must be 1 to {_MAX_ID} characters", param=name, code="invalid_value"
        )


def openai_provider(
    session: aiohttp.ClientSession, base_url: str, api_key: str | None, timeout: float
) -> Upstream:
    """The bot adapter: the provider's API (connect within 10 s, `timeout` between reads)."""
    limits = aiohttp.ClientTimeout(total=None, connect=10, sock_read=timeout)
    return Upstream(session, base_url, api_key, timeout=limits)
