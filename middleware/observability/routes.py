"""Operations routes: `/metrics`, `/ready` and the customer-endpoint connection test.

- `GET /metrics` (role `monitor`, or admin): Prometheus text format, see `metrics`.
- `GET /ready` (no key, like `/health`): 200 when the database answers and the bot is
  reachable, else 503 naming what is not.  `/health` stays the liveness probe (the process
  and its database); `/ready` is what a load balancer should route by.
- `POST /v1/external/{entity_type}/test` (admin): `external.probe` against the endpoint
  the running service resolves that type with.
"""

from __future__ import annotations

from typing import Annotated, Any

import aiohttp
from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from coatcheck.middleware.external.probe import probe
from coatcheck.middleware.observability import metrics
from coatcheck.middleware.service.apikeys import Role
from coatcheck.middleware.service.auth import require
from coatcheck.middleware.service.deps import AdminKey, GatewayDep
from coatcheck.middleware.service.errors import ServiceError
from coatcheck.middleware.service.state import Gateway

__all__ = ["BOT_PROBE_SECONDS", "NotExternal", "ops_router"]

BOT_PROBE_SECONDS = 2.0

ops_router = APIRouter()


class NotExternal(ServiceError):
    """The connection test was asked for a type no customer endpoint holds."""

    status = 404
    code = "not_external"
    default_message = "no customer endpoint is configured for this type"


MonitorKey = Annotated[Role, Depends(require(Role.MONITOR))]
TypePath = Path(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")


@ops_router.get("/metrics", response_class=Response)
async def prometheus_metrics(_: MonitorKey) -> Response:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


def _database(gw: Gateway) -> str:
    try:
        with gw.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return "unreachable"
    return "ok"


async def _bot(gw: Gateway) -> str:
    """Any HTTP answer below 500 means a bot is listening (a Rasa webhook answers 405)."""
    url = gw.settings.bot_url
    if url is None:
        return "ok"  # the built-in echo bot (or one injected by the embedding code)
    timeout = aiohttp.ClientTimeout(total=BOT_PROBE_SECONDS)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, allow_redirects=False) as resp,
        ):
            return "ok" if resp.status < 500 else f"HTTP {resp.status}"
    except TimeoutError:
        return "timeout"
    except aiohttp.ClientError:
        return "unreachable"


@ops_router.get("/ready", response_model=None)
async def ready(gw: GatewayDep) -> dict[str, Any] | JSONResponse:
    checks = {"database": await run_in_threadpool(_database, gw), "bot": await _bot(gw)}
    failing = [f"{name}: {state}" for name, state in checks.items() if state != "ok"]
    if failing:
        body = {"error": "not_ready", "message": "; ".join(failing), "checks": checks}
        return JSONResponse(body, status_code=503)
    return {"status": "ready", "checks": checks}


@ops_router.post("/v1/external/{entity_type}/test")
async def external_test(gw: GatewayDep, _: AdminKey, entity_type: str = TypePath) -> dict[str, Any]:
    """Probe the customer endpoint of `entity_type`; 200 with `ok` false when a step fails."""
    if gw.resolver is None or entity_type not in gw.resolver.types:
        raise NotExternal("entity_type")
    config = gw.resolver.config(entity_type)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        result = await probe(entity_type, config, session)
    return result.as_dict()
