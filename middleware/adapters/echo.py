"""The built-in bot for a first run: answers with the (already redacted) text it got."""

from __future__ import annotations

from coatcheck.middleware.adapters.rasa_rest import bot_message
from coatcheck.middleware.gateway.turns import BotAnswer, BotReply, BotTurn

__all__ = ["EchoBot"]


class EchoBot:
    """Echoes what a Rasa bot would have been sent, so redaction is visible at once."""

    async def send(self, turn: BotTurn) -> BotAnswer:
        message, _ = bot_message(turn)
        return BotAnswer((BotReply(text=message),))
