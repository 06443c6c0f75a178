"""The two sides of a protocol: a channel adapter (where users write) and a bot adapter
(what answers).  One pair per protocol (`middleware/adapters/`); the domain only ever sees
the neutral types of `turns.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from coatcheck.middleware.gateway.turns import BotAnswer, BotReply, BotTurn, InboundTurn

__all__ = ["BotAdapter", "ChannelAdapter"]

Request = TypeVar("Request", contravariant=True)
Response = TypeVar("Response", covariant=True)


class ChannelAdapter(Protocol[Request, Response]):
    """A channel's protocol: its request as a turn, the gateway's replies as its response.

    `name` is what exports record as the record's channel.
    """

    @property
    def name(self) -> str: ...

    def to_turn(self, request: Request) -> InboundTurn: ...

    def render(self, request: Request, replies: Sequence[BotReply]) -> Response: ...


class BotAdapter(Protocol):
    """A bot's protocol: send one redacted turn, get its answer (directives parsed)."""

    async def send(self, turn: BotTurn) -> BotAnswer: ...
