"""Rasa's REST protocol, both sides: the channel webhook and the bot behind it.

Channel (`RasaRestChannel`): `POST /webhooks/rest/webhook` `{"sender", "message",
"metadata"?}` is one user turn; the sender is the conversation id and the rate key (the
channel's own `metadata` is not forwarded: it is not redacted; only its `language`, a
locale hint such as `de-DE`, is read, for detection).  Text Rasa would read as one of
coatcheck's own intents, or as an intent payload with JSON escapes, is refused (422
`imitates_gateway`, `rasa_intents.py`).  The replies go back as
Rasa's reply list, each item addressed `recipient_id: <sender>`.

Bot (`RasaRestBot`): the redacted text goes to a Rasa REST webhook (or any HTTP bot
speaking it) with `metadata.coatcheck = {"entities": [...], "conversation_id"}`; a secure
capture's result goes as the intent trigger `/coatcheck_capture{"type", "ok", "ref"}`.
The reply list comes back with coatcheck's directives riding as custom payloads
(`{"custom": {"coatcheck": {...}}}`), parsed here into `BotAnswer` (docs/contracts.md,
"Bot directives and confirmations").  Errors never quote the bot's body or the message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict

from coatcheck.middleware.adapters.rasa_intents import screen_intent
from coatcheck.middleware.gateway.errors import BadText, BotUnavailable
from coatcheck.middleware.gateway.ports import Pseudonym
from coatcheck.middleware.gateway.rules import ContextRule
from coatcheck.middleware.gateway.text import CleanStr, ConversationId, clean_field
from coatcheck.middleware.gateway.turns import (
    EMPTY,
    BotAnswer,
    BotReply,
    BotTurn,
    Button,
    InboundTurn,
)
from coatcheck.vault.errors import VaultError

__all__ = [
    "CAPTURE_INTENT",
    "CHANNEL",
    "RasaMessage",
    "RasaRestBot",
    "RasaRestChannel",
    "Reply",
    "bot_message",
    "parse_answer",
    "render_reply",
]

log = logging.getLogger(__name__)

CHANNEL = "rest"
CAPTURE_INTENT = "/coatcheck_capture"
_MAX_LANGUAGE = 35  # a BCP 47 tag this long is already unusual; longer is no hint
Reply = dict[str, Any]


# -- the channel side -----------------------------------------------------------------------


class RasaMessage(BaseModel):
    """Rasa REST channel message; extra keys are tolerated as Rasa's own channel does."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    sender: ConversationId
    message: CleanStr
    metadata: dict[str, Any] | None = None


def render_reply(recipient: str, reply: BotReply) -> Reply:
    """One item of Rasa's reply list."""
    out: Reply = {"recipient_id": recipient}
    if reply.text is not None:
        out["text"] = reply.text
    if reply.buttons:
        out["buttons"] = [
            {
                "title": b.title,
                **({"payload": b.payload} if b.payload is not None else {}),
                **b.extras,
            }
            for b in reply.buttons
        ]
    out.update(reply.extras)
    if reply.custom is not None:
        out["custom"] = reply.custom
    return out


_MAX_MESSAGE_ID = 255


def _language(request: RasaMessage) -> str | None:
    """The channel's `metadata.language` (Rasa's convention for a locale), when it is one."""
    hint = (request.metadata or {}).get("language")
    return hint if isinstance(hint, str) and 0 < len(hint) <= _MAX_LANGUAGE else None


def message_id(request: RasaMessage) -> str | None:
    """Rasa's `metadata.message_id` (the channel's id for the message, idempotent
    delivery), when it is a usable one: 1 to 255 printable characters; a number is taken
    as its decimal form.  Anything else is `BadText` (422) rather than silently ignored:
    a channel that sends ids expects them to protect it."""
    raw = (request.metadata or {}).get("message_id")
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not 0 < len(raw) <= _MAX_MESSAGE_ID:
        raise BadText("metadata.message_id", "must be a string of 1 to 255 characters")
    return clean_field(raw, "metadata.message_id")


class RasaRestChannel:
    """The webhook's request as a turn, the gateway's replies as Rasa's reply list.

    The edge of pseudonymity: the turn's conversation id (and rate key) is
    `pseudonym(sender)`, the real sender rides only as the value to vault (`SENDER_ID`);
    the replies go back addressed to the real sender, as the channel sent it.
    """

    name = CHANNEL

    def to_turn(self, request: RasaMessage, pseudonym: Pseudonym) -> InboundTurn:
        """The user's turn under the sender's pseudonym; text posing as coatcheck's own
        intents is refused here (`rasa_intents.screen_intent`), before anything is counted
        or stored."""
        screen_intent(request.message)
        turn = InboundTurn.user_says(
            pseudonym(request.sender),
            request.message,
            channel=self.name,
            language=_language(request),
            sender=request.sender,
        )
        found = message_id(request)
        return turn if found is None else replace(turn, message_id=found)

    def render(self, request: RasaMessage, replies: Sequence[BotReply]) -> list[Reply]:
        return [render_reply(request.sender, reply) for reply in replies]


