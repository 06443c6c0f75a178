"""One turn of a conversation through the gateway: limits, redact, history, bot, replies.

Order matters for "fail closed": the values are vaulted and the redacted line is in
history (committed) before anything is sent to the bot; if storing fails the caller gets
503 and the bot sees nothing.  The pending context rule is read first and consumed only
in the same transaction that records the message, so a failed message loses no rule.

Protocol-free: the channel adapter made the `InboundTurn`, the bot adapter takes the
`BotTurn` and answers a `BotAnswer` (its directives parsed), the channel adapter renders
the `BotReply` list this returns.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from anyio import CapacityLimiter, to_thread
from sqlalchemy.exc import SQLAlchemyError

from coatcheck.grammar import format_reference, parse_references
from coatcheck.middleware.detect import Context, UnknownTypeError
from coatcheck.middleware.gateway.checks import Checks
from coatcheck.middleware.gateway.errors import (
    BadText,
    DeliveryUnknown,
    StorageUnavailable,
    TooManyValues,
)
from coatcheck.middleware.gateway.idempotency import MessageDigests
from coatcheck.middleware.gateway.ports import BotAdapter
from coatcheck.middleware.gateway.ratelimit import RateLimit, ValueCap, key_counter
from coatcheck.middleware.gateway.recent import RecentValues
from coatcheck.middleware.gateway.replies import Replies
from coatcheck.middleware.gateway.rules import ContextRule
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.middleware.gateway.store.db import Clock
from coatcheck.middleware.gateway.turns import (
    BotReply,
    BotTurn,
    CaptureResult,
    EntityRef,
    InboundTurn,
    Message,
    TextPart,
)
from coatcheck.middleware.pipeline import Redactor, RedactResult
from coatcheck.vault import Transaction, Vault

__all__ = ["SENDER_ID", "ConversationService", "TurnLimits"]

log = logging.getLogger(__name__)

SENDER_ID = "SENDER_ID"  # the type a channel's real sender id is vaulted as


@dataclass(frozen=True, slots=True)
class TurnLimits:
    """The per-turn limits: message length (422), messages per rate key and per API key
    (429), values per conversation (429), and how long a message id is remembered."""

    max_message_chars: int
    rate: RateLimit
    key_rate: RateLimit | None = None
    cap: ValueCap | None = None
    id_window: float = 86400.0


@dataclass(frozen=True, slots=True)
class _Inbound:
    """What the pre-bot half decided: forward `turn` to the bot, or `answer` the user now."""

    turn: BotTurn | None = None
    answer: list[BotReply] | None = None
    digest: str | None = None  # the message id's, when the turn carried one


def _entities_json(result: RedactResult) -> str | None:
    """What history keeps of a line's entities: reference, type and the rule that fired."""
    if not result.entities:
        return None
    found = [{"ref": e.ref, "type": e.type, "rule": e.rule} for e in result.entities]
    return json.dumps(found, separators=(",", ":"))


def _user_part(result: RedactResult) -> TextPart:
    """The redacted text for the bot, with its references' offsets into that text."""
    refs = tuple(
        EntityRef(ref.entity_type, ref.reference, ref.start, ref.end)
        for ref in parse_references(result.text)
    )
    return TextPart(result.text, refs)


