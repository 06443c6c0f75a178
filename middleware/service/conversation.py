"""One channel message through the gateway: limits, redact, history, bot, replies.

Order matters for "fail closed": the values are vaulted and the redacted line is in
history (committed) before anything is sent to the bot; if storing fails the caller gets
503 and the bot sees nothing.  The pending context rule is read first and consumed only
in the same transaction that records the message, so a failed message loses no rule.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from anyio import to_thread
from sqlalchemy.exc import SQLAlchemyError

from coatcheck.middleware.detect import Context, UnknownTypeError
from coatcheck.middleware.pipeline import RedactResult
from coatcheck.middleware.render import (
    REFERENCE_RE,
    ParsedReference,
    parse_references,
    replace_references,
)
from coatcheck.middleware.service.botclient import Reply
from coatcheck.middleware.service.errors import BadText, StorageUnavailable
from coatcheck.middleware.service.lifecycle import EndReason, end_conversation
from coatcheck.middleware.service.state import Gateway
from coatcheck.middleware.service.store import (
    append_history,
    check_rate,
    guarded,
    guarded_tx,
    read_state,
    record_message,
    record_replies,
    refuse_over_limit,
    set_context,
)
from coatcheck.vault import Grant, Transaction, predicate_from_dict
from coatcheck.vault.errors import (
    ConversationShredded,
    GrantRefused,
    UnknownReference,
    ValueExpired,
    VaultError,
)

__all__ = ["handle_message", "validate_rule"]

log = logging.getLogger(__name__)

CAPTURE_INTENT = "/coatcheck_capture"


def validate_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A context rule checked enough to be stored (secure captures need a valid check)."""
    expect = rule.get("expect")
    capture = rule.get("capture")
    if not isinstance(expect, str) or not REFERENCE_RE.fullmatch(f"CC_{expect}_0000000000"):
        raise BadText("expect", "must be an entity type name ([A-Z][A-Z0-9_]*)")
    if capture not in (None, "pattern", "whole", "secure"):
        raise BadText("capture", "must be pattern, whole or secure")
    clean: dict[str, Any] = {"expect": expect, "capture": capture}
    if capture == "secure":
        check = rule.get("check")
        if check is not None:
            predicate_from_dict(check)  # raises InvalidPredicate naming the field
            if check.get("op") == "equals":  # the rule is stored in clear: no values in it
                raise BadText("check.op", "equals cannot be used in a stored rule")
        retries = rule.get("retries", 0)
        if not isinstance(retries, int) or not 0 <= retries <= 10:
            raise BadText("retries", "must be an integer from 0 to 10")
        retry_text = rule.get("retry_text") or "That did not work, please try again."
        clean.update(check=check, retries=retries, retry_text=str(retry_text))
    return clean


@dataclass(frozen=True)
class _Inbound:
    """What the pre-bot half decided: forward `text` to the bot, or `answer` the user now."""

    text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    answer: list[Reply] | None = None


async def handle_message(
    gw: Gateway, sender: str, message: str, channel_metadata: dict[str, Any] | None
) -> list[Reply]:
    """The Rasa reply list for one user message (what the channel receives).

    Two thread hops: everything before the bot (read state, vault, record) in one, the
    replies in the other; the bot round-trip stays on the event loop.  Both run under the
    worker's database limiter (one thread on SQLite), so concurrent messages queue in
    Python instead of in SQLite's sleeping busy handler.
    """
    if len(message) > gw.settings.max_message_chars:
        raise BadText("message", f"longer than {gw.settings.max_message_chars} characters")
    inbound = await to_thread.run_sync(_inbound, gw, sender, message, limiter=gw.db_limiter)
    if inbound.answer is not None:
        return inbound.answer
    replies = await gw.bot.send(sender, inbound.text, inbound.metadata)
    return await to_thread.run_sync(process_replies, gw, sender, replies, limiter=gw.db_limiter)


def _inbound(gw: Gateway, sender: str, message: str) -> _Inbound:
    """Read the pending rule and rate count (no lock), vault, then commit the record.

    The rate pre-check refuses a sender already over the limit before anything is vaulted;
    the authoritative count is bumped in the same transaction as the history line.
    """
    s = gw.settings
    rule, count = read_state(gw.reader, sender, s.rate_window_seconds, gw.clock)
    refuse_over_limit(count, s.rate_limit, s.rate_window_seconds, gw.clock)
    if rule is not None and rule.get("capture") == "secure":
        return _secure_capture(gw, sender, message, rule)
    context = None if rule is None else Context(rule["expect"], rule.get("capture"))
    consume = rule is not None

    def record(tx: Transaction | None, result: RedactResult) -> None:
        # Inside the vault's tokenize transaction: values, rate count, state and history
        # line commit together (one durable write before the bot, not two).
        if tx is None:
            _record_inbound(gw, sender, result, consume)
        else:
            _record_in(gw, tx, sender, result, consume)

    try:
        try:
            result = gw.redactor.redact(sender, message, context, record=record)
        except UnknownTypeError:  # a stored rule for a type this config lacks: drop it, not 500
            log.warning("context rule ignored: unknown entity type")
            result = gw.redactor.redact(sender, message, None, record=record)
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None
    _remember(gw, message, result)
    return _Inbound(result.text, _bot_metadata(sender, result))


def _record_inbound(gw: Gateway, sender: str, result: RedactResult, consume: bool) -> None:
    """One transaction: count the message, consume the rule it used, store its line."""
    with guarded_tx(gw.writer) as tx:
        _record_in(gw, tx, sender, result, consume)


