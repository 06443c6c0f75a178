"""The channel routes: a protocol's webhook through its channel adapter to the domain.

The route authenticates (a `channel` key), validates the protocol's body, lets the
adapter make the turn and render the replies; everything in between is
`ConversationService.handle`.  One router per channel protocol.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import Response

from coatcheck.middleware.adapters.rasa_rest import RasaMessage, Reply
from coatcheck.middleware.gateway.errors import BadText
from coatcheck.middleware.gateway.ports import ChannelAdapter
from coatcheck.middleware.gateway.text import clean_field
from coatcheck.middleware.service.deps import ChannelKey, ConversationsDep

__all__ = ["rasa_rest_router"]


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _message_id(value: str) -> str:
    """The header's id: 1 to 255 printable characters (422 naming the header otherwise)."""
    value = clean_field(value.strip(), "Idempotency-Key")
    if not value:
        raise BadText("Idempotency-Key", "must not be empty")
    return value


def rasa_rest_router(channel: ChannelAdapter[RasaMessage, list[Reply]]) -> APIRouter:
    """`POST /webhooks/rest/webhook`: Rasa's REST channel."""
    router = APIRouter()

    @router.post("/webhooks/rest/webhook", response_model=list[dict[str, Any]])
    async def webhook(
        body: RasaMessage,
        conversations: ConversationsDep,
        caller: ChannelKey,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> Response:
        """The hot path: the reply list is plain JSON already, so it skips response
        validation.  The presenting key is counted (its own rate limit); an
        `Idempotency-Key` header (or Rasa's `metadata.message_id`) makes a repeat act once."""
        turn = replace(channel.to_turn(body, conversations.pseudonym), client=caller.prefix)
        if idempotency_key is not None:
            turn = replace(turn, message_id=_message_id(idempotency_key))
        replies = await conversations.handle(turn)
        return Response(_dumps(channel.render(body, replies)), media_type="application/json")

    return router
