"""The one place where exceptions become HTTP responses.

Bodies are `{"error": code, "message": text}`; under `/openai/` (the OpenAI-compatible
routes) the same outcome in OpenAI's shape, `{"error": {"message", "type", "param",
"code"}}`, so OpenAI clients can read it (`LlmError`s carry that shape themselves).
Validation errors list field locations and pydantic's message only: FastAPI's default
body echoes the offending `input`, which may be a raw value, so it is never used.
Unknown exceptions become a bare 500 (the traceback goes to the log, through the
redacting filter).  A role refusal on a route that opens values is also appended to
the audit chain (`gateway/refusals.py`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from coatcheck.middleware.export import ExportError, ExportSinkError
from coatcheck.middleware.external import (
    AuthFailed,
    BadResponse,
    CircuitOpen,
    EndpointTimeout,
    EndpointUnavailable,
    ExternalError,
    ReferenceNotFound,
)
from coatcheck.middleware.gateway.errors import (
    GatewayError,
    PatternTimeout,
    RateLimited,
    RoleForbidden,
)
from coatcheck.middleware.gateway.services import services_of
from coatcheck.middleware.llm import LlmError, openai_error
from coatcheck.middleware.service.auth import bearer_prefix
from coatcheck.saferegex import RegexTimeout
from coatcheck.vault.errors import (
    ConcurrencyError,
    ConversationEnded,
    ConversationShredded,
    DecryptionError,
    GrantRefused,
    InvalidArgument,
    InvalidGrant,
    InvalidPredicate,
    KeyConfigError,
    UnknownReference,
    ValueExpired,
    VaultError,
)

__all__ = ["AUDITED_ROUTES", "error_response", "install_handlers"]

log = logging.getLogger(__name__)

# path -> audit action, for the routes whose role refusals are audited
AUDITED_ROUTES = {"/v1/reveal": "reveal", "/v1/check": "check", "/v1/grants": "grant"}

# (status, code) for each vault error; the first matching class wins.
_VAULT_STATUS: list[tuple[type[VaultError], int, str]] = [
    (ConversationEnded, 403, "conversation_ended"),
    (GrantRefused, 403, "grant_refused"),
    (InvalidGrant, 403, "invalid_grant"),
    (UnknownReference, 404, "unknown_reference"),
    (ConversationShredded, 410, "shredded"),
    (ValueExpired, 410, "expired"),
    (InvalidPredicate, 422, "invalid_predicate"),
    (InvalidArgument, 422, "invalid_argument"),
    (ConcurrencyError, 503, "busy"),
    (DecryptionError, 500, "internal"),
    (KeyConfigError, 500, "internal"),
]

_VAULT_MESSAGES = {
    "conversation_ended": "the conversation has ended; the value is no longer available",
    "grant_refused": "the grant does not cover this reveal",
    "invalid_grant": "the grant is invalid or expired",
    "unknown_reference": "no such reference in this conversation",
    "shredded": "the conversation was shredded; the value is gone",
    "expired": "the value expired and was forgotten",
    "invalid_predicate": "the predicate is malformed",
    "invalid_argument": "an argument is malformed",
    "busy": "too many concurrent writes; retry",
    "internal": "internal error",
}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _field_summary(errors: Any) -> tuple[str, str]:
    parts: list[str] = []
    for err in errors:
        parts_loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        if err.get("type") == "extra_forbidden" and parts_loc:
            parts_loc[-1] = "<unexpected field>"  # the key itself is user input
        loc = ".".join(parts_loc) or "body"
        if err.get("type") == "json_invalid":
            return "malformed_json", "the body is not valid JSON"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "invalid_request", "; ".join(parts) or "invalid request"


async def _on_gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    action = AUDITED_ROUTES.get(request.url.path)
    if isinstance(exc, RoleForbidden) and action is not None:
        # a valid key of the wrong role on a route that opens values: audited, no body read
        actor = f"{exc.name or 'unknown'}:key:{bearer_prefix(request) or 'unknown'}"
        refusals = services_of(request.app.state).refusals
        await run_in_threadpool(refusals.record, actor=actor, action=action, reason="forbidden")
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    message = exc.message if exc.name is None else f"{exc.name}: {exc.message}"
    return error_response(exc.status, exc.code, message, headers)


async def _on_vault_error(_: Request, exc: Exception) -> JSONResponse:
    for cls, status, code in _VAULT_STATUS:
        if isinstance(exc, cls):
            if status >= 500:
                log.error("vault error %s", type(exc).__name__)
            return error_response(status, code, _VAULT_MESSAGES[code])
    log.error("vault error %s", type(exc).__name__)
    return error_response(500, "internal", "internal error")


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    code, message = _field_summary(exc.errors())
    return error_response(400 if code == "malformed_json" else 422, code, message)


async def _on_storage(_: Request, exc: Exception) -> JSONResponse:
    log.error("storage failure %s", type(exc).__name__)
    return error_response(503, "storage_unavailable", "storage is unavailable")


async def _on_http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, "http_error", str(exc.detail), exc.headers)


async def _on_regex_timeout(request: Request, exc: Exception) -> JSONResponse:
    """A configured lookaround pattern hit its time limit (`coatcheck.saferegex`)."""
    log.warning("pattern time limit reached on %s", request.url.path)
    return await _on_gateway_error(request, PatternTimeout())


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled %s", type(exc).__name__)
    return error_response(500, "internal", "internal error")


async def _on_llm_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LlmError)
    if exc.status >= 500:
        log.warning("llm gateway: %s %s", type(exc).__name__, exc.status)
    return JSONResponse(exc.body(), status_code=exc.status)


OPENAI_PREFIX = "/openai/"
Handler = Callable[[Request, Exception], Awaitable[Response]]


def _openai_shaped(handler: Handler) -> Handler:
    """`handler`, with its body in OpenAI's error shape on the OpenAI-compatible routes."""

    async def shaped(request: Request, exc: Exception) -> Response:
        response = await handler(request, exc)
        if not request.url.path.startswith(OPENAI_PREFIX):
            return response
        ours = json.loads(bytes(response.body))
        status = response.status_code
        kind = "invalid_request_error" if status < 500 else "server_error"
        body = openai_error(ours.get("message", "error"), kind, None, ours.get("error"))
        drop = ("content-length", "content-type")
        headers = {k: v for k, v in response.headers.items() if k.lower() not in drop}
        return JSONResponse(body, status_code=status, headers=headers)

    return shaped


