"""Idempotent delivery: a channel's message id, and the replies a repeat gets back.

A channel that retries (a dropped connection, a worker killed mid-request) sends the same
message id again; the gateway answers a repeat from what it stored the first time, without
calling the bot again, or, when the first attempt's outcome is unknown, refuses it (409):
at most once.  What is stored is a keyed digest of the id (the client's id never) and the
bot's replies in reference form, exactly as history keeps them; a repeat is rendered from
that form again (a confirmation reveals through the vault again, or stays a reference).
docs/service.md, "Idempotent delivery".
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from coatcheck.middleware.gateway.turns import BotReply, Button

__all__ = ["MessageDigests", "replies_from_json", "replies_to_json"]


class MessageDigests:
    """HMAC-SHA256 of (channel, conversation, message id) under a key of the worker's
    (derived from the vault's grant key: the same on every worker of one database)."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"coatcheck idempotency v1", hashlib.sha256).digest()

    def of(self, channel: str, conversation_id: str, message_id: str) -> str:
        parts = "\x1f".join((channel, conversation_id, message_id))
        data = parts.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()


def _button(button: Button) -> dict[str, Any]:
    return {"title": button.title, "payload": button.payload, "extras": dict(button.extras)}


def replies_to_json(replies: Sequence[BotReply]) -> str:
    """The bot's replies as stored for a repeat: reference-form text (never revealed)."""
    items = [
        {
            "text": r.text,
            "buttons": [_button(b) for b in r.buttons],
            "custom": r.custom,
            "extras": dict(r.extras),
            "confirm": r.confirm,
        }
        for r in replies
    ]
    return json.dumps(items, ensure_ascii=False, separators=(",", ":"))


def replies_from_json(stored: str) -> list[BotReply]:
    """The stored replies back as `BotReply` items (still in reference form)."""
    return [
        BotReply(
            text=item["text"],
            buttons=tuple(
                Button(b["title"], b["payload"], b.get("extras") or {}) for b in item["buttons"]
            ),
            custom=item["custom"],
            extras=item["extras"],
            confirm=bool(item["confirm"]),
        )
        for item in json.loads(stored)
    ]
