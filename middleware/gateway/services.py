"""What the composition root builds per worker, for the HTTP layers to hand out.

The app factory (`coatcheck.middleware.app`) builds one `Services` in its lifespan and
keeps it on `app.state`; routes and the log viewer take the one service they need through
FastAPI dependencies (`service/deps.py`, `ui/deps.py`).  No domain function receives this
object: each service was built with exactly the collaborators it uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.checks import Checks
from coatcheck.middleware.gateway.conversation import ConversationService
from coatcheck.middleware.gateway.exports import Exporter
from coatcheck.middleware.gateway.external import ExternalValues
from coatcheck.middleware.gateway.lifecycle import Lifecycle
from coatcheck.middleware.gateway.llm_chat import LlmChats
from coatcheck.middleware.gateway.outbox import OutboxWorker
from coatcheck.middleware.gateway.records import ConversationRecords
from coatcheck.middleware.gateway.redaction import RedactionService
from coatcheck.middleware.gateway.refusals import RefusalAudit
from coatcheck.middleware.gateway.reveals import Reveals
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.middleware.gateway.store.db import Clock
from coatcheck.middleware.gateway.subjects import Subjects
from coatcheck.middleware.gateway.sweeper import Sweeper
from coatcheck.vault import Vault

__all__ = ["Services", "services_of"]


@dataclass(frozen=True)
class Services:
    """The worker's composed domain objects (and the few infrastructure pieces the HTTP
    layers read directly: the vault for the audit view and the session key, its engine
    for the probes, the clock)."""

    engine: Engine  # the vault's engine (the composition root owns it: `/health`, `/ready`)
    store: GatewayStore
    vault: Vault
    conversations: ConversationService
    redaction: RedactionService
    reveals: Reveals
    checks: Checks
    external: ExternalValues
    refusals: RefusalAudit
    lifecycle: Lifecycle
    records: ConversationRecords
    exporter: Exporter
    outbox: OutboxWorker
    sweeper: Sweeper
    subjects: Subjects
    clock: Clock
    # Staff roles that open the log viewer's audit view (config `ui.audit_roles`; admin
    # always may).
    audit_roles: frozenset[Role] = frozenset({Role.AUDITOR, Role.ADMIN})
    llm: LlmChats | None = None  # the OpenAI-compatible gateway, when a provider is set


def services_of(state: Any) -> Services:
    """The `Services` kept on an app's `state` (set by the lifespan)."""
    services: Services = state.services
    return services
