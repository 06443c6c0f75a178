"""The vault API and the conversation routes: thin, they authenticate, validate and call
one domain function each (`coatcheck.middleware.gateway`).

Blocking work (SQLAlchemy, the vault's crypto) runs in the threadpool (`def` routes), so
the event loop keeps serving the bot round-trips.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from coatcheck.middleware.gateway.apikeys import Caller, Role
from coatcheck.middleware.gateway.conversation import ConversationService
from coatcheck.middleware.gateway.lifecycle import EndReason
from coatcheck.middleware.gateway.store import healthy
from coatcheck.middleware.gateway.text import clean_field
from coatcheck.middleware.service.deps import (
    BotSideKey,
    CaptureKey,
    ChecksDep,
    ConversationsDep,
    EndKey,
    EngineDep,
    GrantKey,
    HistoryKey,
    LifecycleDep,
    RecordsDep,
    RedactionDep,
    RedactKey,
    RevealKey,
    RevealsDep,
)
from coatcheck.middleware.service.handlers import error_response
from coatcheck.middleware.service.schemas import (
    CheckIn,
    ContextIn,
    GrantIn,
    RedactIn,
    RevealIn,
    SenderIn,
    TemporaryIn,
)

__all__ = ["router"]

router = APIRouter()

ConvPath = Path(min_length=1, max_length=255)


def _spoken(caller: Caller, conversation_id: str, conversations: ConversationService) -> str:
    """The conversation a caller means: a `channel` key speaks real sender ids (as its
    webhook does), so its id is the sender's pseudonym; every other role already holds
    pseudonyms (the bot and its actions only ever saw those)."""
    if caller.role is Role.CHANNEL:
        return conversations.pseudonym(conversation_id)
    return conversation_id


@router.get("/health", response_model=None)
def health(engine: EngineDep) -> dict[str, str] | JSONResponse:
    if not healthy(engine):
        return error_response(503, "storage_unavailable", "the database is unreachable")
    return {"status": "ok"}


@router.post("/v1/redact")
def redact(
    body: RedactIn, redaction: RedactionDep, caller: RedactKey, conversations: ConversationsDep
) -> dict[str, Any]:
    """Existing references only to a caller who holds the value (docs/service.md); a
    `channel` key names the conversation by the real sender id."""
    context = body.context
    result = redaction.redact(
        caller,
        _spoken(caller, body.conversation_id, conversations),
        body.text,
        None if context is None else context.expect,
        None if context is None else context.capture,
        body.grant,
    )
    return {"text": result.text, "entities": [e.as_dict() for e in result.entities]}


@router.post("/v1/grants")
def grants(body: GrantIn, reveals: RevealsDep, caller: GrantKey) -> dict[str, Any]:
    issued = reveals.issue_grant(
        caller, body.conversation_id, body.entity_types, body.purpose, body.action
    )
    return {"grant": issued.token, "expires_at": issued.expires_at}


@router.post("/v1/reveal")
def reveal(body: RevealIn, reveals: RevealsDep, caller: RevealKey) -> dict[str, Any]:
    value, entity_type = reveals.reveal(
        caller, body.conversation_id, body.ref, body.grant, body.purpose
    )
    return {"value": value, "type": entity_type}


@router.post("/v1/check")
def check(body: CheckIn, checks: ChecksDep, caller: BotSideKey) -> dict[str, bool]:
    """A declared check, by name, under the reference's budget (docs/service.md)."""
    return {"result": checks.ask(caller, body.conversation_id, body.ref, body.check, body.value)}


@router.post("/v1/conversations/{conversation_id}/context")
def context(
    body: ContextIn, redaction: RedactionDep, _: BotSideKey, conversation_id: str = ConvPath
) -> dict[str, Any]:
    conv = clean_field(conversation_id, "conversation_id")
    rule = redaction.set_rule(conv, body.model_dump())
    return {"conversation_id": conv, "expect": rule.expect, "capture": rule.capture}


@router.post("/v1/conversations/{conversation_id}/end")
def end(
    lifecycle: LifecycleDep,
    caller: EndKey,
    conversations: ConversationsDep,
    conversation_id: str = ConvPath,
) -> dict[str, Any]:
    """End now under the retention policy (docs/lifecycle.md); idempotent.  A channel key
    names the real sender; the answer names the pseudonym only."""
    conv = _spoken(caller, clean_field(conversation_id, "conversation_id"), conversations)
    result = lifecycle.end(conv, caller.role.value, EndReason.API)
    return {
        "conversation_id": conv,
        "ended": True,
        "status": result.status,
        "ended_at": result.ended_at,
        "retain_until": result.retain_until,
    }


@router.post("/v1/conversations/{conversation_id}/temporary")
def temporary(
    body: TemporaryIn, redaction: RedactionDep, _: BotSideKey, conversation_id: str = ConvPath
) -> dict[str, Any]:
    """A single-use reference for a value, forgotten after `ttl_seconds` or at the end."""
    conv = clean_field(conversation_id, "conversation_id")
    reference, expires_at = redaction.temporary(conv, body.type, body.value, body.ttl_seconds)
    return {"ref": reference, "type": body.type, "expires_at": expires_at}


@router.get("/v1/conversations/{conversation_id}/capture")
def capture(records: RecordsDep, _: CaptureKey, conversation_id: str = ConvPath) -> dict[str, Any]:
    """The gateway's own record of the conversation's latest secure-capture result, so an
    action can tell it from a user who typed `/coatcheck_capture{...}` (docs/actions.md)."""
    conv = clean_field(conversation_id, "conversation_id")
    return {"conversation_id": conv, "capture": records.latest_capture(conv)}


@router.get("/v1/conversations/{conversation_id}/history")
def history(records: RecordsDep, _: HistoryKey, conversation_id: str = ConvPath) -> dict[str, Any]:
    conv = clean_field(conversation_id, "conversation_id")
    return {"conversation_id": conv, "messages": records.history(conv)}


@router.post("/v1/senders/history")
def sender_history(body: SenderIn, records: RecordsDep, _: HistoryKey) -> dict[str, Any]:
    """Staff searching by a real sender id: it is HMAC'd to its pseudonym (a POST, so the
    id is never in a URL or an access log); the answer names the pseudonym only."""
    conv = records.by_sender(body.sender)
    return {"conversation_id": conv, "messages": records.history(conv)}
