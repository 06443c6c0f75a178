"""Audit rows for refusals decided before the vault: a wrong role, an invalid grant.

The vault audits what it decides itself (a grant for another conversation or type, an
unknown reference, the lifecycle rules of staff reveals, every check).  Refusals decided
earlier, on the routes that open values (`/v1/reveal`, `/v1/check`) or hand out the right
to (`/v1/grants`), would otherwise leave no trace: a caller probing with the wrong key
role, replaying an expired grant or forging one.  Those are appended to the same hash
chain through `Vault.audit_refusal` (outcome `refused:<reason>`).  A row names the actor
by role and the key's public prefix, the conversation and reference when known; never a
value, a key or a grant token.

Only callers with a valid key are audited (a missing or unknown key is 401 and writes
nothing), so an anonymous flood cannot grow the audit log.  If the audit write fails the
answer stays the refusal (logged): nothing is revealed either way.
"""

from __future__ import annotations

import logging

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError

from coatcheck.middleware.service.apikeys import parse_key
from coatcheck.middleware.service.state import Gateway

__all__ = ["AUDITED_ROUTES", "audit_refusal", "key_actor"]

log = logging.getLogger(__name__)

# path -> audit action, for the routes whose role refusals are audited
AUDITED_ROUTES = {"/v1/reveal": "reveal", "/v1/check": "check", "/v1/grants": "grant"}


def key_actor(request: Request, role: str) -> str:
    """`<role>:key:<public prefix>` of the calling API key (never the key itself)."""
    key = request.headers.get("authorization", "").partition(" ")[2].strip()
    return f"{role}:key:{parse_key(key) or 'unknown'}"


def audit_refusal(
    gw: Gateway,
    *,
    actor: str,
    action: str,
    reason: str,
    conversation_id: str | None = None,
    ref: str | None = None,
    entity_type: str | None = None,
) -> None:
    """Append one `refused:<reason>` row (blocking: call from a worker thread)."""
    try:
        gw.vault.audit_refusal(
            actor=actor,
            action=action,
            reason=reason,
            conversation_id=conversation_id,
            ref=ref,
            entity_type=entity_type,
        )
    except SQLAlchemyError:
        log.error("a refusal could not be audited: storage failure (action=%s)", action)
