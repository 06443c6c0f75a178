"""`Annotated` dependency aliases so routes declare, in their signature, the caller they
accept and the one domain service they call (read from the worker's `Services`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from coatcheck.middleware.gateway.apikeys import Caller, Role
from coatcheck.middleware.gateway.checks import Checks
from coatcheck.middleware.gateway.conversation import ConversationService
from coatcheck.middleware.gateway.exports import Exporter
from coatcheck.middleware.gateway.external import ExternalValues
from coatcheck.middleware.gateway.lifecycle import Lifecycle
from coatcheck.middleware.gateway.outbox import OutboxWorker
from coatcheck.middleware.gateway.records import ConversationRecords
from coatcheck.middleware.gateway.redaction import RedactionService
from coatcheck.middleware.gateway.reveals import Reveals
from coatcheck.middleware.gateway.services import services_of
from coatcheck.middleware.gateway.subjects import Subjects
from coatcheck.middleware.service.auth import require
from coatcheck.vault import Vault

__all__ = [
    "AdminKey",
    "BotSideKey",
    "CaptureKey",
    "ChannelKey",
    "ChecksDep",
    "ConversationsDep",
    "EndKey",
    "EngineDep",
    "ExporterDep",
    "ExternalDep",
    "GrantKey",
    "HistoryKey",
    "LifecycleDep",
    "MonitorKey",
    "OutboxDep",
    "RecordsDep",
    "RedactKey",
    "RedactionDep",
    "RevealKey",
    "RevealsDep",
    "SubjectsDep",
    "VaultDep",
]


# async: a plain `def` dependency would cost a threadpool hop per request
async def _conversations(request: Request) -> ConversationService:
    return services_of(request.app.state).conversations


async def _redaction(request: Request) -> RedactionService:
    return services_of(request.app.state).redaction


async def _reveals(request: Request) -> Reveals:
    return services_of(request.app.state).reveals


async def _checks(request: Request) -> Checks:
    return services_of(request.app.state).checks


async def _lifecycle(request: Request) -> Lifecycle:
    return services_of(request.app.state).lifecycle


async def _records(request: Request) -> ConversationRecords:
    return services_of(request.app.state).records


async def _exporter(request: Request) -> Exporter:
    return services_of(request.app.state).exporter


async def _outbox(request: Request) -> OutboxWorker:
    return services_of(request.app.state).outbox


async def _vault(request: Request) -> Vault:
    return services_of(request.app.state).vault


async def _engine(request: Request) -> Engine:
    return services_of(request.app.state).engine


async def _external(request: Request) -> ExternalValues:
    return services_of(request.app.state).external


async def _subjects(request: Request) -> Subjects:
    return services_of(request.app.state).subjects


ConversationsDep = Annotated[ConversationService, Depends(_conversations)]
RedactionDep = Annotated[RedactionService, Depends(_redaction)]
RevealsDep = Annotated[Reveals, Depends(_reveals)]
ChecksDep = Annotated[Checks, Depends(_checks)]
LifecycleDep = Annotated[Lifecycle, Depends(_lifecycle)]
RecordsDep = Annotated[ConversationRecords, Depends(_records)]
ExporterDep = Annotated[Exporter, Depends(_exporter)]
OutboxDep = Annotated[OutboxWorker, Depends(_outbox)]
VaultDep = Annotated[Vault, Depends(_vault)]
EngineDep = Annotated[Engine, Depends(_engine)]
ExternalDep = Annotated[ExternalValues, Depends(_external)]
SubjectsDep = Annotated[Subjects, Depends(_subjects)]

ChannelKey = Annotated[Caller, Depends(require(Role.CHANNEL))]
RedactKey = Annotated[Caller, Depends(require(Role.CHANNEL, Role.BOT, Role.ACTION_SERVER))]
GrantKey = Annotated[Caller, Depends(require(Role.ACTION_SERVER))]
RevealKey = Annotated[Caller, Depends(require(Role.ACTION_SERVER, Role.AGENT, Role.AUDITOR))]
BotSideKey = Annotated[Caller, Depends(require(Role.BOT, Role.ACTION_SERVER))]
# Who confirms a capture result: the action server (`actions.capture_result`); the bot
# already holds what it was sent and needs no second copy.
CaptureKey = Annotated[Caller, Depends(require(Role.ACTION_SERVER))]
EndKey = Annotated[Caller, Depends(require(Role.CHANNEL, Role.BOT))]
HistoryKey = Annotated[Caller, Depends(require(Role.VIEWER, Role.AGENT, Role.AUDITOR))]
MonitorKey = Annotated[Caller, Depends(require(Role.MONITOR))]
AdminKey = Annotated[Caller, Depends(require())]
