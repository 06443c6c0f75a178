"""Per-request context: a request id for logs and replies, and the route-layer metrics.

`RequestContext` is the outermost ASGI middleware.  Each HTTP request gets an id, kept in
the `REQUEST_ID` context variable while the request runs (so every log record written
for it, uvicorn's access line included, can carry it: `jsonlog.JsonFormatter`) and sent
back as `X-Request-ID`.  A caller's own `X-Request-ID` is kept only when it is a UUID:
anything else could carry text the logs must not hold, and is replaced.

When the response is done it records the route *template* (never the concrete path, which
can hold a conversation id), method, status and duration; webhook requests also count as
channel messages by outcome.
"""

from __future__ import annotations

import re
import time
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coatcheck.middleware.observability import metrics

__all__ = ["HEADER", "REQUEST_ID", "WEBHOOK", "RequestContext"]

HEADER = "x-request-id"
REQUEST_ID: ContextVar[str | None] = ContextVar("coatcheck_request_id", default=None)
WEBHOOK = "/webhooks/rest/webhook"
_UUID = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEADER = HEADER.encode("ascii")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == _HEADER and _UUID.fullmatch(value):
            return bytes(value).decode("ascii").lower()
    return str(uuid.uuid4())


class RequestContext:
    """ASGI middleware: request id in, `X-Request-ID` out, one metrics sample per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        header = (_HEADER, rid.encode("ascii"))
        status = 500  # what the client gets if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = REQUEST_ID.set(rid)
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.observe_request(route, scope["method"], status, time.perf_counter() - start)
            if route == WEBHOOK:
                metrics.count_message(status)
            REQUEST_ID.reset(token)
