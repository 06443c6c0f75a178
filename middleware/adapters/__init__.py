"""Protocol adapters: one channel adapter / bot adapter pair per protocol.

    rasa_rest.py   Rasa's REST channel and bot (the webhook, the reply list, directives)
    echo.py        the built-in echo bot (no bot configured)
    openai_chat.py OpenAI's chat completions: the client side and the model provider

They translate between a protocol and the domain's neutral types
(`coatcheck.middleware.gateway.turns`); the domain never imports them.
"""

from coatcheck.middleware.adapters.echo import EchoBot
from coatcheck.middleware.adapters.openai_chat import OpenAiChannel, openai_provider
from coatcheck.middleware.adapters.rasa_rest import (
    RasaMessage,
    RasaRestBot,
    RasaRestChannel,
    parse_answer,
)

__all__ = [
    "EchoBot",
    "OpenAiChannel",
    "RasaMessage",
    "RasaRestBot",
    "RasaRestChannel",
    "openai_provider",
    "parse_answer",
]
