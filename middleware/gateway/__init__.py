"""The gateway's domain: what happens to a conversation, protocol-free and HTTP-free.

    turns.py         neutral types: InboundTurn -> BotTurn -> BotAnswer -> BotReply
    ports.py         ChannelAdapter / BotAdapter (one pair per protocol: middleware/adapters/)
    conversation.py  ConversationService: one turn (limits, redact, record, bot, replies)
    replies.py       the answer's way back (confirmations, history, rule, end)
    redaction.py     redact on request, context rules, temporary references
    reveals.py       grants, granted and staff reveals, checks (+ refusals.py: their audit)
    lifecycle.py     THE end of a conversation, status after expiries
    sweeper.py       idle ends, expiries, rate-window clean-up
    exports.py       records for third parties, the stored export config
    records.py       status, listings, transcripts (staff and viewers)
    store/           GatewayStore: every table the gateway owns
    services.py      Services: what the composition root builds for the HTTP layers

Each service takes the collaborators it uses; `coatcheck.middleware.app` composes them.
"""

from coatcheck.middleware.gateway.apikeys import Caller, Role
from coatcheck.middleware.gateway.errors import GatewayError
from coatcheck.middleware.gateway.ports import BotAdapter, ChannelAdapter
from coatcheck.middleware.gateway.rules import ContextRule
from coatcheck.middleware.gateway.services import Services, services_of
from coatcheck.middleware.gateway.turns import (
    BotAnswer,
    BotReply,
    BotTurn,
    Button,
    CaptureResult,
    EntityRef,
    InboundTurn,
    Message,
    Part,
    TextPart,
    ToolCall,
    ToolResult,
)

__all__ = [
    "BotAdapter",
    "BotAnswer",
    "BotReply",
    "BotTurn",
    "Button",
    "Caller",
    "CaptureResult",
    "ChannelAdapter",
    "ContextRule",
    "EntityRef",
    "GatewayError",
    "InboundTurn",
    "Message",
    "Part",
    "Role",
    "Services",
    "TextPart",
    "ToolCall",
    "ToolResult",
    "services_of",
]
