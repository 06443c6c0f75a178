"""First-run set-up: the key provider's root, schema upgrade, a starter pair of API keys.

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
from coatcheck.vault.db import upgrade
from coatcheck.vault.keys import open_provider

__all__ = ["bootstrap", "check_keys"]


def check_keys(settings: Settings) -> None:
    """Open and close the key provider once: its root is validated (a key file is made
    0600 on first run, a token logged into); errors name the setting (`KeyConfigError`)."""
    open_provider(settings.provider_settings()).close()


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
