"""Where exported records go: a local JSONL file or an HTTP webhook.

Both sinks take records that already went through `apply_export_config`; they never filter.
Failures raise `ExportSinkError` naming the sink and a reason, never the record.

A webhook is an address someone typed into a config, and the gateway sits inside a
network: it gets its own HTTP session per record (no cookie jar, no proxy from the
environment, never the bot client's), never follows a redirect (a receiver answering 307
to an internal address would have the record re-POSTed there), and refuses loopback,
private, link-local and other non-global addresses unless the sink opts in; names are
checked after resolution, on the very addresses the connection uses (no re-resolution).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import os
import socket
import threading
import urllib.parse
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from coatcheck.middleware.export.config import ExportSection, SinkSpec
from coatcheck.middleware.export.errors import ExportSinkError

__all__ = ["ExportSink", "JsonlSink", "WebhookSink", "build_sinks", "sink_key"]


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
    """POSTs each record as JSON to `url` with a per-request timeout; non-2xx is a failure.

    `allow_private_network` lets it reach loopback and private ranges (a receiver on the
    same host or network); without it such an address is refused before any byte is sent.
    """

    def __init__(
        self, url: str, *, timeout: float = 5.0, allow_private_network: bool = False
    ) -> None:
        self.url = url
        self.allow_private_network = allow_private_network
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        return f"WebhookSink(url={self.url!r})"

    async def send(self, record: Mapping[str, Any]) -> None:
        """Deliver `record`; raises `ExportSinkError` on timeout, connection error or status."""
        host = urllib.parse.urlsplit(self.url).hostname or ""
        if not self.allow_private_network and _is_ip(host) and not _is_public(host):
            raise ExportSinkError("webhook", _REFUSED)
        try:
            async with (
                _session(self.allow_private_network) as session,
                session.post(
                    self.url, json=dict(record), timeout=self._timeout, allow_redirects=False
                ) as resp,
            ):
                if not 200 <= resp.status < 300:
                    raise ExportSinkError("webhook", f"HTTP {resp.status}")
        except TimeoutError:
            raise ExportSinkError("webhook", "timeout") from None
        except aiohttp.ClientConnectorError as exc:
            reason = _REFUSED if isinstance(exc.os_error, _NotPublic) else type(exc).__name__
            raise ExportSinkError("webhook", reason) from None
        except aiohttp.ClientError as exc:
            raise ExportSinkError("webhook", type(exc).__name__) from None


_REFUSED = "address is loopback or private (set allow_private_network to send there)"


def _session(allow_private_network: bool) -> aiohttp.ClientSession:
    """A session of its own for one delivery: no cookies kept, no proxy taken from env."""
    resolver = None if allow_private_network else _PublicOnlyResolver()
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=resolver),
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
    )


class _NotPublic(OSError):
    """A name resolved to a non-global address; aiohttp wraps it in a connector error."""


class _PublicOnlyResolver(AbstractResolver):
    """The default resolver, refusing a name if any of its addresses is not global.

    aiohttp connects to exactly the addresses a resolver returns, so a name that resolves
    to a public address when configured and to 127.0.0.1 later is still refused.
    """

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if not found or not all(_is_public(item["host"]) for item in found):
            raise _NotPublic("webhook address is not public")
        return found

    async def close(self) -> None:
        await self._inner.close()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_public(host: str) -> bool:
    """True for a global unicast address (IPv4-mapped IPv6 judged by its IPv4 form)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def build_sinks(section: ExportSection) -> tuple[ExportSink, ...]:
    """The configured sinks, in config order (each webhook makes its own HTTP session)."""
    sinks: list[ExportSink] = []
    for spec in section.sinks:
        if spec.jsonl is not None:
            sinks.append(JsonlSink(spec.jsonl))
        else:
            sinks.append(
                WebhookSink(
                    str(spec.webhook),
                    timeout=spec.timeout_seconds,
                    allow_private_network=spec.allow_private_network,
                )
            )
    return tuple(sinks)


def sink_key(spec: SinkSpec) -> str:
    """A stable name for a configured sink (the outbox's rows name it): its kind and a
    digest of its destination, so a row outlives a restart and a reordered config, and a
    row whose sink was removed from the config is recognised as such."""
    kind, target = (
        ("jsonl", str(spec.jsonl))
        if spec.jsonl is not None
        else (
            "webhook",
            str(spec.webhook),
        )
    )
    return f"{kind}:{hashlib.sha256(target.encode()).hexdigest()[:32]}"
