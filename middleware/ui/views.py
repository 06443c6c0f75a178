"""The log viewer's routes under `/ui/`: sign-in, conversation list, transcript, reveal, audit.

Server-rendered (jinja2, autoescaped); the only script is `static/reveal.js`, which posts
a reveal and wipes the value after `REVEAL_SECONDS`.  Pages are built from redacted
history and audit rows, so they hold no raw value; the reveal answer (JSON, no-store) is
the only response that carries one, and only after `Reveals.staff_reveal` allowed and
audited it.  The viewer depends on the domain (`coatcheck.middleware.gateway`), never on
the HTTP API's modules (`service/`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import SQLAlchemyError

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.errors import BadText, StorageUnavailable
from coatcheck.middleware.gateway.text import clean_field
from coatcheck.middleware.ui.deps import AuditDep, RecordsDep, RevealsDep, SignIn, SignInDep
from coatcheck.middleware.ui.errors import CsrfFailed, NotSignedIn
from coatcheck.middleware.ui.session import LOGIN_COOKIE, SESSION_COOKIE, Codec
from coatcheck.middleware.ui.transcript import (
    Chip,
    day_bounds,
    fmt_time,
    rules_by_reference,
    segments,
)

__all__ = ["REVEAL_SECONDS", "router"]

REVEAL_SECONDS = 8
STATUSES = ("active", "ended", "masked", "retained", "shredded", "unknown")
_HERE = Path(__file__).parent
_STATIC = {"ui.css": "text/css", "reveal.js": "text/javascript"}
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}

_env = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)
_env.filters["when"] = fmt_time
_env.tests["chip"] = lambda seg: isinstance(seg, Chip)

router = APIRouter(prefix="/ui", include_in_schema=False)


def _page(name: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(name).render(**context)
    return HTMLResponse(html, status_code=http_status, headers=_HEADERS)


def _set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    """HttpOnly, SameSite=Strict, path /ui; Secure whenever the request came over https."""
    response.set_cookie(
        name,
        value,
        max_age=age,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _conversation(value: str) -> str:
    value = clean_field(value, "conversation_id")
    if not 0 < len(value) <= 255:
        raise BadText("conversation_id", "must be 1 to 255 characters")
    return value


def _to_login() -> RedirectResponse:
    return RedirectResponse("/ui/login", status_code=303, headers=_HEADERS)


# -- sign-in --------------------------------------------------------------------------------


def _login_page(request: Request, sign_in: SignIn, error: str | None, status: int) -> HTMLResponse:
    cookie, csrf = sign_in.codec.login_cookie(sign_in.clock())
    response = _page("login.html", status, csrf=csrf, error=error, staff=None)
    _set_cookie(request, response, LOGIN_COOKIE, cookie, 15 * 60)
    return response


@router.get("/login")
def login_form(request: Request, sign_in: SignInDep) -> HTMLResponse:
    return _login_page(request, sign_in, None, 200)


@router.post("/login")
def login(
    request: Request,
    sign_in: SignInDep,
    api_key: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    codec = sign_in.codec
    expected = codec.login_csrf(request.cookies.get(LOGIN_COOKIE), sign_in.clock())
    if expected is None or not codec.csrf_ok(expected, csrf):
        raise CsrfFailed("csrf")
    row = sign_in.staff_key(api_key.strip())
    if row is None:
        message = "Unknown key, or a role that may not use the log viewer."
        return _login_page(request, sign_in, message, 401)
    issued = sign_in.start(row)
    response = RedirectResponse("/ui/", status_code=303, headers=_HEADERS)
    _set_cookie(request, response, SESSION_COOKIE, issued.cookie, 8 * 3600)
    response.delete_cookie(LOGIN_COOKIE, path="/ui")
    return response


@router.post("/logout")
def logout(
    request: Request, sign_in: SignInDep, csrf: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    staff = sign_in.staff(request)
    if staff is None:
        return _to_login()
    if not Codec.csrf_ok(staff.csrf, csrf):
        raise CsrfFailed("csrf")
    sign_in.end(staff)  # a copy of the cookie is refused from now on
    response = _to_login()
    response.delete_cookie(SESSION_COOKIE, path="/ui")
    return response


# -- pages ----------------------------------------------------------------------------------


@router.get("/")
def conversations(
    request: Request,
    sign_in: SignInDep,
    records: RecordsDep,
    search: str = "",
    status: str = "",
    since: str = "",
    until: str = "",
) -> Response:
    staff = sign_in.staff(request)
    if staff is None:
        return _to_login()
    rows = records.list_conversations(
        search=search.strip()[:255] or None,
        status=status if status in STATUSES else None,
        since=day_bounds(since, end=False),
        until=day_bounds(until, end=True),
    )
    filters = {"search": search[:255], "status": status, "since": since, "until": until}
    return _page(
        "conversations.html",
        staff=staff,
        can_audit=sign_in.may_audit(staff),
        rows=rows,
        filters=filters,
        statuses=STATUSES,
    )


@router.post("/find-sender")
def find_sender(
    request: Request,
    sign_in: SignInDep,
    records: RecordsDep,
    sender: Annotated[str, Form(max_length=255)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """A person's conversation by the real sender id their channel uses: HMAC'd to its
    pseudonym and redirected there.  A POST, so the id is in no URL, history or log."""
    staff = sign_in.staff(request)
    if staff is None:
        return _to_login()
    if not Codec.csrf_ok(staff.csrf, csrf):
        raise CsrfFailed("csrf")
    if not sender.strip():
        raise BadText("sender", "must not be empty")
    cid = records.by_sender(clean_field(sender, "sender"))
    return RedirectResponse(f"/ui/conversations/{cid}", status_code=303)


def _may_reveal(role: Role, status: str) -> bool:
    """Whether to draw the control; `staff_reveal` decides again (and audits) on use."""
    if role is Role.AGENT:
        return status == "active"
    return role in (Role.AUDITOR, Role.ADMIN)


@router.get("/conversations/{conversation_id}")
def conversation(
    request: Request, sign_in: SignInDep, records: RecordsDep, conversation_id: str
) -> Response:
    staff = sign_in.staff(request)
    if staff is None:
        return _to_login()
    cid = _conversation(conversation_id)
    messages = records.history(cid)
    status = records.status(cid)
    rules = rules_by_reference(messages)
    lines = [{**m, "segments": segments(m["text"], rules)} for m in messages]
    return _page(
        "conversation.html",
        staff=staff,
        can_audit=sign_in.may_audit(staff),
        cid=cid,
        status=status,
        lines=lines,
        can_reveal=_may_reveal(staff.role, status),
        needs_purpose=staff.role in (Role.AUDITOR, Role.ADMIN),
        reveal_seconds=REVEAL_SECONDS,
    )


@router.post("/conversations/{conversation_id}/reveal")
def reveal(
    request: Request,
    sign_in: SignInDep,
    reveals: RevealsDep,
    conversation_id: str,
    reference: Annotated[str, Form(max_length=100)] = "",
    purpose: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> JSONResponse:
    staff = sign_in.staff(request)
    if staff is None:
        raise NotSignedIn("session")
    if not Codec.csrf_ok(staff.csrf, csrf):
        raise CsrfFailed("csrf")
    cid = _conversation(conversation_id)
    stated = clean_field(purpose.strip(), "purpose")
    value = reveals.staff_reveal(cid, reference, staff.role, staff.actor, stated or None)
    body = {"reference": reference, "value": value, "seconds": REVEAL_SECONDS}
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/audit")
def audit(
    request: Request,
    sign_in: SignInDep,
    vault: AuditDep,
    conversation: str = "",
    actor: str = "",
    action: str = "",
) -> Response:
    staff = sign_in.staff(request)
    if staff is None:
        return _to_login()
    if not sign_in.may_audit(staff):  # the audit trail names every actor and conversation
        return _page("forbidden.html", 403, staff=staff, can_audit=False)
    try:
        rows = vault.audit_rows(
            conversation_id=conversation.strip()[:255] or None,
            actor=actor.strip()[:255] or None,
            action=action.strip()[:32] or None,
            limit=500,
        )
        report = vault.audit_status()  # the newest recorded result: never verified per page
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None
    filters = {"conversation": conversation[:255], "actor": actor[:255], "action": action[:32]}
    return _page(
        "audit.html", staff=staff, can_audit=True, rows=rows, report=report, filters=filters
    )


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    media = _STATIC.get(name)
    if media is None:
        raise HTTPException(status_code=404, detail="no such file")
    return FileResponse(_HERE / "static" / name, media_type=media, headers=_HEADERS)
