"""The FastAPI app factory (`coatcheck.middleware.service.app:create_app`, uvicorn `factory=True`).

Nothing is built at import: the lifespan creates the engine, the vault, the detector and
redactor, the aiohttp session and the log filter, and tears them down again, so each
uvicorn worker owns its own and tests can build as many apps as they like.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from anyio import CapacityLimiter
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from coatcheck import __version__
from coatcheck.middleware.detect import Detector, load_config
from coatcheck.middleware.export import build_sinks
from coatcheck.middleware.observability.docs import offline_app
from coatcheck.middleware.observability.instrument import MeteredBot, MeteredVault
from coatcheck.middleware.observability.requestid import RequestContext
from coatcheck.middleware.observability.routes import ops_router
from coatcheck.middleware.pipeline import Redactor
from coatcheck.middleware.service.bootstrap import bootstrap
from coatcheck.middleware.service.botclient import BotClient, EchoBot, HttpBot
from coatcheck.middleware.service.export_routes import load_export_section
from coatcheck.middleware.service.export_routes import router as export_router
from coatcheck.middleware.service.external_reveal import external_resolver, load_external_section
from coatcheck.middleware.service.handlers import install_handlers
from coatcheck.middleware.service.keycache import KeyCache
from coatcheck.middleware.service.lifecycle import load_policies
from coatcheck.middleware.service.limits import BodyLimits
from coatcheck.middleware.service.logfilter import (
    detector_redactor,
    install_log_filter,
    remove_log_filter,
)
from coatcheck.middleware.service.readdb import make_read_engine, make_write_engine
from coatcheck.middleware.service.recent import RecentValues
from coatcheck.middleware.service.routes import router
from coatcheck.middleware.service.state import Gateway
from coatcheck.middleware.service.subject_routes import router as subject_router
from coatcheck.middleware.service.sweeper import run_sweeper
from coatcheck.middleware.settings import Settings, load_settings
from coatcheck.middleware.ui import router as ui_router
from coatcheck.vault import GrantSigner
from coatcheck.vault.db import make_engine
from coatcheck.vault.keys import open_provider

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _actions(data: dict[str, Any]) -> dict[str, frozenset[str]]:
    """The `actions:` allow-list ({action: [TYPE, ...]}); names the field when malformed."""
    raw = data.get("actions") or {}
    if not isinstance(raw, dict) or not all(
        isinstance(types, list) and all(isinstance(t, str) for t in types) for types in raw.values()
    ):
        raise ValueError("COATCHECK_CONFIG: actions must map action names to lists of types")
    return {str(name): frozenset(types) for name, types in raw.items()}


def _grant_ttl(data: dict[str, Any]) -> float:
    section = data.get("grants") or {}
    ttl = section.get("ttl_seconds", 30) if isinstance(section, dict) else None
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or not 0 < ttl <= 3600:
        raise ValueError("COATCHECK_CONFIG: grants.ttl_seconds must be a number in (0, 3600]")
    return float(ttl)


def _db_threads(settings: Settings, engine: Engine) -> int:
    if settings.db_threads is not None:
        return settings.db_threads
    return 1 if engine.dialect.name == "sqlite" else 8


def create_app(
    settings: Settings | None = None,
    *,
    bot: BotClient | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """A configured app; `bot` and `clock` are injectable (tests, embedding)."""
    settings = settings if settings is not None else load_settings()
    data = settings.load_yaml()
    policies = load_policies(data)  # retention and TTL per type (docs/lifecycle.md)
    detect_config = load_config(data)
    actions, grant_ttl = _actions(data), _grant_ttl(data)
    export_section = load_export_section(data)
    external = load_external_section(data, detect_config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The key provider first: a bad key setting stops the start before the database
        # is touched (one line naming the setting).
        provider = open_provider(settings.provider_settings())
        engine = make_engine(settings.database_url)
        reader = make_read_engine(settings.database_url)
        writer = make_write_engine(settings.database_url, engine)
        created = bootstrap(settings, engine)
        if created is not None:
            log.warning("first run: starter API keys written to %s", created)
        detector = Detector(detect_config)
        recent = RecentValues()
        log_filter = install_log_filter(detector_redactor(detector, recent))
        vault = MeteredVault(
            engine,
            provider,
            tenant=settings.tenant,
            clock=clock,
            policies=policies,
            bucket_seconds=settings.kek_bucket_seconds,
            grace_seconds=settings.kek_grace_seconds,
        )
        async with aiohttp.ClientSession() as http, external_resolver(external, clock) as resolver:
            client = bot
            if client is None:
                client = (
                    EchoBot()
                    if settings.bot_url is None
                    else HttpBot(http, settings.bot_url, settings.bot_timeout_seconds)
                )
            client = MeteredBot(client)
            app.state.gateway = Gateway(
                settings=settings,
                engine=engine,
                reader=reader,
                writer=writer,
                keys=KeyCache(settings.apikey_cache_seconds, clock=clock),
                db_limiter=CapacityLimiter(_db_threads(settings, engine)),
                sessions=sessionmaker(engine),
                vault=vault,
                signer=GrantSigner(vault.grant_key),
                detector=detector,
                redactor=Redactor(detector, vault, detect_config),
                detect_config=detect_config,
                bot=client,
                actions=actions,
                grant_ttl=grant_ttl,
                recent=recent,
                clock=clock,
                resolver=resolver,
                export_sinks=build_sinks(export_section),
            )
            sweeper = None
            if settings.sweep_interval_seconds > 0:
                sweep = run_sweeper(app.state.gateway, settings.sweep_interval_seconds)
                sweeper = asyncio.create_task(sweep)
            try:
                yield
            finally:
                if sweeper is not None:
                    sweeper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sweeper
                remove_log_filter(log_filter)
                reader.dispose()
                writer.dispose()
                engine.dispose()
                provider.close()

    app = offline_app(title="coatcheck", version=__version__, lifespan=lifespan)
    install_handlers(app)
    app.include_router(router)
    app.include_router(export_router)
    app.include_router(subject_router)  # a person's erasure and export (docs/keys.md)
    app.include_router(ui_router)  # the log viewer at /ui/ (docs/ui.md)
    app.include_router(ops_router)  # /metrics, /ready, the endpoint test (docs/operations.md)
    app.add_middleware(
        BodyLimits, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth
    )
    app.add_middleware(RequestContext)  # outermost: request ids, route-layer metrics
    return app
