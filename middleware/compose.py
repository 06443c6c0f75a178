"""The composition root's wiring: from settings and config to the worker's `Services`.

Built in each worker's lifespan (never at import), so `--workers N` gives each worker its
own engines, vault, detector and HTTP sessions, and tests build as many as they like.
Every domain service gets exactly the collaborators it uses; this is the only place that
knows them all.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from anyio import CapacityLimiter
from sqlalchemy import Engine

from coatcheck.middleware.adapters import EchoBot, RasaRestBot, openai_provider
from coatcheck.middleware.config import CoatcheckConfig, build_detector
from coatcheck.middleware.detect import DetectConfig, Detector
from coatcheck.middleware.export import ExportSection, ExportSink, build_sinks, sink_key
from coatcheck.middleware.external import EndpointConfig, ExternalResolver
from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.checks import Checks
from coatcheck.middleware.gateway.conversation import ConversationService, TurnLimits
from coatcheck.middleware.gateway.exports import Exporter
from coatcheck.middleware.gateway.external import ExternalValues
from coatcheck.middleware.gateway.idempotency import MessageDigests
from coatcheck.middleware.gateway.lifecycle import Lifecycle
from coatcheck.middleware.gateway.llm_chat import LlmChats
from coatcheck.middleware.gateway.masking import detector_redactor
from coatcheck.middleware.gateway.outbox import OutboxWorker
from coatcheck.middleware.gateway.ports import BotAdapter
from coatcheck.middleware.gateway.pseudonyms import migrate_pseudonyms
from coatcheck.middleware.gateway.ratelimit import RateLimit, ValueCap
from coatcheck.middleware.gateway.recent import RecentValues
from coatcheck.middleware.gateway.records import ConversationRecords
from coatcheck.middleware.gateway.redaction import RedactionService, RedactLimits
from coatcheck.middleware.gateway.refusals import RefusalAudit
from coatcheck.middleware.gateway.replies import Replies
from coatcheck.middleware.gateway.reply_filter import ReplyFilter
from coatcheck.middleware.gateway.reveals import Reveals
from coatcheck.middleware.gateway.services import Services
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.middleware.gateway.store.placeholders import Placeholders
from coatcheck.middleware.gateway.subjects import Subjects
from coatcheck.middleware.gateway.sweeper import Sweeper
from coatcheck.middleware.llm import (
    WORD_TYPES,
    ChatCompletions,
    Exchange,
    NoResponseDetector,
    PromptRedactor,
    ResponseDetector,
    ShapedDetector,
    default_grammar,
)
from coatcheck.middleware.observability.instrument import MeteredBot, MeteredVault
from coatcheck.middleware.pipeline import Redactor
from coatcheck.middleware.render import display_for, format_reference
from coatcheck.middleware.service.auth import Authenticator
from coatcheck.middleware.service.bootstrap import bootstrap
from coatcheck.middleware.service.keycache import KeyCache
from coatcheck.middleware.service.logfilter import install_log_filter, remove_log_filter
from coatcheck.middleware.service.readdb import make_read_engine, make_write_engine
from coatcheck.middleware.settings import Settings
from coatcheck.vault import GrantSigner, Vault
from coatcheck.vault.db import make_engine
from coatcheck.vault.keys import KeyProvider, open_provider

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


@dataclass(frozen=True)
class _Parts:
    """What every worker builds first; the domain services are wired from it."""

    settings: Settings
    config: CoatcheckConfig
    clock: Clock
    engine: Engine
    vault: Vault
    store: GatewayStore
    detector: Detector
    detect: DetectConfig
    recent: RecentValues
    limiter: CapacityLimiter


def _bot(settings: Settings, http: aiohttp.ClientSession) -> BotAdapter:
    """The configured Rasa REST bot, or the echo bot when none is configured."""
    if settings.bot_url is None:
        return EchoBot()
    return RasaRestBot(http, settings.bot_url, settings.bot_timeout_seconds)


def _llm(parts: _Parts, http: aiohttp.ClientSession) -> LlmChats | None:
    """The OpenAI-compatible gateway (docs/llm.md), when a provider is configured: the
    request redactor on the vault and the placeholder table, history in the Rasa path's
    reference form, the response detector unless `llm.response_pii: pass`."""
    p, settings = parts, parts.settings
    if settings.llm_upstream_url is None:
        return None
    secret = settings.llm_upstream_api_key
    provider = openai_provider(
        http,
        settings.llm_upstream_url,
        None if secret is None else secret.get_secret_value(),
        settings.llm_timeout_seconds,
    )
    types = [c.name for c in p.config.custom_types] + list(p.config.types)

    def record_form(entity_type: str, ref_id: str, value: str) -> str:
        display = display_for(value, ref_id, p.detect.settings_for(entity_type))
        return format_reference(entity_type, ref_id, display)

    redactor = PromptRedactor(
        p.detector,
        p.vault,
        Placeholders(p.store.db, settings.tenant),
        grammar=default_grammar(types),
        record_form=record_form,
    )
    response: ResponseDetector = (
        NoResponseDetector()
        if p.config.llm.response_pii == "pass"
        else ShapedDetector(p.detector.detect, WORD_TYPES)
    )

    def core(on_exchange: Callable[[Exchange], Awaitable[None]]) -> ChatCompletions:
        return ChatCompletions(redactor, provider, response, clock=p.clock, on_exchange=on_exchange)

    rate = RateLimit(settings.rate_limit, settings.rate_window_seconds)
    return LlmChats(core, provider, store=p.store, rate=rate, limiter=p.limiter)


def _services(
    parts: _Parts,
    *,
    bot: BotAdapter,
    export: ExportSection,
    external: ExternalValues,
    channel: str,
    llm: LlmChats | None = None,
) -> Services:
    """The domain graph: each service with exactly the collaborators it uses."""
    p, settings = parts, parts.settings
    sinks: Sequence[ExportSink] = build_sinks(export)
    keys = tuple(sink_key(spec) for spec in export.sinks)
    exporter = Exporter(
        p.store, sinks, tenant=settings.tenant, channel=channel, limiter=p.limiter, sink_keys=keys
    )
    outbox = OutboxWorker(
        p.store,
        dict(zip(keys, sinks, strict=True)),
        export.outbox,
        clock=p.clock,
        limiter=p.limiter,
    )
    lifecycle = Lifecycle(
        p.store,
        p.vault,
        clock=p.clock,
        idle_timeout=settings.idle_timeout_seconds,
        listeners=(outbox.nudge,),
        in_end=(exporter.record_at_end,),
        tenant=settings.tenant,
    )
    redactor = Redactor(p.detector, p.vault, p.detect)
    refusals = RefusalAudit(p.vault)
    limits = p.config.limits
    cap = ValueCap(limits.values_per_conversation, settings.tenant)
    checks = Checks(
        p.vault,
        p.store,
        refusals,
        declared=p.config.checks.declared,
        budget=p.config.checks.budget_per_reference,
    )
    signer = GrantSigner(p.vault.grant_key)
    conversations = ConversationService(
        store=p.store,
        redactor=redactor,
        vault=p.vault,
        bot=bot,
        checks=checks,
        replies=Replies(
            p.store,
            p.vault,
            lifecycle,
            reply_filter=ReplyFilter(redactor),
            recent=p.recent,
            confirm_types=p.detect.confirm_types(),
            mask_channel=p.config.replies.mask_channel,
            clock=p.clock,
        ),
        recent=p.recent,
        limits=TurnLimits(
            settings.max_message_chars,
            RateLimit(settings.rate_limit, settings.rate_window_seconds),
            key_rate=RateLimit(limits.messages_per_key, limits.window_seconds, "api_key"),
            cap=cap,
            id_window=p.config.idempotency.window_seconds,
        ),
        limiter=p.limiter,
        clock=p.clock,
        digests=MessageDigests(p.vault.grant_key),
    )
    reveals = Reveals(
        p.vault,
        signer,
        external=external,
        refusals=refusals,
        mask_purpose=detector_redactor(p.detector),
        actions=p.config.actions,
        grant_ttl=p.config.grants.ttl_seconds,
        clock=p.clock,
    )
    sweeper = Sweeper(
        p.store,
        p.vault,
        lifecycle,
        clock=p.clock,
        rate_window=max(settings.rate_window_seconds, limits.window_seconds),
        limiter=p.limiter,
        verify_every=settings.audit_verify_seconds,
        tenant=settings.tenant,
        idempotency_window=p.config.idempotency.window_seconds,
    )
    return Services(
        engine=p.engine,
        store=p.store,
        vault=p.vault,
        conversations=conversations,
        redaction=RedactionService(
            store=p.store,
            redactor=redactor,
            vault=p.vault,
            lifecycle=lifecycle,
            recent=p.recent,
            limits=RedactLimits(
                RateLimit(limits.redact_per_key, limits.window_seconds, "api_key"),
                RateLimit(limits.redact_per_conversation, limits.window_seconds, "conversation"),
                cap,
            ),
            checks=checks,
            signer=signer,
            clock=p.clock,
        ),
        reveals=reveals,
        checks=checks,
        external=external,
        refusals=refusals,
        lifecycle=lifecycle,
        records=ConversationRecords(p.store, p.vault),
        exporter=exporter,
        outbox=outbox,
        sweeper=sweeper,
        subjects=Subjects(p.store, p.vault),
        clock=p.clock,
        audit_roles=frozenset(Role(r) for r in p.config.ui.audit_roles) | {Role.ADMIN},
        llm=llm,
    )


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
    # The key provider first: a bad key setting stops the start before the database is
    # touched (one line naming the setting); it outlives the engines and is closed last.
    with open_provider(settings.provider_settings()) as provider:
        domain = _domain(settings, config, provider, channel=channel, bot=bot, clock=clock)
        async with domain as built:
            yield built


@asynccontextmanager
async def _domain(
    settings: Settings,
    config: CoatcheckConfig,
    provider: KeyProvider,
    *,
    channel: str,
    bot: BotAdapter | None,
    clock: Clock,
) -> AsyncIterator[tuple[Services, Authenticator]]:
    """`compose` on an open key provider: the engines, the vault on the provider, the rest."""
    engine = make_engine(settings.database_url)
    reader = make_read_engine(settings.database_url)
    writer = make_write_engine(settings.database_url, engine)
    try:
        created = bootstrap(settings, engine)
        if created is not None:
            log.warning("first run: starter API keys written to %s", created)
        detect = config.detect_config()
        detector = build_detector(detect)
        recent = RecentValues()
        log_filter = install_log_filter(detector_redactor(detector, recent))
        try:
            # Metered: the vault and the bot are timed and counted (`/metrics`), never a value.
            vault = MeteredVault(
                engine,
                provider,
                tenant=settings.tenant,
                clock=clock,
                policies=config.policies(),
                bucket_seconds=settings.kek_bucket_seconds,
                grace_seconds=settings.kek_grace_seconds,
            )
            store = GatewayStore(writer, reader, clock)
            if moved := migrate_pseudonyms(vault):  # migration 0010's online step
                log.warning("migration 0010: %d conversations moved to pseudonyms", moved)
            limiter = CapacityLimiter(_db_threads(settings, engine))
            parts = _Parts(
                settings, config, clock, engine, vault, store, detector, detect, recent, limiter
            )
            async with (
                aiohttp.ClientSession() as http,
                _external_resolver(config.external, clock) as resolver,
            ):
                services = _services(
                    parts,
                    bot=MeteredBot(bot if bot is not None else _bot(settings, http)),
                    export=config.export,
                    external=ExternalValues(vault, resolver),
                    channel=channel,
                    llm=_llm(parts, http),
                )
                cache = KeyCache(settings.apikey_cache_seconds, clock=clock)
                yield services, Authenticator(store.keys, cache)
        finally:
            remove_log_filter(log_filter)
    finally:
        reader.dispose()
        writer.dispose()
        engine.dispose()
