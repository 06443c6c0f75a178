"""`coatcheck redact`: JSON lines in, redacted JSON lines out, on the embedded vault.

For trying configs and batch jobs without a server: each stdin line is
`{"text", "conversation_id"?, "context"?: {"expect", "capture"?}}`; each output line is
`{"text", "entities"}` or `{"error", "line", "message"}` (never an echo of the input).
The exit code is 1 if any line failed; the other lines still go through.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Literal, TextIO

import typer
from pydantic import BaseModel, ConfigDict, ValidationError

from coatcheck.middleware.cli.app import app
from coatcheck.middleware.detect import Context, DetectError
from coatcheck.middleware.pipeline import Redactor, TokenVault
from coatcheck.middleware.settings import Settings
from coatcheck.vault.errors import VaultError

__all__ = ["redact", "redact_lines"]

_DEFAULT_CONVERSATION = "cli"


class _ContextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expect: str
    capture: Literal["pattern", "whole"] | None = None


class _LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    conversation_id: str = _DEFAULT_CONVERSATION
    context: _ContextIn | None = None


def _error(line_no: int, code: str, message: str) -> dict[str, Any]:
    return {"error": code, "line": line_no, "message": message}


def _one(redactor: Redactor, line_no: int, raw: str) -> dict[str, Any]:
    try:
        item = _LineIn.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        if first["type"] == "extra_forbidden":  # the key itself is user input: not echoed
            return _error(line_no, "invalid_input", "unknown field")
        field = ".".join(str(p) for p in first["loc"]) or "line"
        return _error(line_no, "invalid_input", f"{field}: {first['msg']}")
    context = Context(item.context.expect, item.context.capture) if item.context else None
    try:
        result = redactor.redact(item.conversation_id, item.text, context)
    except DetectError as exc:
        return _error(line_no, "invalid_context", str(exc))
    except VaultError as exc:
        return _error(line_no, "vault_error", type(exc).__name__)
    return {"text": result.text, "entities": [e.as_dict() for e in result.entities]}


def redact_lines(redactor: Redactor, lines: TextIO, out: TextIO) -> int:
    """Process JSON lines; returns the number of failed lines."""
    failed = 0
    for line_no, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        reply = _one(redactor, line_no, raw)
        failed += "error" in reply
        out.write(json.dumps(reply, ensure_ascii=False) + "\n")
        out.flush()
    return failed


def _embedded_vault(settings: Settings) -> TokenVault:
    from coatcheck.vault import open_vault

    return open_vault(settings.database_url, settings.provider_settings(), settings.tenant)


@app.command("redact")
def redact() -> None:
    """Redact JSON lines from stdin with the configured vault (no server needed)."""
    try:
        settings = Settings()
        redactor = Redactor.from_yaml(settings.load_yaml(), _embedded_vault(settings))
    except (ValueError, DetectError, VaultError) as exc:
        typer.echo(f"coatcheck redact: {exc}", err=True)
        raise typer.Exit(code=2) from None
    failed = redact_lines(redactor, sys.stdin, sys.stdout)
    if failed:
        raise typer.Exit(code=1)