# -- the bot side ---------------------------------------------------------------------------


def bot_message(turn: BotTurn) -> tuple[str, dict[str, Any]]:
    """The `message` and `metadata` Rasa gets for a turn."""
    cid = turn.conversation_id
    if turn.capture is not None:
        capture = turn.capture
        result = {"type": capture.entity_type, "ok": capture.ok, "ref": capture.ref}
        trigger = CAPTURE_INTENT + json.dumps(result, separators=(",", ":"))
        return trigger, {"coatcheck": {"conversation_id": cid}}
    part = turn.user_part()
    entities = [
        {"type": e.type, "ref": e.ref, "start": e.start, "end": e.end} for e in part.entities
    ]
    meta: dict[str, Any] = {"entities": entities, "conversation_id": cid}
    if turn.sender_ref is not None:
        meta["sender"] = turn.sender_ref
    return part.text, {"coatcheck": meta}


def _buttons(value: object) -> tuple[Button, ...] | None:
    """Rasa buttons as neutral ones; None when they are not the usual shape (kept raw)."""
    if not isinstance(value, list) or not value:
        return None
    buttons = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("title"), str):
            return None
        payload = item.get("payload")
        if payload is not None and not isinstance(payload, str):
            return None
        extras = {k: v for k, v in item.items() if k not in ("title", "payload")}
        buttons.append(Button(item["title"], payload, extras or EMPTY))
    return tuple(buttons)


def _reply(item: Mapping[str, Any]) -> BotReply:
    """A reply item as neutral fields; whatever has no neutral meaning rides in `extras`."""
    extras = {k: v for k, v in item.items() if k != "recipient_id"}
    text = extras.pop("text") if isinstance(extras.get("text"), str) else None
    buttons = _buttons(extras.get("buttons"))
    if buttons is not None:
        del extras["buttons"]
    custom = extras.pop("custom") if extras.get("custom") is not None else None
    return BotReply(text=text, buttons=buttons or (), custom=custom, extras=extras or EMPTY)


def _directive(item: Mapping[str, Any]) -> dict[str, Any] | None:
    custom = item.get("custom")
    if isinstance(custom, dict) and isinstance(custom.get("coatcheck"), dict):
        directive: dict[str, Any] = custom["coatcheck"]
        return directive
    return None


def _valid_end(directive: dict[str, Any]) -> bool:
    """`{"end": true}`: the bot ends the conversation; anything else is ignored (logged)."""
    if directive.get("end") is True and set(directive) == {"end"}:
        return True
    log.warning('bot directive ignored: end must be exactly {"end": true}')
    return False


def _valid_rule(directive: dict[str, Any]) -> ContextRule | None:
    try:
        return ContextRule.parse(directive)
    except (BadText, VaultError) as exc:
        log.warning("bot directive ignored: %s", type(exc).__name__)
        return None


def parse_answer(items: Sequence[Any]) -> BotAnswer:
    """Rasa's reply list as a `BotAnswer`: replies in order; the last valid `expect`
    directive; `end`; confirmation prompts as confirm replies.  Unknown directives and
    non-object items are dropped."""
    replies: list[BotReply] = []
    rule: ContextRule | None = None
    end = False
    for item in items:
        if not isinstance(item, dict):
            continue
        directive = _directive(item)
        if directive is None:
            replies.append(_reply(item))
        elif "end" in directive:
            end = _valid_end(directive) or end
        elif "expect" in directive:
            rule = _valid_rule(directive) or rule
        elif directive.get("confirm") is True and isinstance(directive.get("text"), str):
            replies.append(BotReply(text=directive["text"], confirm=True))
    return BotAnswer(tuple(replies), rule, end)


class RasaRestBot:
    """A Rasa REST channel endpoint reached through a shared aiohttp session (one per
    worker: it carried about five times httpx's throughput at 50 concurrent requests)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, timeout: float) -> None:
        self._session = session
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, turn: BotTurn) -> BotAnswer:
        message, metadata = bot_message(turn)
        payload = {"sender": turn.conversation_id, "message": message, "metadata": metadata}
        try:
            async with self._session.post(self._url, json=payload, timeout=self._timeout) as resp:
                if resp.status >= 400:
                    raise BotUnavailable("bot", f"the bot answered HTTP {resp.status}")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise BotUnavailable("bot") from None
        if not isinstance(body, list):
            raise BotUnavailable("bot", "the bot's answer is not a reply list")
        return parse_answer(body)
