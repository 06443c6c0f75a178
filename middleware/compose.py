"""The composition root's wiring: from settings and config to the worker's `Services`.

Built in each worker's lifespan (never at import), so `--workers N` gives each worker its
own engines, vault, detector and HTTP sessions, and tests build as many as they like.
Every domain service gets exactly the collaborators it uses; this is the only place that
knows them all.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
from anyio import CapacityLimiter
from sqlalchemy import Engine

from coatcheck.middleware.adapters import EchoBot, RasaRestBot
from coatcheck.middleware.config import CoatcheckConfig, build_detector
from coatcheck.middleware.export import build_sinks
from coatcheck.middleware.external import EndpointConfig, ExternalResolver
from coatcheck.middleware.gateway.conversation import ConversationService, TurnLimits
from coatcheck.middleware.gateway.exports import Exporter
from coatcheck.middleware.gateway.external import ExternalValues
from coatcheck.middleware.gateway.lifecycle import Lifecycle
from coatcheck.middleware.gateway.masking import detector_redactor
from coatcheck.middleware.gateway.ports import BotAdapter
from coatcheck.middleware.gateway.ratelimit import RateLimit
from coatcheck.middleware.gateway.recent import RecentValues
from coatcheck.middleware.gateway.records import ConversationRecords
from coatcheck.middleware.gateway.redaction import RedactionService
from coatcheck.middleware.gateway.refusals import RefusalAudit
from coatcheck.middleware.gateway.replies import Replies
from coatcheck.middleware.gateway.reveals import Reveals
from coatcheck.middleware.gateway.services import Services
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.middleware.gateway.sweeper import Sweeper
from coatcheck.middleware.pipeline import Redactor
from coatcheck.middleware.service.auth import Authenticator
from coatcheck.middleware.service.bootstrap import bootstrap, master_key
from coatcheck.middleware.service.keycache import KeyCache
from coatcheck.middleware.service.logfilter import install_log_filter, remove_log_filter
from coatcheck.middleware.service.readdb import make_read_engine, make_write_engine
from coatcheck.middleware.settings import Settings
from coatcheck.vault import GrantSigner, KeyRing, Vault
from coatcheck.vault.db import make_engine

__all__ = ["compose"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]


def _db_threads(settings: Settings, engine: Engine) -> int:
    if settings.db_threads is not None:
        return settings.db_threads
    return 1 if engine.dialect.name == "sqlite" else 8


@asynccontextmanager
async def _external_resolver(
    endpoints: dict[str, EndpointConfig], clock: Clock
) -> AsyncIterator[ExternalResolver | None]:
    """The worker's resolver with its own HTTP session, or None when nothing is external.

    Its own session, with no cookie jar: nothing a customer endpoint sets is kept, and
    nothing of the bot's session travels to the customer.
    """
    if not endpoints:
        yield None
        return
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield ExternalResolver(endpoints, session, clock=clock)


@asynccontextmanager
async def compose(
    settings: Settings,
    config: CoatcheckConfig,
    *,
    channel: str,
    bot: BotAdapter | None,
    clock: Clock,
) -> AsyncIterator[tuple[Services, Authenticator]]:
    """The worker's services and its key authenticator, torn down on exit.

    `channel` is the channel adapter's name (exports record it); `bot` None means the
    configured Rasa REST bot (`COATCHECK_BOT_URL`), or the echo bot without one.
    """
    engine = make_engine(settings.database_url)
    reader = make_read_engine(settings.database_url)
    writer = make_write_engine(settings.database_url, engine)
    try:
        key = master_key(settings)
        created = bootstrap(settings, engine)
        if created is not None:
            log.warning("first run: starter API keys written to %s", created)
        detect = config.detect_config()
        detector = build_detector(detect)
        recent = RecentValues()
        log_filter = install_log_filter(detector_redactor(detector, recent))
        try:
            vault = Vault(
                engine, key, tenant=settings.tenant, clock=clock, policies=config.policies()
            )
            async with (
                aiohttp.ClientSession() as http,
                _external_resolver(config.external, clock) as resolver,
            ):
                bot_adapter = bot
                if bot_adapter is None:
                    bot_adapter = (
                        EchoBot()
                        if settings.bot_url is None
                        else RasaRestBot(http, settings.bot_url, settings.bot_timeout_seconds)
                    )
                limiter = CapacityLimiter(_db_threads(settings, engine))
                store = GatewayStore(writer, reader, clock)
                exporter = Exporter(
                    store,
                    build_sinks(config.export, http),
                    tenant=settings.tenant,
                    channel=channel,
                    limiter=limiter,
                )
                lifecycle = Lifecycle(
                    store,
                    vault,
                    clock=clock,
                    idle_timeout=settings.idle_timeout_seconds,
                    listeners=(exporter.at_end,),
                )
                redactor = Redactor(detector, vault, detect)
                refusals = RefusalAudit(vault, tenant=settings.tenant, clock=clock)
                external = ExternalValues(vault, resolver)
                replies = Replies(
                    store, vault, lifecycle, confirm_types=detect.confirm_types(), clock=clock
                )
                limits = TurnLimits(
                    settings.max_message_chars,
                    RateLimit(settings.rate_limit, settings.rate_window_seconds),
                )
                services = Services(
                    store=store,
                    vault=vault,
                    conversations=ConversationService(
                        store=store,
                        redactor=redactor,
                        vault=vault,
                        bot=bot_adapter,
                        replies=replies,
                        recent=recent,
                        limits=limits,
                        limiter=limiter,
                        clock=clock,
                    ),
                    redaction=RedactionService(
                        store=store,
                        redactor=redactor,
                        vault=vault,
                        lifecycle=lifecycle,
                        recent=recent,
                    ),
                    reveals=Reveals(
                        vault,
                        GrantSigner(KeyRing.from_master_key(key)),
                        external=external,
                        refusals=refusals,
                        mask_purpose=detector_redactor(detector),
                        actions=config.actions,
                        grant_ttl=config.grants.ttl_seconds,
                        clock=clock,
                    ),
                    external=external,
                    refusals=refusals,
                    lifecycle=lifecycle,
                    records=ConversationRecords(store, vault),
                    exporter=exporter,
                    sweeper=Sweeper(
                        store,
                        vault,
                        lifecycle,
                        clock=clock,
                        rate_window=settings.rate_window_seconds,
                        limiter=limiter,
                    ),
                    clock=clock,
                )
                auth = Authenticator(
                    store.keys, KeyCache(settings.apikey_cache_seconds, clock=clock)
                )
                yield services, auth
        finally:
            remove_log_filter(log_filter)
    finally:
        reader.dispose()
        writer.dispose()
        engine.dispose()
