"""`coatcheck serve` (the gateway under uvicorn) and `coatcheck apikey create --role ROLE`.

`serve` applies migrations, creates the master key file and the starter API keys once,
before any worker starts, then hands uvicorn an import string and `factory=True` so
`--workers N` works (each worker builds its own app through the lifespan).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import typer

from coatcheck.middleware.cli.app import app

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from coatcheck.middleware.settings import Settings

__all__ = ["apikey_app"]

apikey_app = typer.Typer(help="Manage API keys (stored hashed; shown once).", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")

_ROLES = "channel, bot, action-server, viewer, agent, auditor, admin"


def _prepare() -> tuple[Settings, Engine]:
    """Validated settings (errors name the variable) and an engine; creates the key file."""
    from coatcheck.middleware.detect.errors import DetectError
    from coatcheck.middleware.service.app import create_app
    from coatcheck.middleware.service.bootstrap import check_keys
    from coatcheck.middleware.settings import SettingsError, load_settings
    from coatcheck.vault import VaultError
    from coatcheck.vault.db import make_engine

    try:
        settings = load_settings()
        # Every YAML section is parsed here, once, so a bad field is one line naming it and
        # exit 2 (not a traceback per worker while uvicorn's supervisor restarts them).
        create_app(settings)
        check_keys(settings)  # the key provider before the database: one line if it fails
    except (SettingsError, ValueError, DetectError, VaultError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    engine = make_engine(settings.database_url)
    return settings, engine


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default COATCHECK_HOST)."),
    port: int | None = typer.Option(None, help="Port (default COATCHECK_PORT)."),
    workers: int = typer.Option(1, min=1, max=64, help="uvicorn worker processes."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Run the gateway (the webhook, the vault API and /health)."""
    import uvicorn

    from coatcheck.middleware.service.bootstrap import bootstrap

    settings, engine = _prepare()
    created = bootstrap(settings, engine)
    engine.dispose()
    if created is not None:
        typer.echo(f"first run: starter API keys (channel, admin) written to {created}")
    uvicorn.run(
        "coatcheck.middleware.service.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=log_level,
        log_config=_log_config(log_level),
    )


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging config plus a root handler at the same level.

    Without a root handler the application's and libraries' own records (DEBUG included)
    would be dropped; with it they go through the same redacting filter as uvicorn's.
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["root"] = {"handlers": ["default"], "level": level.upper()}
    return config


@apikey_app.command("create")
def apikey_create(
    role: str = typer.Option(..., help=f"One of: {_ROLES}."),
) -> None:
    """Create an API key for ROLE and print it once (only its SHA-256 is stored)."""
    from sqlalchemy.orm import sessionmaker

    from coatcheck.middleware.service.apikeys import Role, create_key
    from coatcheck.middleware.service.store import guarded
    from coatcheck.vault.db import upgrade

    try:
        parsed = Role(role)
    except ValueError:
        typer.echo(f"error: --role must be one of: {_ROLES}", err=True)
        raise typer.Exit(2) from None
    _, engine = _prepare()
    upgrade(engine)
    with guarded(sessionmaker(engine)) as session:
        key = create_key(session, parsed)
    engine.dispose()
    typer.echo(key)
