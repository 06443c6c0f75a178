"""A person's data on request, for admins: erase and export one sender's data.

Thin routes over `gateway.subjects.Subjects` (docs/keys.md, "A person's data"): the body
carries the person's real sender id; their conversations are found by its pseudonym (and,
until every edge stores pseudonyms, by the raw id).  The answer names the person by
pseudonym only; an export answer holds their own values and is never cached.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from coatcheck.middleware.service.deps import AdminKey, SubjectsDep
from coatcheck.middleware.service.schemas import SubjectIn

__all__ = ["router"]

router = APIRouter()


@router.post("/v1/subjects/erase")
def erase(body: SubjectIn, subjects: SubjectsDep, caller: AdminKey) -> dict[str, Any]:
    return subjects.erase(body.sender, caller.role_actor).as_dict()


@router.post("/v1/subjects/export")
def export(body: SubjectIn, subjects: SubjectsDep, caller: AdminKey) -> JSONResponse:
    found = subjects.export(body.sender, caller.role_actor)
    return JSONResponse(found.as_dict(), headers={"Cache-Control": "no-store"})
