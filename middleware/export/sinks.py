"""Where exported records go: a local JSONL file or an HTTP webhook.

Both sinks take records that already went through `apply_export_config`; they never filter.
Failures raise `ExportSinkError` naming the sink and a reason, never the record.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from coatcheck.middleware.export.config import ExportSection
from coatcheck.middleware.export.errors import ExportSinkError

__all__ = ["ExportSink", "JsonlSink", "WebhookSink", "build_sinks"]


def _json_default(value: object) -> str:
    """Datetimes become ISO 8601; anything else unknown is refused rather than str()-ed."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


class ExportSink(Protocol):
    """Anything that can deliver one filtered record."""

    async def send(self, record: Mapping[str, Any]) -> None: ...


class JsonlSink:
    """Appends one JSON line per record and fsyncs, so a crash loses at most the last line."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"JsonlSink(path={str(self.path)!r})"

    def write(self, record: Mapping[str, Any]) -> None:
        """Append `record` as one line; the whole line is written with a single `write`."""
        try:
            line = json.dumps(
                record,
                ensure_ascii=False,
                separators=(",", ":"),
                allow_nan=False,
                default=_json_default,
            )
        except (TypeError, ValueError):
            raise ExportSinkError("jsonl", "record is not JSON-serialisable") from None
        data = (line + "\n").encode("utf-8")
        with self._lock:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise ExportSinkError("jsonl", exc.strerror or "I/O error") from None

    async def send(self, record: Mapping[str, Any]) -> None:
        """Async form of `write`, off the event loop (fsync blocks)."""
        await asyncio.to_thread(self.write, record)


class WebhookSink:
    """POSTs each record as JSON to `url` with a per-request timeout; non-2xx is a failure."""

    def __init__(self, url: str, session: aiohttp.ClientSession, timeout: float = 5.0) -> None:
        self.url = url
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        return f"WebhookSink(url={self.url!r})"

    async def send(self, record: Mapping[str, Any]) -> None:
        """Deliver `record`; raises `ExportSinkError` on timeout, connection error or status."""
        try:
            async with self._session.post(
                self.url, json=dict(record), timeout=self._timeout
            ) as resp:
                if not 200 <= resp.status < 300:
                    raise ExportSinkError("webhook", f"HTTP {resp.status}")
        except TimeoutError:
            raise ExportSinkError("webhook", "timeout") from None
        except aiohttp.ClientError as exc:
            raise ExportSinkError("webhook", type(exc).__name__) from None


def build_sinks(section: ExportSection, session: aiohttp.ClientSession) -> tuple[ExportSink, ...]:
    """The configured sinks, in config order (webhooks share the caller's HTTP session)."""
    sinks: list[ExportSink] = []
    for spec in section.sinks:
        if spec.jsonl is not None:
            sinks.append(JsonlSink(spec.jsonl))
        else:
            sinks.append(WebhookSink(str(spec.webhook), session, spec.timeout_seconds))
    return tuple(sinks)
