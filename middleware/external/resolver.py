"""`ExternalResolver`: fetch a referenced value from the customer's own vault.

Per entity type one `EndpointConfig`. Each resolution goes through the endpoint's circuit
breaker, then up to `retry.attempts` HTTP attempts with bounded exponential backoff. Only
transient failures are retried (connection errors, timeouts, 5xx, 429); a 404, a refused
credential or a garbage body is final. The value comes back wrapped in `FetchedValue`; logs
carry the endpoint name, attempt and status only.

The ref is user input (the chat carried it): before it goes into a URL it must stay one
path segment once quoted. "." and ".." survive `quote(safe="")` and would be resolved by
the client (`/vault/..` is `/`, with our credentials); an encoded slash, backslash or
percent sign walks the path on a server or proxy that decodes before routing. Such a ref
is refused as `UnusableReference` (a `ReferenceNotFound`) and no request is sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from coatcheck.middleware.external.auth import static_credentials
from coatcheck.middleware.external.body import read_capped
from coatcheck.middleware.external.breaker import CircuitBreaker
from coatcheck.middleware.external.config import EndpointConfig, OAuth2ClientCredentials
from coatcheck.middleware.external.errors import (
    AuthFailed,
    BadResponse,
    EndpointTimeout,
    EndpointUnavailable,
    ExternalError,
    ReferenceNotFound,
    UnknownEntityType,
    UnusableReference,
)
from coatcheck.middleware.external.oauth import TokenCache
from coatcheck.middleware.external.secret import FetchedValue

__all__ = ["ExternalResolver"]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class _Transient(Exception):
    """An attempt failed in a way worth retrying; carries the error to raise at the end."""

    def __init__(self, error: ExternalError) -> None:
        super().__init__(error.args[0])
        self.error = error


class ExternalResolver:
    """Resolves `(entity_type, ref)` to a `FetchedValue` via the configured endpoint."""

    def __init__(
        self,
        endpoints: Mapping[str, EndpointConfig],
        session: aiohttp.ClientSession,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._endpoints = dict(endpoints)
        self._session = session
        self._sleep = sleep
        self._breakers = {
            t: CircuitBreaker(
                c.name, c.breaker.failure_threshold, c.breaker.cooldown_seconds, clock
            )
            for t, c in self._endpoints.items()
        }
        self._tokens = {
            t: TokenCache(c.name, c.auth, session, clock, c.timeout_seconds, c.max_body_bytes)
            for t, c in self._endpoints.items()
            if isinstance(c.auth, OAuth2ClientCredentials)
        }

    def __repr__(self) -> str:
        return f"ExternalResolver(types={sorted(self._endpoints)!r})"

    @property
    def types(self) -> frozenset[str]:
        """The entity types this resolver holds externally."""
        return frozenset(self._endpoints)

    def config(self, entity_type: str) -> EndpointConfig:
        """The endpoint config a type resolves with (the connection test probes it)."""
        return self._config(entity_type)

    def breaker(self, entity_type: str) -> CircuitBreaker:
        """The breaker of a type's endpoint (for health reporting)."""
        self._config(entity_type)
        return self._breakers[entity_type]

    async def resolve(self, entity_type: str, ref: str) -> FetchedValue:
        """Fetch the value for `ref`; raises an `ExternalError` subclass on failure."""
        cfg = self._config(entity_type)
        url = _url(cfg, ref)  # an unusable ref is refused before the breaker: nothing sent
        breaker = self._breakers[entity_type]
        breaker.before_call()
        try:
            value = await self._with_retries(entity_type, cfg, url, ref)
        except ReferenceNotFound:
            breaker.record_success()  # the endpoint is healthy; the ref is just unknown
            raise
        except ExternalError:
            breaker.record_failure()
            raise
        except BaseException:
            breaker.abandon()
            raise
        breaker.record_success()
        return value

    def _config(self, entity_type: str) -> EndpointConfig:
        try:
            return self._endpoints[entity_type]
        except KeyError:
            raise UnknownEntityType(entity_type) from None

    async def _with_retries(
        self, entity_type: str, cfg: EndpointConfig, url: str, ref: str
    ) -> FetchedValue:
        policy = cfg.retry
        for attempt in range(policy.attempts):
            try:
                return await self._attempt(entity_type, cfg, url, ref, attempt)
            except _Transient as transient:
                if attempt + 1 >= policy.attempts:
                    raise transient.error from None
                delay = min(policy.backoff_base_seconds * 2**attempt, policy.backoff_max_seconds)
                log.debug("external retry endpoint=%s delay=%.3f", cfg.name, delay)
                await self._sleep(delay)
        raise EndpointUnavailable(cfg.name)  # pragma: no cover - attempts >= 1

    async def _attempt(
        self, entity_type: str, cfg: EndpointConfig, url: str, ref: str, attempt: int
    ) -> FetchedValue:
        headers, params = static_credentials(cfg.auth)
        tokens = self._tokens.get(entity_type)
        if tokens is not None:
            try:
                headers["Authorization"] = f"Bearer {await tokens.token()}"
            except EndpointUnavailable as down:  # the token endpoint is down or slow
                raise _Transient(down) from None
        body = _fill(cfg.body_template or {}, ref) if cfg.method == "POST" else None
        timeout = aiohttp.ClientTimeout(total=cfg.timeout_seconds)
        try:
            async with self._session.request(
                cfg.method,
                url,
                headers=headers,
                params=params,
                json=body,
                timeout=timeout,
                allow_redirects=False,  # never carry credentials to another location
            ) as resp:
                status = resp.status
                log.debug(
                    "external fetch endpoint=%s attempt=%d status=%d", cfg.name, attempt, status
                )
                raw = await read_capped(resp, cfg.max_body_bytes) if status == 200 else b""
        except TimeoutError:
            log.debug("external fetch endpoint=%s attempt=%d timeout", cfg.name, attempt)
            raise _Transient(EndpointTimeout(cfg.name)) from None
        except aiohttp.ClientError:
            log.debug("external fetch endpoint=%s attempt=%d unreachable", cfg.name, attempt)
            raise _Transient(EndpointUnavailable(cfg.name)) from None
        return self._interpret(cfg, status, raw, tokens)

    def _interpret(
        self, cfg: EndpointConfig, status: int, raw: bytes | None, tokens: TokenCache | None
    ) -> FetchedValue:
        if status == 200:
            if raw is None:
                raise BadResponse(cfg.name, f"body larger than {cfg.max_body_bytes} bytes")
            return FetchedValue(_extract(cfg, raw))
        if status == 404:
            raise ReferenceNotFound(cfg.name)
        if status in (401, 403):
            if tokens is not None:
                tokens.invalidate()
                if status == 401:
                    raise _Transient(AuthFailed(cfg.name, f"HTTP {status}"))
            raise AuthFailed(cfg.name, f"HTTP {status}")
        if status == 429 or status >= 500:
            raise _Transient(EndpointUnavailable(cfg.name, f"{cfg.name}: HTTP {status}"))
        raise BadResponse(cfg.name, f"HTTP {status}")


