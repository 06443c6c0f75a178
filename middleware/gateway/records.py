"""What staff and viewers read about conversations: status, listings, the transcript.

Reads only, on the lock-free reader; no value is ever read here (history is redacted).
"""

from __future__ import annotations

import json
from typing import Any

from coatcheck.middleware.gateway.errors import BadText
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.vault import Vault

__all__ = ["STATUSES", "ConversationRecords"]

STATUSES = ("active", "ended", "masked", "retained", "shredded")
_MAX_LIMIT = 1000


class ConversationRecords:
    """Status, lists and history of the conversations the gateway recorded."""

    def __init__(self, store: GatewayStore, vault: Vault) -> None:
        self._store = store
        self._vault = vault

    def status(self, conversation_id: str) -> str:
        """`active` | `ended` | `masked` | `retained` | `shredded` | `unknown`.

        `ended`: ended with nothing ever vaulted; `masked` / `retained`: ended, values kept
        under that policy; `shredded`: ended, nothing kept.  A conversation the gateway never
        recorded (only `/v1/redact`) is answered from the vault.
        """
        with self._store.db.reading() as tx:
            status = self._store.conversations.status(tx, conversation_id)
            if status is not None:
                return status
            holdings = self._vault.holdings(conversation_id, tx=tx)
        return holdings.status if holdings.epochs else "unknown"

    def list_conversations(
        self,
        *,
        search: str | None = None,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Conversations the gateway recorded, most recently active first.

        `search`: case-insensitive substring of the conversation id; `status`: one of
        `STATUSES`; `since` / `until` (epoch seconds): conversations active at some time in
        [since, until), i.e. last activity >= since and started before until.  Each item:
        `{"conversation_id", "status", "started_at", "last_activity", "ended_at"}`.
        """
        if status is not None and status not in STATUSES:
            raise BadText("status", f"must be one of {', '.join(STATUSES)}")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= _MAX_LIMIT:
            raise BadText("limit", f"must be an integer from 1 to {_MAX_LIMIT}")
        return self._store.conversations.list_conversations(
            search=search, status=status, since=since, until=until, limit=limit
        )

    def by_sender(self, sender: str) -> str:
        """The conversation id of a real sender id (staff search a person by the id their
        channel uses): its keyed pseudonym, the same HMAC the channel edge applies."""
        return self._vault.pseudonym(sender)

    def history(self, conversation_id: str) -> list[dict[str, Any]]:
        """The redacted transcript: `{"direction", "text", "at", "entities"}` per line."""
        return self._store.messages.history(conversation_id)

    def latest_capture(self, conversation_id: str) -> dict[str, Any] | None:
        """`{"type", "ok", "ref", "at"}` while the conversation's latest user message is a
        secure-capture result the gateway sent the bot itself; None otherwise (an unknown
        conversation too: nothing to learn from a difference).  No value is read: a type,
        a boolean, a reference the bot already holds, a time."""
        record = self._store.conversations.latest_capture(conversation_id)
        if record is None:
            return None
        found: dict[str, Any] = json.loads(record)
        return found