class ConversationService:
    """Turns in, replies out; collaborators injected (the bot adapter, the clock...)."""

    def __init__(
        self,
        *,
        store: GatewayStore,
        redactor: Redactor,
        vault: Vault,
        bot: BotAdapter,
        checks: Checks,
        replies: Replies,
        recent: RecentValues,
        limits: TurnLimits,
        limiter: CapacityLimiter,
        clock: Clock,
        digests: MessageDigests | None = None,
    ) -> None:
        self._store = store
        self._ids = store.message_ids
        self._digests = digests
        self._checks = checks
        self._messages = store.messages
        self._redactor = redactor
        self._vault = vault
        self._bot = bot
        self._replies = replies
        self._recent = recent
        self._limits = limits
        self._limiter = limiter
        self._clock = clock

    def pseudonym(self, sender: str) -> str:
        """The keyed pseudonym a channel adapter keys a sender's turns by (`Vault.pseudonym`).

        The real id is remembered for the log filter (whole, never its pieces), so an
        access line that carries it (a channel ending a conversation by its sender id)
        shows `[REDACTED]`."""
        self._recent.add(sender, words=False)
        return self._vault.pseudonym(sender)

    async def handle(self, turn: InboundTurn) -> list[BotReply]:
        """The replies for one user turn (what the channel adapter renders).

        Two thread hops: everything before the bot (read state, vault, record) in one,
        the replies in the other; the bot round-trip stays on the event loop.  Both run
        under the worker's database limiter (one thread on SQLite), so concurrent messages
        queue in Python instead of in SQLite's sleeping busy handler.
        """
        text = turn.user_text()
        limit = self._limits.max_message_chars
        if len(text) > limit:
            raise BadText("message", f"longer than {limit} characters")
        inbound = await to_thread.run_sync(self._inbound, turn, text, limiter=self._limiter)
        if inbound.answer is not None:
            return inbound.answer
        assert inbound.turn is not None
        answer = await self._bot.send(inbound.turn)
        return await to_thread.run_sync(
            self._replies.apply, turn.conversation_id, answer, inbound.digest, limiter=self._limiter
        )

    def _digest(self, turn: InboundTurn) -> str | None:
        if turn.message_id is None or self._digests is None:
            return None
        return self._digests.of(turn.channel, turn.conversation_id, turn.message_id)

    def _repeat(self, turn: InboundTurn, digest: str) -> _Inbound | None:
        """A message id seen within the window: its stored replies (`done`), or 409 when
        the first attempt's outcome is unknown; None for a new id."""
        seen = self._ids.seen(digest, self._clock() - self._limits.id_window)
        if seen is None:
            return None
        state, replies = seen
        if state != "done" or replies is None:
            raise DeliveryUnknown("message_id")
        return _Inbound(answer=self._replies.replay(turn.conversation_id, replies))

    def _key_limit(self, turn: InboundTurn) -> tuple[str, RateLimit] | None:
        rate = self._limits.key_rate
        if rate is None or turn.client is None:
            return None
        return key_counter("messages", turn.client), rate

    def _inbound(self, turn: InboundTurn, text: str) -> _Inbound:
        """Read the pending rule and rate counts (no lock), vault, then commit the record.

        A repeated message id is answered from its stored replies (or refused) before
        anything else.  The rate pre-checks refuse a sender or API key already over its
        limit before anything is vaulted; the authoritative counts are bumped in the same
        transaction as the history line (and the message id's claim).
        """
        cid = turn.conversation_id
        digest = self._digest(turn)
        if digest is not None:
            repeat = self._repeat(turn, digest)
            if repeat is not None:
                return repeat
        key = self._key_limit(turn)
        rule, count, key_count = self._messages.read_state(
            cid, turn.rate_key, self._limits.rate, key
        )
        now = self._clock()
        self._limits.rate.precheck(count, now)
        if key is not None:
            key[1].precheck(key_count, now)
        if rule is not None and rule.secure:
            return self._secure_capture(turn, text, rule, digest)
        context = None if rule is None else rule.context()
        consume = rule is not None

        def record(tx: Transaction | None, result: RedactResult) -> None:
            # Inside the vault's tokenize transaction: values, rate count, state and history
            # line commit together (one durable write before the bot, not two).
            if tx is None:
                self._record_inbound(turn, result, consume, digest)
            else:
                self._record_in(tx, turn, result, consume, digest, vaulted=True)

        language = turn.language  # the channel's hint: numbering plans, NER model
        # The real sender id is vaulted with the message (same call, same transaction):
        # the same value gives the same reference, so this costs one deduplicated row.
        extra = () if turn.sender is None else ((SENDER_ID, turn.sender),)
        try:
            try:
                result = self._redactor.redact(
                    cid, text, context, record=record, language=language, extra=extra
                )
            except UnknownTypeError:  # a stored rule for a type this config lacks: drop it
                log.warning("context rule ignored: unknown entity type")
                result = self._redactor.redact(
                    cid, text, None, record=record, language=language, extra=extra
                )
        except SQLAlchemyError:
            raise StorageUnavailable("database") from None
        self._remember(text, result)
        if turn.sender is not None:
            self._recent.add(turn.sender, words=False)
        sender_ref = (
            format_reference(SENDER_ID, result.extra_refs[0]) if result.extra_refs else None
        )
        message = Message("user", (_user_part(result),))
        return _Inbound(BotTurn(cid, (message,), sender_ref=sender_ref), digest=digest)

    def _record_inbound(
        self,
        turn: InboundTurn,
        result: RedactResult,
        consume: bool,
        digest: str | None,
        capture: CaptureResult | None = None,
    ) -> None:
        """One transaction: count the message, consume the rule it used, store its line
        (and, for a secure capture, the gateway's record of the result it sends)."""
        with self._store.transaction() as tx:
            self._record_in(tx, turn, result, consume, digest, capture=capture)

    def _record_in(
        self,
        tx: Transaction,
        turn: InboundTurn,
        result: RedactResult,
        consume: bool,
        digest: str | None,
        *,
        vaulted: bool = False,
        capture: CaptureResult | None = None,
    ) -> None:
        """The message's rows in `tx`; raising rolls back the values vaulted with them."""
        self._messages.record_inbound(
            tx,
            turn.conversation_id,
            turn.rate_key,
            result.text,
            self._limits.rate,
            consume,
            _entities_json(result),
            None if capture is None else self._capture_json(capture),
        )
        self._claim(tx, turn, digest)
        cap = self._limits.cap
        if vaulted and cap is not None:
            held = self._store.conversations.live_values(tx, cap.tenant, turn.conversation_id)
            if held > cap.limit:
                raise TooManyValues("conversation_id")
        key = self._key_limit(turn)
        if key is not None:  # last: every message of the key updates this one row, so its
            self._messages.bump(tx, (key,))  # lock is held only until the commit

    def _claim(self, tx: Transaction, turn: InboundTurn, digest: str | None) -> None:
        """Claim the message id with the message's own rows: of two attempts racing, the
        second finds it taken and rolls back everything it vaulted (409)."""
        if digest is None:
            return
        since = self._clock() - self._limits.id_window
        if not self._ids.claim(tx, digest, turn.conversation_id, since):
            raise DeliveryUnknown("message_id")

    def _capture_json(self, capture: CaptureResult) -> str:
        """The record `GET /v1/conversations/{id}/capture` answers: type, ok, the full
        reference (as in the trigger the bot gets), when."""
        record = {"type": capture.entity_type, "ok": capture.ok, "ref": capture.ref}
        return json.dumps({**record, "at": self._clock()}, separators=(",", ":"))

    def _remember(self, text: str, result: RedactResult) -> None:
        """Feed the log filter the blind forms of what was just vaulted (offsets index
        the input)."""
        for entity in result.entities:
            self._recent.add(text[entity.start : entity.end])

    def _secure_capture(
        self, turn: InboundTurn, text: str, rule: ContextRule, digest: str | None
    ) -> _Inbound:
        """Vault the whole message; the bot gets only the check result (and the reference)."""
        cid = turn.conversation_id
        result = self._redactor.redact(cid, text, Context(rule.expect, "whole"))
        self._remember(text, result)
        refs = parse_references(result.text)
        ok = bool(refs)
        if ok and rule.check is not None:
            predicate = self._checks.capture_predicate(rule.check, rule.expect)
            if predicate is None:
                log.warning("secure capture failed: its check is not declared for the type")
                ok = False
            else:
                purpose = f"secure_capture:{rule.check}"
                ok = self._vault.check(cid, refs[0].ref_id, predicate, "gateway", purpose)
        if not ok and rule.retries > 0:
            self._messages.record_retry(
                cid,
                turn.rate_key,
                self._limits.rate,
                result.text,
                _entities_json(result),
                rule.retried(),
                then=lambda tx: self._claim(tx, turn, digest),
            )
            stored = [BotReply(text=rule.retry_text)]  # filtered when the bot set the rule
            if digest is not None:  # a repeat gets the same retry prompt, not a new attempt
                self._replies.remember(digest, stored)
            return _Inbound(answer=[self._replies.retry_prompt(cid, rule.retry_text)])
        capture = CaptureResult(rule.expect, ok, refs[0].reference if ok else None)
        self._record_inbound(turn, result, True, digest, capture)
        return _Inbound(BotTurn(cid, capture=capture), digest=digest)
