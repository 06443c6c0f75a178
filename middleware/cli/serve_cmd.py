"""`coatcheck serve`: the gateway under uvicorn.

`serve` does everything that can fail before any worker starts: it validates the settings
and every YAML section, opens the master key (creating the key file once), applies the
migrations, creates the starter API keys, and checks that the address can be bound.  Each
failure is one line on stderr and exit 2 (`errors.one_line_errors`).  Then it hands
uvicorn an import string and `factory=True` so `--workers N` works (each worker builds its
own app through the lifespan), with the head-capped httptools protocol (`headcap.py`).

With several workers, the Prometheus counters of every worker go to one fresh directory
(`PROMETHEUS_MULTIPROC_DIR`, removed on exit) so `/metrics` on any worker adds them up.
"""

from __future__ import annotations

import copy
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from coatcheck.middleware.cli.app import app
from coatcheck.middleware.cli.errors import fail, one_line_errors

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from coatcheck.middleware.settings import Settings

__all__ = ["LogFormat", "prepare", "serve"]


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def prepare() -> tuple[Settings, Engine]:
    """Validated settings and config (errors name the variable or the dotted path), the
    key provider's root, an engine.

    The YAML file is parsed here, once, so a bad field is one line naming it and exit 2
    (not a traceback per worker while uvicorn's supervisor restarts them).
    """
    from coatcheck.middleware.config import load_config
    from coatcheck.middleware.service.bootstrap import check_keys
    from coatcheck.middleware.settings import load_settings
    from coatcheck.vault.db import make_engine

    with one_line_errors():
        settings = load_settings()
        load_config(settings.config)
        check_keys(settings)  # the key provider before the database: one line if it fails
        engine = make_engine(settings.database_url)
    return settings, engine


def _check_bind(host: str, port: int) -> None:
    """Fail with one line if uvicorn could not listen there (taken, not ours, unknown)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or type(exc).__name__}")


@contextmanager
def _shared_metrics(workers: int) -> Iterator[None]:
    from coatcheck.middleware.observability.metrics import MULTIPROC_ENV

    if workers == 1 or MULTIPROC_ENV in os.environ:
        yield
        return
    path = tempfile.mkdtemp(prefix="coatcheck-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default COATCHECK_HOST)."),
    port: int | None = typer.Option(None, help="Port (default COATCHECK_PORT)."),
    workers: int = typer.Option(1, min=1, max=64, help="uvicorn worker processes."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
    log_format: Annotated[
        LogFormat,
        typer.Option(
            envvar="COATCHECK_LOG_FORMAT",
            help="text (uvicorn's lines) or json (one object per line, with request ids).",
        ),
    ] = LogFormat.TEXT,
) -> None:
    """Run the gateway (the webhook, the vault API, /health, /ready, /metrics)."""
    import uvicorn

    from coatcheck.middleware.cli.headcap import HeadCappedProtocol
    from coatcheck.middleware.service.bootstrap import bootstrap

    settings, engine = prepare()
    with one_line_errors():
        created = bootstrap(settings, engine)
    engine.dispose()
    if created is not None:
        typer.echo(f"first run: starter API keys (channel, admin) written to {created}")
    bind_host, bind_port = host or settings.host, port or settings.port
    _check_bind(bind_host, bind_port)
    with _shared_metrics(workers):
        uvicorn.run(
            "coatcheck.middleware.app:create_app",
            factory=True,
            host=bind_host,
            port=bind_port,
            workers=workers,
            log_level=log_level,
            log_config=log_config(log_level, log_format),
            http=HeadCappedProtocol,
        )


def log_config(level: str, log_format: LogFormat = LogFormat.TEXT) -> dict[str, Any]:
    """uvicorn's logging config plus a root handler at the same level.

    Without a root handler the application's and libraries' own records (DEBUG included)
    would be dropped; with it they go through the same redacting filter as uvicorn's.
    `json` swaps both of uvicorn's formatters for `observability.jsonlog.JsonFormatter`.
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["root"] = {"handlers": ["default"], "level": level.upper()}
    if log_format is LogFormat.JSON:
        json_formatter = {"()": "coatcheck.middleware.observability.jsonlog.JsonFormatter"}
        config["formatters"] = {"default": json_formatter, "access": dict(json_formatter)}
    return config
