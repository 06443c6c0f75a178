"""`coatcheck external test TYPE`: can the customer endpoint of TYPE be used right now?

Reads the same YAML config the service reads (`COATCHECK_CONFIG`, section `external:`),
then runs `coatcheck.middleware.external.probe` once: token (OAuth2), connection, TLS,
credentials and answer shape, for a made-up reference.  One line, exit 0 when it passes,
1 naming the step that failed; `--json` prints the result object instead.  The admin
route `POST /v1/external/{type}/test` runs the same probe inside the running service.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import typer

from coatcheck.middleware.cli.app import app
from coatcheck.middleware.cli.errors import fail, one_line_errors

__all__ = ["external_app"]

external_app = typer.Typer(help="Customer endpoints (bring your own vault).", no_args_is_help=True)
app.add_typer(external_app, name="external")


@external_app.command("test")
def external_test(
    entity_type: str = typer.Argument(..., metavar="TYPE", help="An entity type under external:."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Fetch a token, call the endpoint with a probe reference, say which step failed."""
    from coatcheck.middleware.detect import load_config
    from coatcheck.middleware.external.probe import probe
    from coatcheck.middleware.service.external_reveal import load_external_section
    from coatcheck.middleware.settings import load_settings

    with one_line_errors():
        data = load_settings().load_yaml()
        endpoints = load_external_section(data, load_config(data))
    config = endpoints.get(entity_type)
    if config is None:
        known = ", ".join(sorted(endpoints)) or "none"
        fail(f"{entity_type}: not under external: in COATCHECK_CONFIG (configured: {known})")

    async def run() -> dict[str, object]:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            result = await probe(entity_type, config, session)
        typer.echo(json.dumps(result.as_dict()) if as_json else result.line())
        return result.as_dict()

    if not asyncio.run(run())["ok"]:
        raise typer.Exit(1)
