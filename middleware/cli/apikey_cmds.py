"""`coatcheck apikey create|list|revoke`: API keys, stored as SHA-256 digests.

A key is printed once, at creation; `list` shows each key's public prefix, role and age
(never the key, never its digest); `revoke PREFIX` deletes it and ends the log-viewer
sessions signed in with it.  Each running worker's revocation watch evicts it from its
key cache within about a second (`service/auth.py`, `REVOCATION_POLL_SECONDS`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from coatcheck.middleware.cli.app import app
from coatcheck.middleware.cli.errors import fail, one_line_errors

if TYPE_CHECKING:
    from coatcheck.middleware.gateway.store import GatewayStore

__all__ = ["apikey_app"]

apikey_app = typer.Typer(help="Manage API keys (stored hashed; shown once).", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


def _roles() -> str:
    from coatcheck.middleware.gateway.apikeys import Role

    return ", ".join(role.value for role in Role)


def _store() -> GatewayStore:
    """The gateway's tables on the upgraded database (errors: one line, exit 2)."""
    from coatcheck.middleware.cli.serve_cmd import prepare
    from coatcheck.middleware.gateway.store import GatewayStore
    from coatcheck.vault.db import upgrade

    _, engine = prepare()
    with one_line_errors():
        upgrade(engine)
    return GatewayStore(engine)


@apikey_app.command("create")
def apikey_create(
    role: str = typer.Option(
        ...,
        help="channel, bot, action-server, viewer, agent, auditor, "
        "monitor (reads /metrics) or admin.",
    ),
) -> None:
    """Create an API key for ROLE and print it once (only its SHA-256 is stored)."""
    from coatcheck.middleware.gateway.apikeys import Role

    try:
        parsed = Role(role)
    except ValueError:
        fail(f"--role must be one of: {_roles()}")
    store = _store()
    with one_line_errors():
        key = store.keys.create(parsed)
    store.writer.dispose()
    typer.echo(key)


@apikey_app.command("list")
def apikey_list() -> None:
    """List the keys: public prefix, role, creation time (UTC). Never the key itself."""
    store = _store()
    with one_line_errors():
        rows = store.keys.listing()
    store.writer.dispose()
    typer.echo(f"{'PREFIX':<14}{'ROLE':<15}CREATED (UTC)")
    for row in rows:
        when = datetime.fromtimestamp(row.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"{row.prefix:<14}{row.role.value:<15}{when}")


@apikey_app.command("revoke")
def apikey_revoke(
    prefix: str = typer.Argument(..., help="The key's public prefix (`apikey list`)."),
) -> None:
    """Delete a key (by its prefix) and end its log-viewer sessions."""
    store = _store()
    with one_line_errors():
        revoked = store.keys.revoke(prefix)
    store.writer.dispose()
    if revoked is None:
        fail("no API key has that prefix (see `coatcheck apikey list`)", code=1)
    typer.echo(
        f"revoked {revoked.role.value} key {prefix}; {revoked.sessions_ended} log-viewer "
        "session(s) ended. Running workers refuse it within about a second."
    )