def _record_in(
    gw: Gateway, tx: Transaction, sender: str, result: RedactResult, consume: bool
) -> None:
    limits = (gw.settings.rate_limit, gw.settings.rate_window_seconds)
    record_message(tx, sender, result.text, limits, consume, gw.clock, _entities_json(result))


def _entities_json(result: RedactResult) -> str | None:
    """What history keeps of a line's entities: reference, type and the rule that fired."""
    if not result.entities:
        return None
    found = [{"ref": e.ref, "type": e.type, "rule": e.rule} for e in result.entities]
    return json.dumps(found, separators=(",", ":"))


def _remember(gw: Gateway, message: str, result: RedactResult) -> None:
    """Feed the log filter the blind forms of what was just vaulted (offsets index input)."""
    for entity in result.entities:
        gw.recent.add(message[entity.start : entity.end])


def _bot_metadata(sender: str, result: RedactResult) -> dict[str, Any]:
    entities = [
        {"type": ref.entity_type, "ref": ref.reference, "start": ref.start, "end": ref.end}
        for ref in parse_references(result.text)
    ]
    return {"coatcheck": {"entities": entities, "conversation_id": sender}}


def _secure_capture(gw: Gateway, sender: str, message: str, rule: dict[str, Any]) -> _Inbound:
    """Vault the whole message; the bot gets only the check result (and the reference)."""
    result = gw.redactor.redact(sender, message, Context(rule["expect"], "whole"))
    _remember(gw, message, result)
    refs = parse_references(result.text)
    ok = bool(refs)
    if ok and rule.get("check") is not None:
        ok = _check(gw, sender, refs[0], rule["check"])
    if not ok and rule.get("retries", 0) > 0:
        retry = {**rule, "retries": rule["retries"] - 1}
        _record_retry(gw, sender, result, retry)
        return _Inbound(answer=[{"recipient_id": sender, "text": rule["retry_text"]}])
    _record_inbound(gw, sender, result, True)
    payload = {"type": rule["expect"], "ok": ok, "ref": refs[0].reference if ok else None}
    trigger = CAPTURE_INTENT + json.dumps(payload, separators=(",", ":"))
    return _Inbound(trigger, {"coatcheck": {"conversation_id": sender}})


def _check(gw: Gateway, sender: str, ref: ParsedReference, check: dict[str, Any]) -> bool:
    predicate = predicate_from_dict(check)
    return gw.vault.check(sender, ref.ref_id, predicate, "gateway", "secure_capture")


def _record_retry(gw: Gateway, sender: str, result: RedactResult, retry: dict[str, Any]) -> None:
    s = gw.settings
    with guarded(gw.sessions) as session:
        check_rate(session, sender, s.rate_limit, s.rate_window_seconds, gw.clock)
        set_context(session, sender, retry, gw.clock, touch=True)
        append_history(session, sender, "in", result.text, gw.clock, _entities_json(result))
        append_history(session, sender, "out", retry["retry_text"], gw.clock)


def process_replies(gw: Gateway, sender: str, replies: list[Reply]) -> list[Reply]:
    """Apply directives, store reference-form history, reveal confirmations for the channel.

    Reveals (vault reads) happen first; then one short Core transaction stores every
    reply line and the new rule, if any, before the channel gets anything back.  An `end`
    directive ends the conversation last (after the replies are stored and revealed), so
    the user still gets the goodbye; a rule set in the same reply list is dropped.
    """
    confirm_types = gw.detect_config.confirm_types()
    channel: list[Reply] = []
    lines: list[str] = []
    rule: dict[str, Any] | None = None
    end = False
    for item in replies:
        directive = _directive(item)
        if directive is not None:
            if "end" in directive:
                end = _valid_end(directive) or end
            elif "expect" in directive:
                rule = _valid_directive(directive) or rule
            elif directive.get("confirm") is True and isinstance(directive.get("text"), str):
                lines.append(directive["text"])
                channel.append({"recipient_id": sender, "text": _reveal(gw, sender, lines[-1])})
            continue
        out = {**item, "recipient_id": sender}
        if isinstance(item.get("text"), str):
            lines.append(item["text"])
            if confirm_types:
                out["text"] = _reveal(gw, sender, item["text"], confirm_types)
        channel.append(out)
    if end:
        rule = None
    if lines or rule is not None:
        with guarded_tx(gw.writer) as tx:
            record_replies(tx, sender, lines, rule, gw.clock)
    if end:
        end_conversation(gw, sender, "bot", EndReason.BOT)
    return channel


def _directive(item: Reply) -> dict[str, Any] | None:
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


def _valid_directive(directive: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return validate_rule(directive)
    except (BadText, VaultError) as exc:
        log.warning("bot directive ignored: %s", type(exc).__name__)
        return None


def _reveal(gw: Gateway, sender: str, text: str, types: frozenset[str] | None = None) -> str:
    """`text` with this conversation's references (of `types`, or all) replaced by values."""

    def value(ref: ParsedReference) -> str:
        if types is not None and ref.entity_type not in types:
            return text[ref.start : ref.end]
        grant = Grant(
            conversation_id=sender,
            entity_types=frozenset({ref.entity_type}),
            purpose="confirmation",
            caller="gateway",
            expires_at=gw.clock() + 30,
        )
        try:
            info = gw.vault.lookup(sender, ref.ref_id)
            if info.entity_type != ref.entity_type:
                return text[ref.start : ref.end]
            return gw.vault.reveal(sender, ref.ref_id, grant)
        except (UnknownReference, ConversationShredded, ValueExpired, GrantRefused):
            return text[ref.start : ref.end]

    return replace_references(text, value)
