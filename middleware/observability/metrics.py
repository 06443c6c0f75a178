"""The gateway's Prometheus metrics and the small API that feeds them.

Every label value comes from code or config, never from a request: routes are the app's
route templates (`/v1/conversations/{conversation_id}/end`, never the id), entity types
are the configured ones, doors and reasons are fixed names.  So no value and no
conversation id can reach a label, and the number of series stays bounded.

One worker keeps its counters in memory (`REGISTRY`).  `coatcheck serve --workers N`
points `PROMETHEUS_MULTIPROC_DIR` at a fresh directory before the workers start;
prometheus-client then keeps each worker's values in files there and `exposition()` adds
them up, so a scrape that lands on any worker sees the whole service.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = [
    "CONTENT_TYPE_LATEST",
    "DOORS",
    "MULTIPROC_ENV",
    "REGISTRY",
    "count_entities",
    "count_error",
    "count_message",
    "count_refusal",
    "count_reveal",
    "exposition",
    "observe_bot",
    "observe_request",
    "observe_vault",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The doors a value (or a check's boolean) leaves the vault by (DESIGN.md).
DOORS = ("service", "staff", "confirmation", "check")
_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_MAX_TYPES = 256  # a config holds far fewer; past this, new names count as "other"

REGISTRY = CollectorRegistry(auto_describe=True)
if MULTIPROC_ENV not in os.environ:  # per-process collectors make no sense summed
    ProcessCollector(registry=REGISTRY)
    PlatformCollector(registry=REGISTRY)

_HTTP = Counter(
    "coatcheck_http_requests",
    "HTTP requests by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
_HTTP_SECONDS = Histogram(
    "coatcheck_http_request_duration_seconds",
    "Time from request to the end of the response, by route template.",
    ["route"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
_MESSAGES = Counter(
    "coatcheck_messages",
    "Channel messages (the webhook): forwarded (2xx), refused (4xx), failed (5xx).",
    ["outcome"],
    registry=REGISTRY,
)
_ENTITIES = Counter(
    "coatcheck_entities",
    "Values vaulted, by entity type.",
    ["type"],
    registry=REGISTRY,
)
_REVEALS = Counter(
    "coatcheck_reveals",
    "Values (for `check`: booleans) that left the vault, by door.",
    ["door"],
    registry=REGISTRY,
)
_REFUSALS = Counter(
    "coatcheck_refusals",
    "Reveals and checks the vault refused, by door and refusal class.",
    ["door", "reason"],
    registry=REGISTRY,
)
_VAULT_SECONDS = Histogram(
    "coatcheck_vault_seconds",
    "Vault call latency: tokenize (one message's values), reveal, check.",
    ["op"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
_BOT_SECONDS = Histogram(
    "coatcheck_bot_seconds",
    "Bot round-trip latency (failed calls included).",
    buckets=_LATENCY,
    registry=REGISTRY,
)
_ERRORS = Counter(
    "coatcheck_errors",
    "Errors: http (5xx answers), bot (no usable answer), vault (storage, keys).",
    ["source"],
    registry=REGISTRY,
)

_types: set[str] = set()
_types_lock = threading.Lock()


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """One finished HTTP request (the route layer, `requestid.RequestContext`)."""
    method = method if method in _METHODS else "other"
    _HTTP.labels(route, method, str(status)).inc()
    _HTTP_SECONDS.labels(route).observe(seconds)
    if status >= 500:
        _ERRORS.labels("http").inc()


def count_message(status: int) -> None:
    """One channel message, by the status the channel got."""
    _MESSAGES.labels("forwarded" if status < 400 else "refused" if status < 500 else "failed").inc()


def count_entities(types: Iterable[str]) -> None:
    """Values just vaulted, one type name each."""
    for entity_type in types:
        _ENTITIES.labels(_bounded_type(entity_type)).inc()


def _bounded_type(entity_type: str) -> str:
    if entity_type in _types:
        return entity_type
    with _types_lock:
        if len(_types) >= _MAX_TYPES:
            return "other"
        _types.add(entity_type)
    return entity_type


def count_reveal(door: str) -> None:
    _REVEALS.labels(door).inc()


def count_refusal(door: str, reason: str) -> None:
    """`reason` is an exception class name (a fixed set), never a message."""
    _REFUSALS.labels(door, reason).inc()


def count_error(source: str) -> None:
    _ERRORS.labels(source).inc()


def observe_vault(op: str, seconds: float) -> None:
    _VAULT_SECONDS.labels(op).observe(seconds)


def observe_bot(seconds: float, ok: bool) -> None:
    _BOT_SECONDS.observe(seconds)
    if not ok:
        _ERRORS.labels("bot").inc()


def exposition() -> tuple[bytes, str]:
    """The text format for a scrape: this worker's, or every worker's added up."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
