"""First-run set-up: the key provider's root, schema upgrade, a starter pair of API keys.

`coatcheck serve` runs this once before starting workers (so N workers do not race to
create keys); each worker's lifespan runs it again, where it is a no-op.  The starter keys
(one `channel`, one `admin`) go to a 0600 file; only the file's path is ever printed.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from coatcheck.middleware.service.apikeys import Role, count_keys, create_key
from coatcheck.middleware.service.store import guarded
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
    try:
        with guarded(sessionmaker(engine)) as session:
            if count_keys(session) > 0 or settings.apikeys_file.exists():
                return None  # keys exist, or an operator removed them on purpose
            keys = {role: create_key(session, role) for role in (Role.CHANNEL, Role.ADMIN)}
            _write_private(settings.apikeys_file, keys)
    except FileExistsError:
        return None  # another worker won the race; its keys are the starter keys
    return settings.apikeys_file


def _write_private(path: Path, keys: dict[Role, str]) -> None:
    lines = "".join(f"{role.value}={key}\n" for role, key in keys.items())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(lines)
