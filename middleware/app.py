"""The FastAPI app factory (`coatcheck.middleware.app:create_app`, uvicorn `factory=True`).

The composition root: it reads the settings and the config once, mounts the HTTP layers
(`service/`: the API and the channel webhooks; `ui/`: the log viewer) and, in each
worker's lifespan, builds the domain (`compose.py`) and the sweeper.  Nothing is built at
import.  `service/` and `ui/` never import each other: both depend on the domain.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from coatcheck import __version__
from coatcheck.middleware.adapters import OpenAiChannel, RasaRestChannel
from coatcheck.middleware.compose import compose
from coatcheck.middleware.config import load_config
from coatcheck.middleware.gateway.ports import BotAdapter
from coatcheck.middleware.observability.docs import offline_app
from coatcheck.middleware.observability.requestid import RequestContext
from coatcheck.middleware.observability.routes import ops_router
from coatcheck.middleware.service.export_routes import router as export_router
from coatcheck.middleware.service.handlers import install_handlers
from coatcheck.middleware.service.limits import BodyLimits
from coatcheck.middleware.service.openai_routes import openai_router
from coatcheck.middleware.service.routes import router as api_router
from coatcheck.middleware.service.subject_routes import router as subject_router
from coatcheck.middleware.service.webhook import rasa_rest_router
from coatcheck.middleware.settings import Settings, load_settings
from coatcheck.middleware.ui import router as ui_router

__all__ = ["create_app"]

_DRAIN_ON_STOP = 5.0  # seconds a graceful stop spends delivering the outbox's due records


def _mount(app: FastAPI, channel: RasaRestChannel, settings: Settings) -> None:
    """Every router of the app, in one place."""
    app.include_router(rasa_rest_router(channel))  # the channel webhook (Rasa REST)
    app.include_router(openai_router(OpenAiChannel()))  # OpenAI-compatible (docs/llm.md)
    app.include_router(api_router)  # vault API, conversations, health
    app.include_router(export_router)  # export controls (docs/export.md)
    app.include_router(subject_router)  # a person's erasure and export (docs/keys.md)
    app.include_router(ui_router)  # the log viewer at /ui/ (docs/ui.md)
    # /metrics, /ready, the endpoint test (docs/operations.md)
    app.include_router(ops_router(settings.bot_url))


def create_app(
    settings: Settings | None = None,
    *,
    bot: BotAdapter | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """A configured app; `bot` (a bot adapter) and `clock` are injectable (tests,
    embedding).  A bad setting or config raises `ConfigError` (one line) right here."""
    settings = settings if settings is not None else load_settings()
    config = load_config(settings.config)  # the whole YAML file, once
    channel = RasaRestChannel()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with compose(settings, config, channel=channel.name, bot=bot, clock=clock) as (
            services,
            auth,
        ):
            app.state.services = services
            app.state.auth = auth
            tasks = [asyncio.create_task(services.outbox.run())]  # export delivery
            if settings.sweep_interval_seconds > 0:
                sweep = services.sweeper.run(settings.sweep_interval_seconds)
                tasks.append(asyncio.create_task(sweep))
            if settings.apikey_cache_seconds > 0:  # no cache, nothing a revocation must evict
                tasks.append(asyncio.create_task(auth.watch_revocations()))
            # What start-up built (detector tables, compiled patterns, config, pools) lives as
            # long as the process: kept out of the collector's reach, a full collection walks
            # only what requests made. Every request in flight waits one out; over 4,000
            # webhook messages in process: one of 139 ms without this, four of 10-19 ms with
            # it, the slowest message 148 -> 30 ms (docs/performance.md, "Collector").
            gc.freeze()
            try:
                yield
            finally:
                # A graceful stop first delivers what is due (bounded): records the outbox
                # still holds afterwards are sent by the next start.
                with anyio.move_on_after(_DRAIN_ON_STOP):
                    await services.outbox.drain_once()
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                gc.unfreeze()  # an embedding process (tests) collects this app's cycles again

    app = offline_app(title="coatcheck", version=__version__, lifespan=lifespan)
    install_handlers(app)
    _mount(app, channel, settings)
    app.add_middleware(
        BodyLimits, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth
    )
    app.add_middleware(RequestContext)  # outermost: request ids, route-layer metrics
    return app
