"""Console entry point: `coatcheck` (typer).

Each command group lives in its own module and registers on the shared `app`;
importing them here is what makes the commands appear.
"""

from coatcheck.middleware.cli import (  # noqa: F401  (registration)
    apikey_cmds,
    external_cmds,
    redact_cmd,
    serve_cmd,
    vault_cmds,
)
from coatcheck.middleware.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
