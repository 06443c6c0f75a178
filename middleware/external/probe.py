"""A connection test for a customer endpoint: does a reveal have a chance to work?

`probe(entity_type, config, session)` runs the resolver's own request path once (a fresh
resolver: one attempt, no shared breaker, no cached token, so an OAuth2 token is really
fetched) for a made-up reference, `coatcheck-probe-<random>`, and says which step failed:

    token    the OAuth2 token endpoint refused or answered unusably
    connect  no connection (refused, DNS, reset)
    tls      the TLS handshake failed (certificate, protocol)
    timeout  no answer within `timeout_seconds`
    auth     the endpoint refused the credentials (401/403)
    status   the endpoint answered with an error (5xx, 429)
    shape    it answered, but not with JSON holding a string at `value_path` (or a redirect)

"Not found" (404) for the probe reference is a pass: the endpoint is reachable and took the
credentials.  A 200 with a value of the right shape passes too; the value is dropped
unread.  Results name the endpoint and the step, never a value or a credential.
"""

from __future__ import annotations

import re
import secrets
import ssl
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from coatcheck.middleware.external.config import (
    EndpointConfig,
    OAuth2ClientCredentials,
    RetryPolicy,
)
from coatcheck.middleware.external.errors import (
    AuthFailed,
    BadResponse,
    CircuitOpen,
    EndpointTimeout,
    EndpointUnavailable,
    ExternalError,
    ReferenceNotFound,
)
from coatcheck.middleware.external.oauth import TokenCache
from coatcheck.middleware.external.resolver import ExternalResolver

__all__ = ["PROBE_PREFIX", "STEPS", "ProbeResult", "probe"]

PROBE_PREFIX = "coatcheck-probe-"
STEPS = ("token", "connect", "tls", "timeout", "auth", "status", "shape")
_HTTP_STATUS = re.compile(r"HTTP (\d{3})$")


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe: `ok`, or the `step` that failed and why (no value)."""

    entity_type: str
    endpoint: str
    ok: bool
    step: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.entity_type,
            "endpoint": self.endpoint,
            "ok": self.ok,
            "step": self.step,
            "detail": self.detail,
        }

    def line(self) -> str:
        """One human line, for the CLI."""
        head = f"{self.entity_type} ({self.endpoint}): "
        return head + ("ok: " if self.ok else f"FAILED at {self.step}: ") + self.detail


async def probe(
    entity_type: str, config: EndpointConfig, session: aiohttp.ClientSession
) -> ProbeResult:
    """Call the endpoint once for a probe reference and classify the outcome."""
    once = config.model_copy(update={"retry": RetryPolicy(attempts=1)})
    resolver = ExternalResolver({entity_type: once}, session)
    reference = PROBE_PREFIX + secrets.token_hex(8)

    def result(step: str | None, detail: str) -> ProbeResult:
        return ProbeResult(entity_type, config.name, step is None, step, detail)

    if isinstance(config.auth, OAuth2ClientCredentials):
        tokens = TokenCache(
            config.name, config.auth, session, time.monotonic, config.timeout_seconds
        )
        try:
            await tokens.token()  # its own step: "connect"/"tls" here mean the token endpoint
        except ExternalError as exc:
            step, detail = _classify(exc, config)
            return result("token", f"token endpoint: {detail}" if step != "token" else detail)
    try:
        fetched = await resolver.resolve(entity_type, reference)
    except ReferenceNotFound:
        return result(None, "reachable, credentials accepted (404 for the probe reference)")
    except ExternalError as exc:
        step, detail = _classify(exc, config)
        return result(step, detail)
    del fetched  # a value for a made-up reference: right shape, never read
    return result(None, "reachable, credentials accepted, the answer has the expected shape")


def _classify(exc: ExternalError, config: EndpointConfig) -> tuple[str, str]:
    if isinstance(exc, AuthFailed):
        if exc.reason.startswith("token"):
            return "token", f"the token endpoint failed: {exc.reason}"
        return "auth", f"the endpoint refused the credentials ({exc.reason})"
    if isinstance(exc, BadResponse):
        return "shape", f"unusable answer: {exc.reason}"
    if isinstance(exc, EndpointTimeout):
        return "timeout", f"no answer within {config.timeout_seconds:g} s"
    if isinstance(exc, EndpointUnavailable):
        status = _HTTP_STATUS.search(str(exc))
        if status is not None:
            return "status", f"the endpoint answered HTTP {status.group(1)}"
        if _tls_failure(exc):
            return "tls", "the TLS handshake failed (certificate or protocol)"
        return "connect", "no connection (refused, unknown host or reset)"
    if isinstance(exc, CircuitOpen):  # a fresh resolver has a closed breaker
        return "connect", "circuit open"
    return "connect", type(exc).__name__


def _tls_failure(exc: BaseException) -> bool:
    """Whether an SSL error is anywhere in the chain the resolver raised from."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLError | aiohttp.ClientSSLError):
            return True
        todo += [current.__cause__, current.__context__]
    return False
