"""A person's data on request, for admins: erase and export one sender's conversations.

Thin routes over `Vault.subject_erase` / `Vault.subject_export` (docs/keys.md, "A
person's data"): the body carries the person's real sender id, the vault finds their
conversations by its pseudonym (and, until every edge stores pseudonyms, by the raw id)
and audits under the pseudonym.  The answer names the person by pseudonym only; an
export answer holds their own values and is never cached.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from coatcheck.middleware.service.deps import AdminKey, GatewayDep
from coatcheck.middleware.service.refusals import key_actor
from coatcheck.middleware.service.schemas import SubjectIn

__all__ = ["router"]

router = APIRouter()


@router.post("/v1/subjects/erase")
def erase(body: SubjectIn, request: Request, gw: GatewayDep, role: AdminKey) -> dict[str, Any]:
    done = gw.vault.subject_erase(body.sender, key_actor(request, role.value))
    return {
        "subject": gw.vault.pseudonym(body.sender),
        "conversations": done.conversations,
        "shredded_epochs": done.epochs,
        "keks_destroyed": done.keks_destroyed,
        "final": done.final,
    }


@router.post("/v1/subjects/export")
def export(body: SubjectIn, request: Request, gw: GatewayDep, role: AdminKey) -> JSONResponse:
    values = gw.vault.subject_export(body.sender, key_actor(request, role.value))
    doc = {
        "subject": gw.vault.pseudonym(body.sender),
        "values": [
            {
                "conversation_id": v.conversation_id,
                "ref": v.ref,
                "type": v.entity_type,
                "created_at": v.created_at,
                "status": v.status or "live",
                "value": v.value,
            }
            for v in values
        ],
    }
    return JSONResponse(doc, headers={"Cache-Control": "no-store"})
