"""Operations routes: `/metrics`, `/ready` and the customer-endpoint connection test.

- `GET /metrics` (role `monitor`, or admin): Prometheus text format, see `metrics`.
- `GET /ready` (no key, like `/health`): 200 when the database answers and the bot is
  reachable, else 503 naming what is not.  `/health` stays the liveness probe (the process
  and its database); `/ready` is what a load balancer should route by.
- `POST /v1/external/{entity_type}/test` (admin): `external.probe` against the endpoint
  the running service resolves that type with.

Thin like the API's routes: the caller checks and the domain's pieces come from
`service/deps.py`; the bot's address is the one the app was configured with
(`ops_router(bot_url)`, mounted by `coatcheck.middleware.app`).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from coatcheck.grammar import TYPE_NAME_RE
from coatcheck.middleware.external.probe import probe
from coatcheck.middleware.gateway.errors import GatewayError
from coatcheck.middleware.gateway.store import healthy
from coatcheck.middleware.observability import metrics
from coatcheck.middleware.service.deps import AdminKey, EngineDep, ExternalDep, MonitorKey

__all__ = ["BOT_PROBE_SECONDS", "NotExternal", "ops_router"]

BOT_PROBE_SECONDS = 2.0


class NotExternal(GatewayError):
    """The connection test was asked for a type no customer endpoint holds."""

    status = 404
    code = "not_external"
    default_message = "no customer endpoint is configured for this type"


TypePath = Path(pattern=rf"^{TYPE_NAME_RE.pattern}$")


async def _bot(url: str | None) -> str:
    """Any HTTP answer below 500 means a bot is listening (a Rasa webhook answers 405)."""
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


def ops_router(bot_url: str | None) -> APIRouter:
    """The operations routes; `/ready` probes the bot at `bot_url` (None: no HTTP bot)."""
    router = APIRouter()

    @router.get("/metrics", response_class=Response)
    async def prometheus_metrics(_: MonitorKey) -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @router.get("/ready", response_model=None)
    async def ready(engine: EngineDep) -> dict[str, Any] | JSONResponse:
        database = "ok" if await run_in_threadpool(healthy, engine) else "unreachable"
        checks = {"database": database, "bot": await _bot(bot_url)}
        failing = [f"{name}: {state}" for name, state in checks.items() if state != "ok"]
        if failing:
            body = {"error": "not_ready", "message": "; ".join(failing), "checks": checks}
            return JSONResponse(body, status_code=503)
        return {"status": "ready", "checks": checks}

    @router.post("/v1/external/{entity_type}/test")
    async def external_test(
        external: ExternalDep, _: AdminKey, entity_type: str = TypePath
    ) -> dict[str, Any]:
        """Probe the customer endpoint of `entity_type`; 200 with `ok` false when a step
        fails."""
        resolver = external.resolver
        if resolver is None or entity_type not in resolver.types:
            raise NotExternal("entity_type")
        config = resolver.config(entity_type)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            result = await probe(entity_type, config, session)
        return result.as_dict()

    return router
