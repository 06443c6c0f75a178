"""HTTP routes: thin, they authenticate, validate and call the pipeline or the vault.

Blocking work (SQLAlchemy, the vault's crypto) runs in the threadpool (`def` routes or
`run_in_threadpool`), so the event loop keeps serving the bot round-trips.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from coatcheck.middleware.detect import Context, UnknownTypeError
from coatcheck.middleware.detect.context_rules import resolve_rule
from coatcheck.middleware.render import REFERENCE_RE
from coatcheck.middleware.service.apikeys import Role, parse_key
from coatcheck.middleware.service.conversation import handle_message, validate_rule
from coatcheck.middleware.service.deps import (
    BotSideKey,
    ChannelKey,
    EndKey,
    GatewayDep,
    GrantKey,
    HistoryKey,
    RedactKey,
    RevealKey,
    VaultDep,
)
from coatcheck.middleware.service.errors import BadText, ConversationClosed
from coatcheck.middleware.service.external_reveal import external_value
from coatcheck.middleware.service.handlers import error_response
from coatcheck.middleware.service.lifecycle import EndReason, end_conversation, ensure_active
from coatcheck.middleware.service.limits import clean_text
from coatcheck.middleware.service.refusals import audit_refusal, key_actor
from coatcheck.middleware.service.schemas import (
    CheckIn,
    ContextIn,
    GrantIn,
    RedactIn,
    RevealIn,
    TemporaryIn,
    WebhookIn,
)
from coatcheck.middleware.service.staff import audit_purpose, staff_reveal
from coatcheck.middleware.service.store import guarded, guarded_conn, read_history, set_context
from coatcheck.vault import Grant, predicate_from_dict
from coatcheck.vault.errors import GrantRefused, InvalidGrant

__all__ = ["router"]

router = APIRouter()

ConvPath = Path(min_length=1, max_length=255)


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _conversation(value: str) -> str:
    try:
        return clean_text(value)
    except ValueError:
        raise BadText("conversation_id") from None


def _ref_id(reference: str) -> tuple[str, str]:
    match = REFERENCE_RE.fullmatch(reference)
    if match is None or match.group(3) is not None:
        raise BadText("ref", "must be a reference such as CC_EMAIL_ADDRESS_7k2m9xq4cw")
    return match.group(1), match.group(2)


@router.get("/health", response_model=None)
def health(gw: GatewayDep) -> dict[str, str] | JSONResponse:
    try:
        with gw.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return error_response(503, "storage_unavailable", "the database is unreachable")
    return {"status": "ok"}


@router.post("/webhooks/rest/webhook", response_model=list[dict[str, Any]])
async def webhook(body: WebhookIn, gw: GatewayDep, _: ChannelKey) -> Response:
    """The hot path: the reply list is plain JSON already, so it skips response validation."""
    replies = await handle_message(gw, body.sender, body.message, body.metadata)
    return Response(_dumps(replies), media_type="application/json")


@router.post("/v1/redact")
def redact(body: RedactIn, gw: GatewayDep, _: RedactKey) -> dict[str, Any]:
    context = None
    if body.context is not None:
        capture = body.context.capture
        if capture == "secure":
            raise BadText("context.capture", "secure capture is for the webhook only")
        context = Context(body.context.expect, capture)
    try:
        result = gw.redactor.redact(body.conversation_id, body.text, context)
    except UnknownTypeError:
        raise BadText("context.expect", "unknown entity type") from None
    return {"text": result.text, "entities": [e.as_dict() for e in result.entities]}


@router.post("/v1/grants")
def grants(body: GrantIn, gw: GatewayDep, role: GrantKey, request: Request) -> dict[str, Any]:
    allowed = gw.actions.get(body.action, frozenset())
    if not set(body.entity_types) <= allowed:
        actor = key_actor(request, role.value)
        audit_refusal(
            gw,
            actor=actor,
            action="grant",
            reason="type_not_allowed",
            conversation_id=body.conversation_id,
        )
        raise GrantRefused("type not allowed for this action")
    expires_at = gw.clock() + gw.grant_ttl
    grant = Grant(
        conversation_id=body.conversation_id,
        entity_types=frozenset(body.entity_types),
        purpose=audit_purpose(gw, body.purpose) or body.purpose,
        caller=body.action,
        expires_at=expires_at,
    )
    return {"grant": gw.signer.issue(grant), "expires_at": expires_at}


def _key_actor(request: Request) -> str:
    """The audit name of the calling API key: its public prefix, never the key."""
    key = request.headers.get("authorization", "").partition(" ")[2].strip()
    return f"key:{parse_key(key) or 'unknown'}"


@router.post("/v1/reveal")
def reveal(
    body: RevealIn, gw: GatewayDep, vault: VaultDep, role: RevealKey, request: Request
) -> dict[str, Any]:
    entity_type, ref_id = _ref_id(body.ref)
    if role in (Role.AGENT, Role.AUDITOR) or (role is Role.ADMIN and body.grant is None):
        # Staff reveals follow the lifecycle rules (staff.py): no grant, a stated purpose.
        actor = _key_actor(request)
        value = staff_reveal(gw, body.conversation_id, body.ref, role, actor, body.purpose)
        return {"value": value, "type": entity_type}
    try:
        if body.grant is None:
            raise GrantRefused("grant_required", "a grant is required")
        grant = gw.signer.verify(body.grant, gw.clock())
    except (GrantRefused, InvalidGrant) as exc:
        # refused before the vault (missing, expired, forged grant): audited here, since
        # the vault never sees the request; a foreign or too narrow grant the vault audits
        reason = exc.reason if isinstance(exc, GrantRefused) else "invalid_grant"
        audit_refusal(
            gw,
            actor=key_actor(request, role.value),
            action="reveal",
            reason=reason,
            conversation_id=body.conversation_id,
            ref=ref_id,
            entity_type=entity_type,
        )
        raise
    value = vault.reveal(body.conversation_id, ref_id, grant)
    value = external_value(gw, body.conversation_id, ref_id, entity_type, value)
    return {"value": value, "type": entity_type}


@router.post("/v1/check")
def check(body: CheckIn, vault: VaultDep, role: BotSideKey) -> dict[str, bool]:
    _, ref_id = _ref_id(body.ref)
    predicate = predicate_from_dict(body.predicate)
    result = vault.check(body.conversation_id, ref_id, predicate, role.value, "check")
    return {"result": result}


@router.post("/v1/conversations/{conversation_id}/context")
def context(
    body: ContextIn, gw: GatewayDep, _: BotSideKey, conversation_id: str = ConvPath
) -> dict[str, Any]:
    conv = _conversation(conversation_id)
    rule = validate_rule(body.model_dump())
    if rule["capture"] != "secure":
        try:
            resolve_rule(gw.redactor.config, Context(rule["expect"], rule["capture"]))
        except UnknownTypeError:
            raise BadText("expect", "unknown entity type") from None
    with guarded(gw.sessions) as session:
        set_context(session, conv, rule, gw.clock)
    return {"conversation_id": conv, "expect": rule["expect"], "capture": rule["capture"]}


@router.post("/v1/conversations/{conversation_id}/end")
def end(gw: GatewayDep, role: EndKey, conversation_id: str = ConvPath) -> dict[str, Any]:
    """End now under the retention policy (docs/lifecycle.md); idempotent."""
    conv = _conversation(conversation_id)
    result = end_conversation(gw, conv, role.value, EndReason.API)
    return {
        "conversation_id": conv,
        "ended": True,
        "status": result.status,
        "ended_at": result.ended_at,
        "retain_until": result.retain_until,
    }


@router.post("/v1/conversations/{conversation_id}/temporary")
def temporary(
    body: TemporaryIn, gw: GatewayDep, _: BotSideKey, conversation_id: str = ConvPath
) -> dict[str, Any]:
    """A single-use reference for a value, forgotten after `ttl_seconds` or at the end."""
    conv = _conversation(conversation_id)
    with guarded_conn(gw.writer) as conn:
        status = ensure_active(conn, conv, gw.clock())
    if status != "active":
        raise ConversationClosed("conversation_id")
    ref_id, expires_at = gw.vault.tokenize_temporary(conv, body.type, body.value, body.ttl_seconds)
    gw.recent.add(body.value)  # the log filter knows it now, like any vaulted value
    reference = f"CC_{body.type}_{ref_id}"
    return {"ref": reference, "type": body.type, "expires_at": expires_at}


@router.get("/v1/conversations/{conversation_id}/history")
def history(gw: GatewayDep, _: HistoryKey, conversation_id: str = ConvPath) -> dict[str, Any]:
    conv = _conversation(conversation_id)
    with guarded(sessionmaker(gw.reader)) as session:  # a read: no write lock
        return {"conversation_id": conv, "messages": read_history(session, conv)}
