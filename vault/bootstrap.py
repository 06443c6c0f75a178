"""One way to open a ready vault, shared by the CLI and the service."""

from __future__ import annotations

import time
from collections.abc import Callable

from coatcheck.vault.db import make_engine, upgrade
from coatcheck.vault.keys.config import ProviderSettings, open_provider
from coatcheck.vault.lifecycle import Policies
from coatcheck.vault.vault import Vault

__all__ = ["open_vault"]


def open_vault(
    database_url: str,
    keys: ProviderSettings,
    tenant: str = "default",
    *,
    clock: Callable[[], float] = time.time,
    migrate: bool = True,
    policies: Policies | None = None,
) -> Vault:
    """Open the key provider (its root validated: before the database is touched), upgrade
    the schema (unless told not to) and build the vault; `Vault.close()` releases both."""
    provider = open_provider(keys)
    try:
        engine = make_engine(database_url)
        if migrate:
            upgrade(engine)
        return Vault(engine, provider, tenant=tenant, clock=clock, policies=policies, owns=True)
    except BaseException:
        provider.close()
        raise
