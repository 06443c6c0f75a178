"""One way to open a ready vault, shared by the CLI and the service."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from coatcheck.vault.db import make_engine, upgrade
from coatcheck.vault.keyfile import load_master_key
from coatcheck.vault.vault import Vault

__all__ = ["open_vault"]


def open_vault(
    database_url: str,
    master_key_b64: str | None,
    key_file: Path,
    tenant: str = "default",
    *,
    clock: Callable[[], float] = time.time,
    migrate: bool = True,
) -> Vault:
    """Validate the master key, upgrade the schema (unless told not to) and build the vault."""
    master = load_master_key(master_key_b64, key_file)
    engine = make_engine(database_url)
    if migrate:
        upgrade(engine)
    return Vault(engine, master, tenant=tenant, clock=clock)
