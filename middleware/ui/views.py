"""The log viewer's routes under `/ui/`: sign-in, conversation list, transcript, reveal, audit.

Server-rendered (jinja2, autoescaped); the only script is `static/reveal.js`, which posts
a reveal and wipes the value after `REVEAL_SECONDS`.  Pages are built from redacted
history and audit rows, so they hold no raw value; the reveal answer (JSON, no-store) is
the only response that carries one, and only after `staff_reveal` allowed and audited it.
The UI depends on `coatcheck.middleware.service.staff` through its three functions only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from coatcheck.middleware.models import ApiKey
from coatcheck.middleware.service.apikeys import Role, find_role
from coatcheck.middleware.service.errors import BadText, StorageUnavailable
from coatcheck.middleware.service.limits import clean_text
from coatcheck.middleware.service.staff import conversation_status, list_conversations, staff_reveal
from coatcheck.middleware.service.state import Gateway
from coatcheck.middleware.service.store import guarded, read_history
from coatcheck.middleware.ui.errors import CsrfFailed, NotSignedIn
from coatcheck.middleware.ui.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Codec,
    StaffSession,
    end_session,
    store_session,
)
from coatcheck.middleware.ui.transcript import (
    Chip,
    day_bounds,
    fmt_time,
    rules_by_reference,
    segments,
)

__all__ = ["REVEAL_SECONDS", "router"]

REVEAL_SECONDS = 8
STAFF_ROLES = frozenset({Role.VIEWER, Role.AGENT, Role.AUDITOR, Role.ADMIN})
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


def _codec(gw: Gateway) -> Codec:
    return Codec(gw.vault.grant_key)


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


def _staff(request: Request, gw: Gateway) -> StaffSession | None:
    try:
        with Session(gw.reader) as session:
            staff = _codec(gw).verify(session, request.cookies.get(SESSION_COOKIE), gw.clock())
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None
    return staff if staff is not None and staff.role in STAFF_ROLES else None


def _conversation(value: str) -> str:
    try:
        value = clean_text(value)
    except ValueError:
        raise BadText("conversation_id") from None
    if not 0 < len(value) <= 255:
        raise BadText("conversation_id", "must be 1 to 255 characters")
    return value


def _to_login() -> RedirectResponse:
    return RedirectResponse("/ui/login", status_code=303, headers=_HEADERS)


def _gw(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


# -- sign-in --------------------------------------------------------------------------------


def _login_page(request: Request, gw: Gateway, error: str | None, status: int) -> HTMLResponse:
    cookie, csrf = _codec(gw).login_cookie(gw.clock())
    response = _page("login.html", status, csrf=csrf, error=error, staff=None)
    _set_cookie(request, response, LOGIN_COOKIE, cookie, 15 * 60)
    return response


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    return _login_page(request, _gw(request), None, 200)


@router.post("/login")
def login(
    request: Request,
    api_key: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    gw = _gw(request)
    codec = _codec(gw)
    expected = codec.login_csrf(request.cookies.get(LOGIN_COOKIE), gw.clock())
    if expected is None or not codec.csrf_ok(expected, csrf):
        raise CsrfFailed("csrf")
    key = api_key.strip()
    try:
        with Session(gw.reader) as session:
            role = find_role(session, key) if key.isascii() else None
            row = None
            if role in STAFF_ROLES:
                prefix = key.split("_", 2)[1]
                row = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None
    if row is None:
        message = "Unknown key, or a role that may not use the log viewer."
        return _login_page(request, gw, message, 401)
    now = gw.clock()
    issued = codec.issue(row, now)
    with guarded(gw.sessions) as session:
        store_session(session, issued, now)
    response = RedirectResponse("/ui/", status_code=303, headers=_HEADERS)
    _set_cookie(request, response, SESSION_COOKIE, issued.cookie, 8 * 3600)
    response.delete_cookie(LOGIN_COOKIE, path="/ui")
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    gw = _gw(request)
    staff = _staff(request, gw)
    if staff is None:
        return _to_login()
    if not Codec.csrf_ok(staff.csrf, csrf):
        raise CsrfFailed("csrf")
    with guarded(gw.sessions) as session:
        end_session(session, staff.sid)  # a copy of the cookie is refused from now on
    response = _to_login()
    response.delete_cookie(SESSION_COOKIE, path="/ui")
    return response


# -- pages ----------------------------------------------------------------------------------


@router.get("/")
def conversations(
    request: Request,
    search: str = "",
    status: str = "",
    since: str = "",
    until: str = "",
) -> Response:
    gw = _gw(request)
    staff = _staff(request, gw)
    if staff is None:
        return _to_login()
    rows = list_conversations(
        gw,
        search=search.strip()[:255] or None,
        status=status if status in STATUSES else None,
        since=day_bounds(since, end=False),
        until=day_bounds(until, end=True),
    )
    filters = {"search": search[:255], "status": status, "since": since, "until": until}
    return _page("conversations.html", staff=staff, rows=rows, filters=filters, statuses=STATUSES)


def _may_reveal(role: Role, status: str) -> bool:
    """Whether to draw the control; `staff_reveal` decides again (and audits) on use."""
    if role is Role.AGENT:
        return status == "active"
    return role in (Role.AUDITOR, Role.ADMIN)


@router.get("/conversations/{conversation_id}")
def conversation(request: Request, conversation_id: str) -> Response:
    gw = _gw(request)
    staff = _staff(request, gw)
    if staff is None:
        return _to_login()
    cid = _conversation(conversation_id)
    with guarded(sessionmaker(gw.reader)) as session:
        messages = read_history(session, cid)
    status = conversation_status(gw, cid)
    rules = rules_by_reference(messages)
    lines = [{**m, "segments": segments(m["text"], rules)} for m in messages]
    return _page(
        "conversation.html",
        staff=staff,
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
    conversation_id: str,
    reference: Annotated[str, Form(max_length=100)] = "",
    purpose: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> JSONResponse:
    gw = _gw(request)
    staff = _staff(request, gw)
    if staff is None:
        raise NotSignedIn("session")
    if not Codec.csrf_ok(staff.csrf, csrf):
        raise CsrfFailed("csrf")
    cid = _conversation(conversation_id)
    try:
        stated = clean_text(purpose.strip())
    except ValueError:
        raise BadText("purpose") from None
    value = staff_reveal(gw, cid, reference, staff.role, staff.actor, stated or None)
    body = {"reference": reference, "value": value, "seconds": REVEAL_SECONDS}
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/audit")
def audit(request: Request, conversation: str = "", actor: str = "", action: str = "") -> Response:
    gw = _gw(request)
    staff = _staff(request, gw)
    if staff is None:
        return _to_login()
    try:
        rows = gw.vault.audit_rows(
            conversation_id=conversation.strip()[:255] or None,
            actor=actor.strip()[:255] or None,
            action=action.strip()[:32] or None,
            limit=500,
        )
        report = gw.vault.audit_status()  # the newest recorded result: never verified per page
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None
    filters = {"conversation": conversation[:255], "actor": actor[:255], "action": action[:32]}
    return _page("audit.html", staff=staff, rows=rows, report=report, filters=filters)


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    media = _STATIC.get(name)
    if media is None:
        raise HTTPException(status_code=404, detail="no such file")
    return FileResponse(_HERE / "static" / name, media_type=media, headers=_HEADERS)