def install_handlers(app: FastAPI) -> None:
    """Register every mapping on `app` (called once by the app factory)."""
    app.add_exception_handler(LlmError, _on_llm_error)
    for kind, handler in (
        (GatewayError, _on_gateway_error),
        (VaultError, _on_vault_error),
        (RequestValidationError, _on_validation),
        (SQLAlchemyError, _on_storage),
        (StarletteHTTPException, _on_http),
        (ExternalError, _on_external_error),
        (ExportError, _on_export_error),
        (RegexTimeout, _on_regex_timeout),
        (Exception, _on_unexpected),
    ):
        app.add_exception_handler(kind, _openai_shaped(handler))


# (class, status, code, message) for bring-your-own-vault failures; the first match wins.
# Bodies name the endpoint (operator config) and never carry the customer's answer.
_EXTERNAL_STATUS: list[tuple[type[ExternalError], int, str, str]] = [
    (CircuitOpen, 503, "external_circuit_open", "the customer vault is failing; not called"),
    (EndpointTimeout, 504, "external_timeout", "the customer vault did not answer in time"),
    (EndpointUnavailable, 502, "external_unavailable", "the customer vault is unreachable"),
    (BadResponse, 502, "external_bad_response", "the customer vault answered unusably"),
    (AuthFailed, 502, "external_auth_failed", "the customer vault refused our credentials"),
    (ReferenceNotFound, 404, "external_not_found", "the customer vault does not know it"),
]


async def _on_external_error(_: Request, exc: Exception) -> JSONResponse:
    endpoint = getattr(exc, "endpoint", None)
    log.warning("external resolution failed: %s endpoint=%s", type(exc).__name__, endpoint)
    for cls, status, code, message in _EXTERNAL_STATUS:
        if isinstance(exc, cls):
            return error_response(status, code, f"{endpoint}: {message}")
    return error_response(500, "internal", "internal error")


async def _on_export_error(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ExportSinkError):
        log.warning("export delivery failed: sink=%s reason=%s", exc.sink, exc.reason)
        message = f"{exc.sink}: the record could not be delivered ({exc.reason})"
        return error_response(502, "export_failed", message)
    log.error("export error %s", type(exc).__name__)
    return error_response(500, "internal", "internal error")
