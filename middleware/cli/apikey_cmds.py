"""`coatcheck apikey create|list|revoke`: API keys, stored as SHA-256 digests.

A key is printed once, at creation; `list` shows each key's public prefix, role and age
(never the key, never its digest); `revoke PREFIX` deletes it and ends the log-viewer
sessions signed in with it.  A worker that verified the key in the last
`COATCHECK_APIKEY_CACHE_SECONDS` (10 s) may still accept it until that runs out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from coatcheck.middleware.cli.app import app
from coatcheck.middleware.cli.errors import fail, one_line_errors

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["apikey_app"]

apikey_app = typer.Typer(help="Manage API keys (stored hashed; shown once).", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


def _roles() -> str:
    from coatcheck.middleware.service.apikeys import Role

    return ", ".join(role.value for role in Role)


def _sessions() -> sessionmaker[Session]:
    """A session factory on the upgraded database (errors: one line, exit 2)."""
    from sqlalchemy.orm import sessionmaker

    from coatcheck.middleware.cli.serve_cmd import prepare
    from coatcheck.vault.db import upgrade

    _, engine = prepare()
    with one_line_errors():
        upgrade(engine)
    return sessionmaker(engine)


@apikey_app.command("create")
def apikey_create(
    role: str = typer.Option(
        ...,
        help="channel, bot, action-server, viewer, agent, auditor, "
        "monitor (reads /metrics) or admin.",
    ),
) -> None:
    """Create an API key for ROLE and print it once (only its SHA-256 is stored)."""
    from coatcheck.middleware.service.apikeys import Role, create_key

    try:
        parsed = Role(role)
    except ValueError:
        fail(f"--role must be one of: {_roles()}")
    factory = _sessions()
    with one_line_errors(), factory.begin() as session:
        key = create_key(session, parsed)
    typer.echo(key)


@apikey_app.command("list")
def apikey_list() -> None:
    """List the keys: public prefix, role, creation time (UTC). Never the key itself."""
    from coatcheck.middleware.service.apikeys import list_keys

    factory = _sessions()
    with one_line_errors(), factory() as session:
        rows = [(row.prefix, row.role, row.created_at) for row in list_keys(session)]
    typer.echo(f"{'PREFIX':<14}{'ROLE':<15}CREATED (UTC)")
    for prefix, role, created in rows:
        when = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"{prefix:<14}{role:<15}{when}")


@apikey_app.command("revoke")
def apikey_revoke(
    prefix: str = typer.Argument(..., help="The key's public prefix (`apikey list`)."),
) -> None:
    """Delete a key (by its prefix) and end its log-viewer sessions."""
    from coatcheck.middleware.service.apikeys import revoke_key
    from coatcheck.middleware.ui.session import end_sessions_of

    factory = _sessions()
    with one_line_errors(), factory.begin() as session:
        role = revoke_key(session, prefix)
        ended = end_sessions_of(session, prefix) if role is not None else 0
    if role is None:
        fail("no API key has that prefix (see `coatcheck apikey list`)", code=1)
    typer.echo(
        f"revoked {role.value} key {prefix}; {ended} log-viewer session(s) ended. Workers that "
        "verified it in the last COATCHECK_APIKEY_CACHE_SECONDS may accept it until then."
    )
