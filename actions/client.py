"""Async HTTP client for the coatcheck service API used by action servers.

Only the routes an action server may call (grants, reveal, check, redact, context, the
latest capture result). The transport is injectable so tests and other event loops can
supply their own. Path segments (the conversation id is the channel's sender id, i.e. user
input) are percent-encoded whole, dots included, so no id can address another route or
another conversation.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from coatcheck.actions.errors import (
    ConfigurationError,
    GrantRefused,
    InvalidArgument,
    RevealRefused,
    ServiceError,
    ServiceUnavailable,
)

__all__ = ["CoatcheckClient", "GrantToken"]

_SAFE_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class GrantToken:
    """An opaque grant and when it expires (epoch seconds); never log the token."""

    token: str
    expires_at: float

    def __repr__(self) -> str:
        return f"GrantToken(expires_at={self.expires_at})"


class CoatcheckClient:
    """Talks to the service with the action server's key; one per action run or shared."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url:
            raise ConfigurationError("COATCHECK_URL")
        if not api_key:
            raise ConfigurationError("COATCHECK_ACTION_KEY")
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CoatcheckClient:
        """Built from `COATCHECK_URL` and `COATCHECK_ACTION_KEY` (the action server's key)."""
        env = os.environ if environ is None else environ
        timeout_text = env.get("COATCHECK_TIMEOUT", str(DEFAULT_TIMEOUT))
        try:
            timeout = float(timeout_text)
        except ValueError:
            raise ConfigurationError("COATCHECK_TIMEOUT") from None
        return cls(
            env.get("COATCHECK_URL", ""), env.get("COATCHECK_ACTION_KEY", ""), timeout=timeout
        )

    def __repr__(self) -> str:
        return f"CoatcheckClient({self._http.base_url!s})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> CoatcheckClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def grant(
        self, conversation_id: str, entity_types: Iterable[str], action: str, purpose: str
    ) -> GrantToken:
        """A short-lived grant for this conversation, these types and this action."""
        body = {
            "conversation_id": conversation_id,
            "entity_types": sorted(entity_types),
            "purpose": purpose,
            "action": action,
        }
        data = await self._post("/v1/grants", body, refused=GrantRefused)
        return GrantToken(str(data["grant"]), float(data["expires_at"]))

    async def reveal(
        self, conversation_id: str, ref: str, grant: GrantToken, purpose: str
    ) -> tuple[str, str]:
        """(value, type) of `ref`; the service audits the reveal with the grant's action."""
        body = {
            "conversation_id": conversation_id,
            "ref": ref,
            "grant": grant.token,
            "purpose": purpose,
        }
        data = await self._post("/v1/reveal", body, refused=RevealRefused)
        return str(data["value"]), str(data["type"])

    async def check(
        self, conversation_id: str, ref: str, check: str, value: str | None = None
    ) -> bool:
        """Run the declared check `check` inside the vault; only the boolean comes back.

        `value` is the operand of an `equals` check (and of no other).  Each reference has
        a check budget (403 `check_budget` once spent, raised as `ServiceError`).
        """
        body: dict[str, Any] = {"conversation_id": conversation_id, "ref": ref, "check": check}
        if value is not None:
            body["value"] = value
        data = await self._post("/v1/check", body)
        return bool(data["result"])

    async def redact(
        self,
        conversation_id: str,
        text: str,
        context: Mapping[str, Any] | None = None,
        grant: GrantToken | None = None,
    ) -> str:
        """`text` with every PII span replaced by its reference rendering.

        `context` (`{"expect": TYPE, "capture": "pattern" | "whole"}`) vaults by rule.
        With a `grant` for this conversation, values of its types are vaulted and keep
        their references; every other value comes back as `[TYPE]` and is stored nowhere
        (an action server may not learn which values a conversation holds).
        """
        body: dict[str, Any] = {"text": text, "conversation_id": conversation_id}
        if context is not None:
            body["context"] = dict(context)
        if grant is not None:
            body["grant"] = grant.token
        data = await self._post("/v1/redact", body)
        return str(data["text"])

    async def set_context(self, conversation_id: str, directive: Mapping[str, Any]) -> None:
        """Tell the gateway what the next user message is expected to hold."""
        path = f"/v1/conversations/{_path_segment(conversation_id)}/context"
        await self._post(path, dict(directive), endpoint="context")

    async def latest_capture(self, conversation_id: str) -> dict[str, Any] | None:
        """The gateway's own record of the conversation's latest capture result, or None.

        `GET /v1/conversations/{id}/capture` answers `{"capture": {"type", "ok", "ref", ...}}`
        only while the conversation's latest user message is a secure-capture result the
        gateway made itself; `{"capture": null}` otherwise (docs/actions.md).
        """
        path = f"/v1/conversations/{_path_segment(conversation_id)}/capture"
        data = await self._request("GET", path, None, endpoint="capture")
        capture = data.get("capture")
        if capture is None:
            return None
        if not isinstance(capture, dict):
            raise ServiceError("capture", 200, "bad_json")
        return capture

    async def _post(
        self,
        path: str,
        body: dict[str, Any],
        refused: type[ServiceError] = ServiceError,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        return await self._request("POST", path, body, refused, endpoint)

    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        refused: type[ServiceError] = ServiceError,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        endpoint = endpoint or path.rsplit("/", 1)[-1]
        try:
            response = await self._http.request(method, path, json=body)
        except httpx.HTTPError:
            raise ServiceUnavailable(endpoint) from None
        if response.status_code >= 400:
            raise _error(endpoint, response, refused)
        try:
            data = response.json()
        except ValueError:
            raise ServiceError(endpoint, response.status_code, "bad_json") from None
        if not isinstance(data, dict):
            raise ServiceError(endpoint, response.status_code, "bad_json")
        return data


def _path_segment(value: str) -> str:
    """`value` as one URL path segment: every reserved character and every dot encoded.

    `quote(safe="")` keeps "." and "..", which HTTP clients resolve as dot segments
    (`/v1/conversations/../context` becomes `/v1/context`); "%2E" is the same character
    to the server but is left alone on the way.
    """
    if not value:
        raise InvalidArgument("conversation_id", "empty")
    return urllib.parse.quote(value, safe="").replace(".", "%2E")


def _error(endpoint: str, response: httpx.Response, refused: type[ServiceError]) -> ServiceError:
    """The error for a 4xx/5xx; the code is kept only if it looks like a code, not a value."""
    code = ""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        raw = payload.get("error")
        if isinstance(raw, str) and _SAFE_CODE.fullmatch(raw):
            code = raw
    kind = refused if response.status_code in (401, 403, 404, 410) else ServiceError
    return kind(endpoint, response.status_code, code)
