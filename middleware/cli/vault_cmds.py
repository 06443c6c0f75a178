"""`coatcheck db upgrade`, `coatcheck keys rotate`, `coatcheck audit verify`.

Thin wrappers: settings come from `coatcheck.middleware.settings.load_settings`, the vault
from `coatcheck.vault.open_vault`, so the CLI and the service open the vault the same way.
Set-up failures (a bad setting or key, an unreachable database) are one line, exit 2.
"""

from __future__ import annotations

import typer

from coatcheck.middleware.cli.app import app
from coatcheck.middleware.cli.errors import one_line_errors
from coatcheck.middleware.settings import load_settings
from coatcheck.vault import Vault, open_vault, upgrade

__all__ = ["audit_app", "db_app", "keys_app"]

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="Key-encryption keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")


def _open() -> Vault:
    with one_line_errors():
        settings = load_settings()
        secret = settings.master_key.get_secret_value() if settings.master_key else None
        return open_vault(settings.database_url, secret, settings.key_file, settings.tenant)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (safe while other workers start)."""
    with one_line_errors():
        upgrade(load_settings().database_url)
    typer.echo("database schema is up to date")


@keys_app.command("rotate")
def keys_rotate(actor: str = typer.Option("cli", help="Who rotates (audited).")) -> None:
    """Add a KEK version and re-wrap every conversation data key under it."""
    version = _open().rotate(actor)
    typer.echo(f"rotated: KEK version {version} is now the newest")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit hash chain; exit 1 naming the first bad row."""
    report = _open().verify_audit()
    if not report.ok:
        typer.echo(
            f"audit chain BROKEN at row {report.first_bad} ({report.rows} rows verified before it)",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"audit chain ok: {report.rows} rows")