# Quoted forms that walk a path: dot segments, and encoded "/", "\\" and "%" (a server or
# proxy that decodes before routing, or decodes twice, would see a separator or a dot).
_WALKING = ("%2F", "%5C", "%25")


def _url(cfg: EndpointConfig, ref: str) -> str:
    """The request URL: `ref` quoted into `{ref}`; `UnusableReference` if it could walk."""
    if "{ref}" not in cfg.url_template:
        return cfg.url_template
    quoted = urllib.parse.quote(ref, safe="")
    if quoted.strip(".") == "" or any(code in quoted for code in _WALKING):
        raise UnusableReference(cfg.name)
    return cfg.url_template.replace("{ref}", quoted)


def _fill(template: Any, ref: str) -> Any:
    """Copy a JSON body template, putting `ref` wherever a string holds `{ref}`."""
    if isinstance(template, str):
        return template.replace("{ref}", ref)
    if isinstance(template, dict):
        return {key: _fill(val, ref) for key, val in template.items()}
    if isinstance(template, list):
        return [_fill(val, ref) for val in template]
    return template


def _extract(cfg: EndpointConfig, raw: bytes) -> str:
    """The string at `value_path` in a JSON body; raises `BadResponse` naming the problem."""
    node: Any = _parse_json(raw)
    if node is _NOT_JSON:
        raise BadResponse(cfg.name, "body is not JSON")
    for name in cfg.value_path.split("."):
        if not isinstance(node, dict) or name not in node:
            raise BadResponse(cfg.name, f"no {cfg.value_path!r} in body")
        node = node[name]
    if not isinstance(node, str):
        raise BadResponse(cfg.name, f"{cfg.value_path!r} is not a string")
    return node


_NOT_JSON = object()


def _parse_json(raw: bytes) -> Any:
    """Parsed JSON or `_NOT_JSON`; the decode error (which holds the body) is not kept alive."""
    try:
        return json.loads(raw)
    except ValueError:
        return _NOT_JSON
