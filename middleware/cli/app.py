"""The `coatcheck` typer application; command groups register themselves on it."""

from __future__ import annotations

import typer

from coatcheck import __version__

__all__ = ["app"]

app = typer.Typer(
    name="coatcheck",
    help="coatcheck: a PII vault in front of your chatbot.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from coatcheck.middleware.detect import compiled  # (only when asked: start-up cost)

        build = "compiled (mypyc)" if compiled() else "Python"
        typer.echo(f"coatcheck {__version__} (detector: {build})")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """coatcheck: a PII vault in front of your chatbot."""
