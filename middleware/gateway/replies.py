"""The bot's answer on its way back: confirmations revealed for the channel leg only,
history in reference form, the rule for the next message stored, the end applied.

Reveals (vault reads) happen first; then one short Core transaction stores every reply
line and the new rule, if any, before the channel gets anything back.  An `end` directive
ends the conversation last (after the replies are stored and revealed), so the user still
gets the goodbye; a rule set in the same answer is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from coatcheck.grammar import ParsedReference, replace_references
from coatcheck.middleware.gateway.idempotency import replies_from_json, replies_to_json
from coatcheck.middleware.gateway.lifecycle import EndReason, Lifecycle
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.middleware.gateway.store.db import Clock
from coatcheck.middleware.gateway.turns import BotAnswer, BotReply
from coatcheck.vault import Grant, Vault
from coatcheck.vault.errors import (
    ConversationShredded,
    GrantRefused,
    UnknownReference,
    ValueExpired,
)

__all__ = ["Replies"]


class Replies:
    """Applies a `BotAnswer` to a conversation; `confirm_types` are revealed in any text."""

    def __init__(
        self,
        store: GatewayStore,
        vault: Vault,
        lifecycle: Lifecycle,
        *,
        confirm_types: frozenset[str],
        clock: Clock,
    ) -> None:
        self._store = store
        self._vault = vault
        self._lifecycle = lifecycle
        self._confirm_types = confirm_types
        self._clock = clock

    def apply(
        self, conversation_id: str, answer: BotAnswer, digest: str | None = None
    ) -> list[BotReply]:
        """The replies for the channel (values revealed where allowed), after storing the
        reference-form lines and the next rule (and, for a message that carried an id
        with digest `digest`, the replies a repeat of it gets: same transaction)."""
        channel = self._render(conversation_id, answer.replies)
        lines = [reply.text for reply in answer.replies if reply.text is not None]
        rule = None if answer.end else answer.rule
        if lines or rule is not None or digest is not None:
            with self._store.transaction() as tx:
                if lines or rule is not None:
                    self._store.messages.record_replies(tx, conversation_id, lines, rule)
                if digest is not None:
                    self._store.message_ids.complete(tx, digest, replies_to_json(answer.replies))
        if answer.end:
            self._lifecycle.end(conversation_id, "bot", EndReason.BOT)
        return channel

    def replay(self, conversation_id: str, stored: str) -> list[BotReply]:
        """A repeated message's replies, rendered again from their stored reference form
        (nothing stored, nothing ended, no bot call)."""
        return self._render(conversation_id, replies_from_json(stored))

    def remember(self, digest: str, replies: list[BotReply]) -> None:
        """Store the replies a repeat of a message gets (answered by the gateway itself)."""
        with self._store.transaction() as tx:
            self._store.message_ids.complete(tx, digest, replies_to_json(replies))

    def _render(self, conversation_id: str, replies: Sequence[BotReply]) -> list[BotReply]:
        channel: list[BotReply] = []
        for reply in replies:
            if reply.text is None:
                channel.append(reply)
                continue
            if reply.confirm:  # a confirmation prompt: every reference of this conversation
                channel.append(BotReply(text=self._reveal(conversation_id, reply.text)))
            elif self._confirm_types:
                text = self._reveal(conversation_id, reply.text, self._confirm_types)
                channel.append(replace(reply, text=text))
            else:
                channel.append(reply)
        return channel

    def _reveal(self, conversation_id: str, text: str, types: frozenset[str] | None = None) -> str:
        """`text` with this conversation's references (of `types`, or all) replaced by
        their values; anything that does not resolve stays a reference."""

        def value(ref: ParsedReference) -> str:
            if types is not None and ref.entity_type not in types:
                return text[ref.start : ref.end]
            grant = Grant(
                conversation_id=conversation_id,
                entity_types=frozenset({ref.entity_type}),
                purpose="confirmation",
                caller="gateway",
                expires_at=self._clock() + 30,
            )
            try:
                info = self._vault.lookup(conversation_id, ref.ref_id)
                if info.entity_type != ref.entity_type:
                    return text[ref.start : ref.end]
                return self._vault.reveal(conversation_id, ref.ref_id, grant)
            except (UnknownReference, ConversationShredded, ValueExpired, GrantRefused):
                return text[ref.start : ref.end]

        return replace_references(text, value)
