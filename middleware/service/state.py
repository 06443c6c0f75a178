"""The per-worker gateway object: everything the lifespan builds, in one typed place.

Built in the lifespan (never at import), so `--workers N` gives each worker its own
engine, vault, detector and HTTP session, and tests build a fresh one per app.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from anyio import CapacityLimiter
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from coatcheck.middleware.detect import DetectConfig, Detector
from coatcheck.middleware.export import ExportSink
from coatcheck.middleware.external import ExternalResolver
from coatcheck.middleware.pipeline import Redactor
from coatcheck.middleware.service.botclient import BotClient
from coatcheck.middleware.service.keycache import KeyCache
from coatcheck.middleware.service.recent import RecentValues
from coatcheck.middleware.settings import Settings
from coatcheck.vault import GrantSigner, Vault

__all__ = ["Gateway"]


@dataclass
class Gateway:
    settings: Settings
    engine: Engine
    reader: Engine  # lock-free reads (readdb.make_read_engine)
    writer: Engine  # the gateway's own per-message writes (readdb.make_write_engine)
    sessions: sessionmaker[Session]
    vault: Vault
    signer: GrantSigner
    detector: Detector
    redactor: Redactor
    detect_config: DetectConfig
    bot: BotClient
    actions: dict[str, frozenset[str]]
    grant_ttl: float
    keys: KeyCache = field(default_factory=lambda: KeyCache(ttl=0))
    db_limiter: CapacityLimiter = field(default_factory=lambda: CapacityLimiter(1))
    recent: RecentValues = field(default_factory=RecentValues)
    clock: Callable[[], float] = field(default=time.time)
    # Bring-your-own-vault: None when no type is held externally (external_reveal.py).
    resolver: ExternalResolver | None = None
    # Where POST /v1/conversations/{id}/export delivers (export_routes.py); () = nowhere.
    export_sinks: tuple[ExportSink, ...] = ()
