"""First-run set-up: master key file, schema upgrade, and a starter pair of API keys.

`coatcheck serve` runs this once before starting workers (so N workers do not race to
create keys); each worker's lifespan runs it again, where it is a no-op.  The starter keys
(one `channel`, one `admin`) go to a 0600 file; only the file's path is ever printed.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.middleware.settings import Settings
from coatcheck.vault import load_master_key
from coatcheck.vault.db import upgrade

__all__ = ["bootstrap", "master_key"]


def master_key(settings: Settings) -> bytes:
    """The validated master key (the key file is created 0600 on first run)."""
    env = settings.master_key.get_secret_value() if settings.master_key is not None else None
    return load_master_key(env, settings.key_file)


def bootstrap(settings: Settings, engine: Engine) -> Path | None:
    """Upgrade the schema; with no API keys yet, create the starter keys and return the file."""
    upgrade(engine)
    if settings.apikeys_file.exists():
        return None  # an operator removed the keys on purpose: never recreated
    try:
        created = GatewayStore(engine).keys.create_first(
            (Role.CHANNEL, Role.ADMIN), lambda keys: _write_private(settings.apikeys_file, keys)
        )
    except FileExistsError:
        return None  # another worker won the race; its keys are the starter keys
    return settings.apikeys_file if created else None


def _write_private(path: Path, keys: dict[Role, str]) -> None:
    lines = "".join(f"{role.value}={key}\n" for role, key in keys.items())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(lines)
