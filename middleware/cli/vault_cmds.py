"""`coatcheck db`, `keys`, `audit` and `subject`: the vault's operator commands.

Thin wrappers: settings come from `coatcheck.middleware.settings.load_settings`, the vault
is opened as the service opens it (the configured key provider first, then the database,
its schema upgraded); a person's erasure and export go through the gateway's `Subjects`,
as the admin routes do, so an erasure removes the gateway's rows of the person too.
Set-up failures (a bad setting or key, an unreachable database) and refused arguments are
one line, exit 2; a broken audit chain exits 1.  docs/keys.md has the procedures these
serve (rotation, the move to PKCS#11, checkpoints, backups, a person's erasure and export).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import typer
from sqlalchemy import Engine

from coatcheck.middleware.cli.app import app
from coatcheck.middleware.cli.errors import fail, one_line_errors
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.middleware.gateway.subjects import Subjects
from coatcheck.middleware.settings import load_settings
from coatcheck.vault import Vault, make_engine, upgrade
from coatcheck.vault.keys import Checkpoint, InvalidCheckpoint, open_provider, verify_checkpoint

__all__ = ["audit_app", "db_app", "keys_app", "subject_app"]

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="Key-encryption keys and the root key.", no_args_is_help=True)
audit_app = typer.Typer(help="The MAC-linked audit chain.", no_args_is_help=True)
subject_app = typer.Typer(help="One person's data, on their request.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(subject_app, name="subject")

_ACTOR = typer.Option("cli", help="Who does it (audited).")


@contextmanager
def _opened() -> Iterator[tuple[Vault, Engine]]:
    """The configured vault and its engine (schema upgraded), released afterwards; errors
    as one line.  The key provider is opened before the database is touched."""
    with ExitStack() as stack, one_line_errors():
        settings = load_settings()
        provider = stack.enter_context(open_provider(settings.provider_settings()))
        engine = make_engine(settings.database_url)
        stack.callback(engine.dispose)
        upgrade(engine)
        yield Vault(engine, provider, tenant=settings.tenant), engine


@contextmanager
def _vault() -> Iterator[Vault]:
    with _opened() as (vault, _):
        yield vault


@contextmanager
def _subjects() -> Iterator[Subjects]:
    """A person's erasure and export, over the vault and the gateway's tables."""
    with _opened() as (vault, engine):
        yield Subjects(GatewayStore(engine), vault)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (safe while other workers start)."""
    with one_line_errors():
        upgrade(load_settings().database_url)
    typer.echo("database schema is up to date")


@keys_app.command("rotate")
def keys_rotate(actor: str = _ACTOR) -> None:
    """Fresh KEKs for every data key: each KEK is retired (its data keys re-wrapped under a
    new one, then destroyed), online."""
    with _vault() as vault:
        done = vault.rotate(actor)
    typer.echo(f"rotated: {done.destroyed} KEKs retired, {done.moved} data keys re-wrapped")


@keys_app.command("maintain")
def keys_maintain(actor: str = _ACTOR) -> None:
    """One maintenance pass (the sweeper runs it every pass): move data keys out of buckets
    that ended, re-wrap epochs from before key providers, destroy KEKs nothing needs."""
    with _vault() as vault:
        done = vault.maintain(actor)
    settled = "settled" if done.settled else "not settled yet (a reader was in the way)"
    typer.echo(
        f"maintained: {done.moved} data keys moved, {done.destroyed} KEKs destroyed, "
        f"{done.legacy_left} epochs still under a pre-provider KEK; files {settled}"
    )


@keys_app.command("rotate-root")
def keys_rotate_root(actor: str = _ACTOR) -> None:
    """Move every sealed key and KEK to the configured root (COATCHECK_KEY_PROVIDER), from
    the older roots in COATCHECK_PREVIOUS_KEY_FILES / COATCHECK_PREVIOUS_MASTER_KEY."""
    with _vault() as vault:
        done = vault.rotate_root(actor)
    typer.echo(
        f"root {done.root_id}: {done.resealed} sealed again, {done.retired} KEKs moved to it"
    )
    if done.left:
        typer.echo(f"{done.left} blobs still name an older root: run it again", err=True)
        raise typer.Exit(1)
    typer.echo("nothing names an older root: remove it from the configuration and destroy it")


