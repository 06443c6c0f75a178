"""The two sides of a protocol: a channel adapter (where users write) and a bot adapter
(what answers).  One pair per protocol (`middleware/adapters/`); the domain only ever sees
the neutral types of `turns.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from coatcheck.middleware.gateway.turns import BotAnswer, BotReply, BotTurn, InboundTurn

__all__ = ["BotAdapter", "ChannelAdapter", "Pseudonym"]

# A channel's real sender id -> its keyed pseudonym (`Vault.pseudonym`), the only
# conversation id anything past the channel adapter sees.
Pseudonym = Callable[[str], str]

Request = TypeVar("Request", contravariant=True)
Response = TypeVar("Response", covariant=True)


class ChannelAdapter(Protocol[Request, Response]):
    """A channel's protocol: its request as a turn, the gateway's replies as its response.

    `name` is what exports record as the record's channel.  `to_turn` keys the turn by
    `pseudonym(<the channel's sender id>)`; `render` addresses the real one.
    """

    @property
    def name(self) -> str: ...

    def to_turn(self, request: Request, pseudonym: Pseudonym) -> InboundTurn: ...

    def render(self, request: Request, replies: Sequence[BotReply]) -> Response: ...


class BotAdapter(Protocol):
    """A bot's protocol: send one redacted turn, get its answer (directives parsed)."""

    async def send(self, turn: BotTurn) -> BotAnswer: ...
