"""OAuth2 client-credentials tokens, cached and refreshed before they expire."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import aiohttp

from coatcheck.middleware.external.body import read_capped
from coatcheck.middleware.external.config import OAuth2ClientCredentials
from coatcheck.middleware.external.errors import AuthFailed, EndpointTimeout, EndpointUnavailable

__all__ = ["TokenCache"]

log = logging.getLogger(__name__)


class TokenCache:
    """One cached access token per endpoint; refreshed `refresh_margin_seconds` early.

    A lock makes concurrent resolutions share one token request instead of stampeding the
    token endpoint. The token itself is never logged. The token answer is read up to
    `max_body_bytes` like a value (a token endpoint answering 80 MB must not cost 80 MB).
    """

    def __init__(
        self,
        endpoint: str,
        config: OAuth2ClientCredentials,
        session: aiohttp.ClientSession,
        clock: Callable[[], float],
        timeout: float,
        max_body_bytes: int = 65_536,
    ) -> None:
        self._endpoint = endpoint
        self._config = config
        self._session = session
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_body_bytes = max_body_bytes
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"TokenCache(endpoint={self._endpoint!r}, cached={self._token is not None})"

    def invalidate(self) -> None:
        """Drop the cached token (the resource server refused it)."""
        self._token = None

    async def token(self) -> str:
        """A token valid for at least the refresh margin, fetching one when needed."""
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at - (
                self._config.refresh_margin_seconds
            ):
                self._token, self._expires_at = await self._fetch()
            return self._token

    async def _fetch(self) -> tuple[str, float]:
        cfg = self._config
        form = {"grant_type": "client_credentials"}
        if cfg.scope:
            form["scope"] = cfg.scope
        headers = {
            "Authorization": aiohttp.encode_basic_auth(
                cfg.client_id, cfg.client_secret.get_secret_value()
            )
        }
        log.debug("oauth2 token request endpoint=%s", self._endpoint)
        try:
            async with self._session.post(
                str(cfg.token_url),
                data=form,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                if resp.status != 200:
                    raise AuthFailed(self._endpoint, f"token endpoint HTTP {resp.status}")
                raw = await read_capped(resp, self._max_body_bytes)
        except TimeoutError:
            raise EndpointTimeout(self._endpoint) from None
        except aiohttp.ClientError:
            raise EndpointUnavailable(self._endpoint) from None
        if raw is None:
            limit = self._max_body_bytes
            raise AuthFailed(self._endpoint, f"token response larger than {limit} bytes")
        return self._parse(_parse_json(raw))

    def _parse(self, body: object) -> tuple[str, float]:
        if not isinstance(body, dict):
            raise AuthFailed(self._endpoint, "token response is not a JSON object")
        token = body.get("access_token")
        expires_in = body.get("expires_in", self._config.default_expires_in)
        if not isinstance(token, str) or not token:
            raise AuthFailed(self._endpoint, "token response has no access_token")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
            raise AuthFailed(self._endpoint, "token response has a bad expires_in")
        return token, self._clock() + float(expires_in)


def _parse_json(raw: bytes) -> object:
    """Parsed JSON or None; the decode error (which holds the body) is not kept alive."""
    try:
        return json.loads(raw)
    except ValueError:
        return None
