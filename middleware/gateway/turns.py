"""The neutral shapes of a conversation, whatever protocol the channel and the bot speak.

A channel adapter turns its request into an `InboundTurn`; the conversation service
redacts it into a `BotTurn` for the bot adapter, which answers a `BotAnswer` (replies in
order, plus the directives it carried); the service hands the channel adapter the replies
to render.  No protocol's field names live here: Rasa's `sender`, `custom.coatcheck` and
reply lists are the Rasa REST adapters' business (`middleware/adapters/rasa_rest.py`).

Shaped for more than Rasa: a turn holds messages with roles, each message parts (text,
tool calls, tool results), as an OpenAI-style chat request does; the conversation id and
the rate key are the adapter's to choose (a sender, a header, an API key).  The
conversation service takes one user text per turn today (`InboundTurn.user_text`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from coatcheck.middleware.gateway.errors import UnsupportedTurn
from coatcheck.middleware.gateway.rules import ContextRule

__all__ = [
    "EMPTY",
    "BotAnswer",
    "BotReply",
    "BotTurn",
    "Button",
    "CaptureResult",
    "EntityRef",
    "InboundTurn",
    "Message",
    "MessageRole",
    "Part",
    "TextPart",
    "ToolCall",
    "ToolResult",
]

EMPTY: Mapping[str, Any] = MappingProxyType({})
MessageRole = Literal["user", "assistant", "system", "tool"]


@dataclass(frozen=True, slots=True)
class EntityRef:
    """A reference in redacted text: its type, full form and offsets into that text."""

    type: str
    ref: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class TextPart:
    """Text; on the bot's side redacted, with the references it holds."""

    text: str
    entities: tuple[EntityRef, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A model's call of a tool; `arguments` is the JSON text as written (redacted as text)."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool answered to the call `call_id`."""

    call_id: str
    text: str


Part = TextPart | ToolCall | ToolResult


@dataclass(frozen=True, slots=True)
class Message:
    role: MessageRole
    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class InboundTurn:
    """What a channel sent, as the adapter understood it.

    `conversation_id` keys history, state and the vault; `rate_key` is what the rate limit
    counts (the same sender, or a client, an API key...); `channel` names the adapter;
    `language` is the channel's hint of the conversation's language (`de-DE`, `fr`), which
    detection uses for numbering plans and NER (malformed or unknown hints are ignored).
    `client` is the public prefix of the API key that presented the turn (its own rate
    limit, whatever senders it rotates through); `message_id` the channel's id for the
    message, if it gave one (a repeat acts once: idempotent delivery).
    `sender`: the channel's real sender id when `conversation_id` is its pseudonym; it is
    vaulted as a `SENDER_ID` value of the conversation and kept nowhere else.
    """

    conversation_id: str
    rate_key: str
    channel: str
    messages: tuple[Message, ...]
    language: str | None = None
    client: str | None = None
    message_id: str | None = None
    sender: str | None = field(default=None, repr=False)

    @classmethod
    def user_says(
        cls,
        conversation_id: str,
        text: str,
        *,
        channel: str,
        rate_key: str | None = None,
        language: str | None = None,
        sender: str | None = None,
    ) -> InboundTurn:
        """The common shape: one user message of one text part."""
        message = Message("user", (TextPart(text),))
        rate = rate_key or conversation_id
        return cls(conversation_id, rate, channel, (message,), language, sender=sender)

    def user_text(self) -> str:
        """The text of a turn of one user message with one text part; `UnsupportedTurn`
        for any other shape (several messages or parts, tool calls)."""
        if len(self.messages) == 1:
            message = self.messages[0]
            if message.role == "user" and len(message.parts) == 1:
                part = message.parts[0]
                if isinstance(part, TextPart):
                    return part.text
        raise UnsupportedTurn("messages")


@dataclass(frozen=True, slots=True)
class CaptureResult:
    """A secure capture's outcome: all the bot learns of the captured message."""

    entity_type: str
    ok: bool
    ref: str | None  # the full reference, only when ok


@dataclass(frozen=True, slots=True)
class BotTurn:
    """What the bot adapter forwards: the redacted messages, or only a capture result.
    `sender_ref`: the reference of the real sender id (`CC_SENDER_ID_...`), for an action
    that must reach the person (it asks for a grant like for any value)."""

    conversation_id: str
    messages: tuple[Message, ...] = ()
    capture: CaptureResult | None = None
    sender_ref: str | None = None

    def user_part(self) -> TextPart:
        """The one redacted user text part (the shape the conversation service sends);
        `UnsupportedTurn` for any other shape."""
        if len(self.messages) == 1 and len(self.messages[0].parts) == 1:
            part = self.messages[0].parts[0]
            if isinstance(part, TextPart):
                return part
        raise UnsupportedTurn("messages")


@dataclass(frozen=True, slots=True)
class Button:
    """A button or quick reply: its title (shown) and payload (sent back when chosen).
    `extras` keeps protocol fields without a neutral meaning, passed through."""

    title: str
    payload: str | None = None
    extras: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class BotReply:
    """One item of the bot's answer for the channel.

    `text` in reference form (history keeps it so; the channel leg may reveal some),
    `buttons`, a `custom` payload for the channel (not a coatcheck directive), `extras`
    (protocol fields without a neutral meaning: images, attachments...; passed through to a
    channel of the same protocol).  `confirm`: a confirmation prompt, whose references are
    revealed to the end user whatever their type's `confirm` setting.
    """

    text: str | None = None
    buttons: tuple[Button, ...] = ()
    custom: Any = None
    extras: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    confirm: bool = False


@dataclass(frozen=True, slots=True)
class BotAnswer:
    """The bot's replies in order, and its directives: the context rule for the next user
    message (the last valid one), and whether to end the conversation after this answer."""

    replies: tuple[BotReply, ...] = ()
    rule: ContextRule | None = None
    end: bool = False
