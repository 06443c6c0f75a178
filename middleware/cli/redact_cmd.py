"""`coatcheck redact`: JSON lines in, redacted JSON lines out, on the embedded vault.

For trying configs and batch jobs without a server: each stdin line is
`{"text", "conversation_id"?, "context"?: {"expect", "capture"?}}`; each output line is
`{"text", "entities"}` or `{"error", "line", "message"}` (never an echo of the input).
The exit code is 1 if any line failed; the other lines still go through.

A line longer than `--max-line-bytes` is refused without being read into memory whole
(`line_too_long`).  On a terminal, stderr shows a progress bar (bytes of a file, or lines
and entities of a pipe); redirected, stderr stays quiet.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any, Literal, TextIO

import typer
from pydantic import BaseModel, ConfigDict, ValidationError

from coatcheck.middleware.cli.app import app
from coatcheck.middleware.cli.errors import one_line_errors
from coatcheck.middleware.config import build_detector, load_config
from coatcheck.middleware.detect import Context, DetectError
from coatcheck.middleware.pipeline import Redactor, TokenVault
from coatcheck.middleware.settings import Settings, load_settings
from coatcheck.vault.errors import VaultError

__all__ = ["DEFAULT_MAX_LINE_BYTES", "read_lines", "redact", "redact_lines"]

_DEFAULT_CONVERSATION = "cli"
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
_CHUNK = 64 * 1024

# Paragraphs are single lines: typer's help keeps line breaks as they are written.
HELP = "\n\n".join(
    [
        "Redact JSON lines from stdin with the configured vault (no server needed).",
        "[bold]Input[/bold], one JSON object per line (UTF-8; blank lines are skipped):",
        '  {"text": "...", "conversation_id": "c1", "context": {"expect": "PIN"}}',
        '"text" is required. "conversation_id" defaults to "cli"; the same value in the '
        'same conversation gets the same reference. "context" is optional: "expect" '
        'names the entity type the text is expected to hold, "capture" is "pattern" '
        '(the type\'s pattern) or "whole" (the whole text is that value); by default the '
        "type's configured capture.",
        "[bold]Output[/bold], one line per input line, in order: "
        '{"text": "<redacted>", "entities": [{"type", "start", "end", "ref", "display", '
        '"rule"}]}, or {"error": "<code>", "line": N, "message": "..."}; errors never echo '
        "the input. Exit 1 if any line failed, 2 if nothing could start.",
        "Settings: COATCHECK_DATABASE_URL, COATCHECK_MASTER_KEY or COATCHECK_KEY_FILE, "
        "COATCHECK_CONFIG (docs/config.md).",
        'Example:  echo \'{"text": "card 4111 1111 1111 1111"}\' | coatcheck redact',
    ]
)


class _ContextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expect: str
    capture: Literal["pattern", "whole"] | None = None


class _LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    conversation_id: str = _DEFAULT_CONVERSATION
    context: _ContextIn | None = None


class _TooLong:
    """Stands for a line that was longer than the limit (its bytes were skipped)."""


TOO_LONG = _TooLong()


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


def read_lines(
    stream: IO[bytes], max_bytes: int, consumed: Callable[[int], None] | None = None
) -> Iterator[bytes | _TooLong]:
    """The lines of `stream`; one longer than `max_bytes` is skipped chunk by chunk and
    yields `TOO_LONG`, so memory stays bounded by the limit whatever the input holds."""
    while True:
        line = stream.readline(max_bytes + 1)
        if not line:
            return
        if consumed is not None:
            consumed(len(line))
        if len(line) <= max_bytes or (line.endswith(b"\n") and len(line) == max_bytes + 1):
            yield line
            continue
        while not line.endswith(b"\n"):  # drop the rest of the long line
            line = stream.readline(_CHUNK)
            if not line:
                break
            if consumed is not None:
                consumed(len(line))
        yield TOO_LONG


def redact_lines(
    redactor: Redactor,
    lines: IO[bytes],
    out: TextIO,
    *,
    max_bytes: int = DEFAULT_MAX_LINE_BYTES,
    progress: _Progress | None = None,
) -> int:
    """Process JSON lines (bytes, UTF-8); returns the number of failed lines."""
    failed = 0
    tick = progress.advance if progress is not None else None
    for line_no, raw in enumerate(read_lines(lines, max_bytes, tick), start=1):
        if isinstance(raw, _TooLong):
            reply = _error(line_no, "line_too_long", f"longer than {max_bytes} bytes")
        elif not raw.strip():
            continue
        else:
            try:
                reply = _one(redactor, line_no, raw.decode("utf-8"))
            except UnicodeDecodeError:
                reply = _error(line_no, "invalid_input", "the line is not UTF-8")
        failed += "error" in reply
        if progress is not None:
            progress.line(len(reply.get("entities", ())))
        out.write(json.dumps(reply, ensure_ascii=False) + "\n")
        out.flush()
    return failed


class _Progress:
    """A progress bar on stderr (rich): bytes of a regular file, else lines and entities."""

    def __init__(self, total_bytes: int | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        columns: list[Any] = [SpinnerColumn(), TextColumn("redacting")]
        if total_bytes is not None:
            columns += [BarColumn(), DownloadColumn()]
        columns += [TextColumn("{task.fields[lines]} lines, {task.fields[entities]} entities")]
        columns.append(TimeElapsedColumn())
        # stdout carries the JSON lines: the bar must not take it over (rich's default)
        self._bar = Progress(
            *columns, console=Console(stderr=True), redirect_stdout=False, redirect_stderr=False
        )
        self._task = self._bar.add_task("redact", total=total_bytes, lines=0, entities=0)
        self._lines = self._entities = 0

    def __enter__(self) -> _Progress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def advance(self, size: int) -> None:
        self._bar.advance(self._task, size)

    def line(self, entities: int) -> None:
        self._lines += 1
        self._entities += entities
        self._bar.update(self._task, lines=self._lines, entities=self._entities)


def _file_size(stream: TextIO) -> int | None:
    """The size of stdin when it is a regular file (a bar can then show a fraction)."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _embedded_vault(settings: Settings) -> TokenVault:
    from coatcheck.vault import open_vault

    return open_vault(settings.database_url, settings.provider_settings(), settings.tenant)


@app.command("redact", help=HELP)
def redact(
    max_line_bytes: int = typer.Option(
        DEFAULT_MAX_LINE_BYTES, min=64, help="Refuse (line_too_long) any longer input line."
    ),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar on stderr (default: on a terminal)."
    ),
) -> None:
    with one_line_errors():
        settings = load_settings()
        detect = load_config(settings.config).detect_config()
        redactor = Redactor(build_detector(detect), _embedded_vault(settings), detect)
    show = sys.stderr.isatty() if progress is None else progress
    if show:
        with _Progress(_file_size(sys.stdin)) as bar:
            failed = redact_lines(
                redactor, sys.stdin.buffer, sys.stdout, max_bytes=max_line_bytes, progress=bar
            )
    else:
        failed = redact_lines(redactor, sys.stdin.buffer, sys.stdout, max_bytes=max_line_bytes)
    if failed:
        raise typer.Exit(code=1)
