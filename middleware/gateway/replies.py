"""The bot's answer on its way back: what the bot wrote filtered, confirmations revealed
for the channel leg only, history in reference form, the rule for the next message stored,
the end applied.

Every string of the answer passes the detector first (`reply_filter.py`): values the bot
wrote are vaulted in the conversation, in the same transaction that stores the reply lines
and the new rule (one commit, as on the way in), and history keeps their references.  The
channel gets the reply as the bot wrote it, or, with `replies.mask_channel`, the filtered
form too.  Reveals (vault reads) happen on the channel's copy only, after filtering, so a
revealed confirmation value is never stored.  An `end` directive ends the conversation last
(after the replies are stored and revealed), so the user still gets the goodbye; a rule
set in the same answer is dropped.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.exc import SQLAlchemyError

from coatcheck.grammar import ParsedReference, replace_references
from coatcheck.middleware.gateway.errors import StorageUnavailable
from coatcheck.middleware.gateway.idempotency import replies_from_json, replies_to_json
from coatcheck.middleware.gateway.lifecycle import EndReason, Lifecycle
from coatcheck.middleware.gateway.recent import RecentValues
from coatcheck.middleware.gateway.reply_filter import ReplyFilter, map_reply
from coatcheck.middleware.gateway.rules import ContextRule
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.middleware.gateway.store.db import Clock
from coatcheck.middleware.gateway.turns import BotAnswer, BotReply
from coatcheck.vault import Grant, Transaction, Vault
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
        reply_filter: ReplyFilter,
        recent: RecentValues,
        confirm_types: frozenset[str],
        mask_channel: bool = False,
        clock: Clock,
    ) -> None:
        self._store = store
        self._vault = vault
        self._lifecycle = lifecycle
        self._filter = reply_filter
        self._recent = recent
        self._confirm_types = confirm_types
        self._mask_channel = mask_channel
        self._clock = clock

    def apply(
        self, conversation_id: str, answer: BotAnswer, digest: str | None = None
    ) -> list[BotReply]:
        """The replies for the channel (values revealed where allowed), after vaulting what
        the bot wrote and storing the reference-form lines and the next rule (and, for a
        message that carried an id with digest `digest`, the reference-form replies a
        repeat of it gets: same transaction)."""
        rule = None if answer.end else answer.rule
        filtered = self._store_filtered(conversation_id, answer.replies, rule, digest)
        shown = filtered if self._mask_channel else answer.replies
        channel = [self._for_channel(conversation_id, reply) for reply in shown]
        if answer.end:
            self._lifecycle.end(conversation_id, "bot", EndReason.BOT)
        return channel

    def replay(self, conversation_id: str, stored: str) -> list[BotReply]:
        """A repeated message's replies, rendered again from their stored reference form
        (nothing stored, nothing ended, no bot call; values the bot wrote stay references)."""
        return [self._for_channel(conversation_id, r) for r in replies_from_json(stored)]

    def remember(self, digest: str, replies: list[BotReply]) -> None:
        """Store the replies a repeat of a message gets (answered by the gateway itself)."""
        with self._store.transaction() as tx:
            self._store.message_ids.complete(tx, digest, replies_to_json(replies))

    def retry_prompt(self, conversation_id: str, text: str) -> BotReply:
        """The channel's copy of a secure capture's retry text (stored filtered, like every
        string the bot writes): confirm types revealed, other values stay references, as
        in a repeat's replay."""
        return self._for_channel(conversation_id, BotReply(text=text))

    def _store_filtered(
        self,
        conversation_id: str,
        replies: tuple[BotReply, ...],
        rule: ContextRule | None,
        digest: str | None,
    ) -> tuple[BotReply, ...]:
        """Vault the values the bot wrote (in its replies and a secure rule's retry text)
        and store the filtered lines and rule (one transaction); the replies in reference
        form."""
        retry = rule is not None and rule.secure
        texts = (
            (*replies, BotReply(text=rule.retry_text)) if rule is not None and retry else replies
        )
        found = self._filter.find(texts)
        if not found.spans:
            self._record(None, conversation_id, replies, rule, digest)
            return replies
        for value in found.values():
            self._recent.add(value)  # the log filter catches them from now on
        out: list[tuple[BotReply, ...]] = [replies]

        def then(tx: Transaction, refs: list[str]) -> None:
            swap = self._filter.renderer(found, refs)  # refs may differ on a retry
            out[0] = tuple(map_reply(reply, swap) for reply in replies)
            kept = rule
            if rule is not None and retry:
                kept = replace(rule, retry_text=swap(rule.retry_text))
            self._record(tx, conversation_id, out[0], kept, digest)

        try:
            self._vault.tokenize_many(conversation_id, found.items(), then=then)
        except SQLAlchemyError:
            raise StorageUnavailable("database") from None
        return out[0]

    def _record(
        self,
        tx: Transaction | None,
        conversation_id: str,
        replies: tuple[BotReply, ...],
        rule: ContextRule | None,
        digest: str | None,
    ) -> None:
        """The reply lines (text, reference form), the rule and a message id's stored
        replies (reference form), in `tx` or a new one."""
        lines = [reply.text for reply in replies if reply.text is not None]
        if not lines and rule is None and digest is None:
            return
        if tx is not None:
            self._record_in(tx, conversation_id, replies, lines, rule, digest)
            return
        with self._store.transaction() as own:
            self._record_in(own, conversation_id, replies, lines, rule, digest)

    def _record_in(
        self,
        tx: Transaction,
        conversation_id: str,
        replies: tuple[BotReply, ...],
        lines: list[str],
        rule: ContextRule | None,
        digest: str | None,
    ) -> None:
        if lines or rule is not None:
            self._store.messages.record_replies(tx, conversation_id, lines, rule)
        if digest is not None:
            self._store.message_ids.complete(tx, digest, replies_to_json(replies))

    def _for_channel(self, conversation_id: str, reply: BotReply) -> BotReply:
        """The channel's copy: confirmation prompts and `confirm` types revealed."""
        if reply.text is None:
            return reply
        if reply.confirm:  # a confirmation prompt: every reference of this conversation
            return BotReply(text=self._reveal(conversation_id, reply.text))
        if self._confirm_types:
            return replace(
                reply, text=self._reveal(conversation_id, reply.text, self._confirm_types)
            )
        return reply

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