def _pinned(public_key: str | None, vault: Vault) -> bytes:
    if public_key is None:
        return vault.checkpoint_signer.public_key
    try:
        raw = base64.b64decode(public_key, validate=True)
    except (binascii.Error, ValueError):
        fail("--public-key: not base64")
    if len(raw) != 32:
        fail("--public-key: an Ed25519 public key is 32 bytes")
    return raw


def _checkpoints(files: list[Path], public: bytes) -> list[Checkpoint]:
    """Every line of every file, each one's signature checked against `public`."""
    found: list[Checkpoint] = []
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            fail(f"--checkpoint: cannot read {path}")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                found.append(verify_checkpoint(line, public))
            except InvalidCheckpoint:
                message = f"--checkpoint: {path} line {number} is not signed by the pinned key"
                fail(message)
    return found


@audit_app.command("verify")
def audit_verify(
    checkpoint: list[Path] = typer.Option(  # noqa: B008
        [], help="Checkpoint file(s) kept elsewhere (JSON lines from `audit checkpoint`)."
    ),
    public_key: str | None = typer.Option(
        None, help="The pinned public key (base64, `audit public-key`); default: the vault's."
    ),
    incremental: bool = typer.Option(
        False, help="Only rows after the last good verification (what the sweeper does)."
    ),
) -> None:
    """Check the whole audit chain (read transactions only: no writer waits); exit 1
    naming the first bad row.  The result is recorded for the log viewer."""
    with _vault() as vault:
        checkpoints = _checkpoints(checkpoint, _pinned(public_key, vault)) if checkpoint else []
        report = vault.verify_audit(full=not incremental, checkpoints=checkpoints)
    if not report.ok:
        typer.echo(
            f"audit chain BROKEN at row {report.first_bad} ({report.rows} rows good before it)",
            err=True,
        )
        raise typer.Exit(1)
    behind = f", {len(checkpoints)} checkpoints hold" if checkpoints else ""
    typer.echo(f"audit chain ok: {report.rows} rows ({report.checked} checked now{behind})")


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Print the chain's head, signed (Ed25519), as one JSON line: keep it elsewhere."""
    with _vault() as vault:
        typer.echo(vault.audit_checkpoint())


@audit_app.command("public-key")
def audit_public_key() -> None:
    """Print the checkpoint signing key's public half (base64): pin it where you verify."""
    with _vault() as vault:
        typer.echo(base64.b64encode(vault.checkpoint_signer.public_key).decode("ascii"))


_SENDER = typer.Option(
    ..., "--sender", help="The person's real sender id (as the channel sends it)."
)


@subject_app.command("pseudonym")
def subject_pseudonym(sender: str = _SENDER) -> None:
    """Print the pseudonym of a sender id (how their conversations are stored)."""
    with _vault() as vault:
        typer.echo(vault.pseudonym(sender))


@subject_app.command("erase")
def subject_erase(sender: str = _SENDER, actor: str = _ACTOR) -> None:
    """Shred every conversation of one person, destroy the KEKs that wrapped them and
    delete the gateway's history, state and rate rows of their conversation ids."""
    with _subjects() as subjects:
        done = subjects.erase(sender, actor)
    bound = "final" if done.final else "final for the live database (docs/keys.md: the bound)"
    typer.echo(
        f"erased: {done.conversations} conversations, {done.shredded_epochs} data keys "
        f"shredded, {done.keks_destroyed} KEKs destroyed; {done.gateway.audit_text()}; {bound}"
    )


@subject_app.command("export")
def subject_export(sender: str = _SENDER, actor: str = _ACTOR) -> None:
    """Print one person's own vaulted values as JSON (each value's release is audited)."""
    with _subjects() as subjects:
        found = subjects.export(sender, actor)
    typer.echo(json.dumps(found.as_dict(), ensure_ascii=False, indent=2))
