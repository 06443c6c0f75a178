"""The channel routes: a protocol's webhook through its channel adapter to the domain.

The route authenticates (a `channel` key), validates the protocol's body, lets the
adapter make the turn and render the replies; everything in between is
`ConversationService.handle`.  One router per channel protocol.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from coatcheck.middleware.adapters.rasa_rest import RasaMessage, Reply
from coatcheck.middleware.gateway.ports import ChannelAdapter
from coatcheck.middleware.service.deps import ChannelKey, ConversationsDep

__all__ = ["rasa_rest_router"]


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def rasa_rest_router(channel: ChannelAdapter[RasaMessage, list[Reply]]) -> APIRouter:
    """`POST /webhooks/rest/webhook`: Rasa's REST channel."""
    router = APIRouter()

    @router.post("/webhooks/rest/webhook", response_model=list[dict[str, Any]])
    async def webhook(
        body: RasaMessage, conversations: ConversationsDep, _: ChannelKey
    ) -> Response:
        """The hot path: the reply list is plain JSON already, so it skips response
        validation."""
        replies = await conversations.handle(channel.to_turn(body, conversations.pseudonym))
        return Response(_dumps(channel.render(body, replies)), media_type="application/json")

    return router
