"""The per-worker gateway object: everything the lifespan builds, in one typed place.

Built in the lifespan (never at import), so `--workers N` gives each worker its own
engine, vault, detector and HTTP session, and tests build a fresh one per app.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from middleware.detect import DetectConfig, Detector
from middleware.pipeline import Redactor
from middleware.service.botclient import BotClient
from middleware.service.recent import RecentValues
from middleware.settings import Settings
from vault import GrantSigner, Vault

__all__ = ["Gateway"]


@dataclass
class Gateway:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    vault: Vault
    signer: GrantSigner
    detector: Detector
    redactor: Redactor
    detect_config: DetectConfig
    bot: BotClient
    actions: dict[str, frozenset[str]]
    grant_ttl: float
    recent: RecentValues = field(default_factory=RecentValues)
    clock: Callable[[], float] = field(default=time.time)
