"""`Annotated` dependency aliases so routes declare what they need in their signature."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from coatcheck.middleware.service.apikeys import Role
from coatcheck.middleware.service.auth import get_gateway, require
from coatcheck.middleware.service.state import Gateway
from coatcheck.vault import Vault

__all__ = [
    "AdminKey",
    "BotSideKey",
    "ChannelKey",
    "EndKey",
    "GatewayDep",
    "GrantKey",
    "HistoryKey",
    "RedactKey",
    "RevealKey",
    "VaultDep",
]


async def _vault(gw: Annotated[Gateway, Depends(get_gateway)]) -> Vault:
    return gw.vault


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
VaultDep = Annotated[Vault, Depends(_vault)]
ChannelKey = Annotated[Role, Depends(require(Role.CHANNEL))]
RedactKey = Annotated[Role, Depends(require(Role.CHANNEL, Role.BOT, Role.ACTION_SERVER))]
GrantKey = Annotated[Role, Depends(require(Role.ACTION_SERVER))]
RevealKey = Annotated[Role, Depends(require(Role.ACTION_SERVER, Role.AGENT, Role.AUDITOR))]
BotSideKey = Annotated[Role, Depends(require(Role.BOT, Role.ACTION_SERVER))]
EndKey = Annotated[Role, Depends(require(Role.CHANNEL, Role.BOT))]
HistoryKey = Annotated[Role, Depends(require(Role.VIEWER, Role.AGENT, Role.AUDITOR))]
AdminKey = Annotated[Role, Depends(require())]
