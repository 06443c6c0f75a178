"""The model provider's HTTP API (OpenAI-compatible), over an injected aiohttp session.

Only our own headers go up: `Authorization: Bearer <COATCHECK_LLM_UPSTREAM_API_KEY>`,
`Content-Type` and `Accept`; nothing of the client's request but the redacted body.
Transport failures become `UpstreamUnavailable` (502, 504 on a timeout); an error status
becomes `UpstreamError` with the provider's status and error names, never its message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio

from coatcheck.middleware.llm.errors import (
    UpstreamError,
    UpstreamProtocolError,
    UpstreamUnavailable,
)
from coatcheck.middleware.llm.response import safe_error

__all__ = ["Upstream", "UpstreamAnswer"]

MAX_BODY = 16 << 20
MAX_ERROR_BODY = 64 << 10


class UpstreamAnswer:
    """An open answer (status 2xx): its body as bytes, streamed or whole."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.event_stream = response.content_type == "text/event-stream"

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError:
            raise UpstreamUnavailable("timeout", 504) from None
        except (aiohttp.ClientError, OSError):
            raise UpstreamUnavailable("stream_broken") from None

    async def json(self) -> Any:
        body = await _read(self._response, MAX_BODY)
        try:
            return json.loads(body)
        except ValueError:
            raise UpstreamProtocolError("body_not_json") from None

    async def drain(self, seconds: float, limit: int = MAX_ERROR_BODY) -> None:
        """After the stream's `[DONE]`: read what the provider still sends (the end of its
        chunked body, normally already here) for at most `seconds` and `limit` bytes, so
        that `close` can keep the connection for the next request instead of dropping it
        (a new connection per request costs a handshake before the next first token)."""
        size = 0
        with anyio.move_on_after(seconds):
            try:
                async for chunk in self._response.content.iter_any():
                    size += len(chunk)
                    if size > limit:
                        return
            except (TimeoutError, aiohttp.ClientError, OSError):
                return

    def close(self) -> None:
        self._response.release()


async def _read(response: aiohttp.ClientResponse, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise UpstreamProtocolError("body_too_large")
            parts.append(chunk)
    except TimeoutError:
        raise UpstreamUnavailable("timeout", 504) from None
    except (aiohttp.ClientError, OSError):
        raise UpstreamUnavailable("read") from None
    return b"".join(parts)


class Upstream:
    """`base_url` ends in `/v1`: `POST {base}/chat/completions`, `GET {base}/models`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str | None,
        *,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._key = api_key
        self._timeout = timeout or aiohttp.ClientTimeout(total=None, connect=10, sock_read=300)

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    async def chat(self, body: bytes, *, stream: bool) -> UpstreamAnswer:
        """Send the (already redacted) body; an open answer, or the error it became."""
        headers = self._headers("text/event-stream" if stream else "application/json")
        headers["Content-Type"] = "application/json"
        response = await self._request("POST", "/chat/completions", headers, body)
        return UpstreamAnswer(response)

    async def models(self) -> Any:
        """`GET /models`, passed through as the provider's JSON."""
        response = await self._request("GET", "/models", self._headers("application/json"), None)
        answer = UpstreamAnswer(response)
        try:
            return await answer.json()
        finally:
            answer.close()

    async def _request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> aiohttp.ClientResponse:
        try:
            response = await self._session.request(
                method, self._base + path, data=body, headers=headers, timeout=self._timeout
            )
        except TimeoutError:
            raise UpstreamUnavailable("timeout", 504) from None
        except (aiohttp.ClientError, OSError):
            raise UpstreamUnavailable("connect") from None
        if response.status >= 400:
            raise await _error(response)
        return response


async def _error(response: aiohttp.ClientResponse) -> UpstreamError:
    try:
        raw = await _read(response, MAX_ERROR_BODY)
        payload: Any = json.loads(raw)
    except (UpstreamProtocolError, UpstreamUnavailable, ValueError):
        payload = None
    finally:
        response.release()
    return safe_error(payload, response.status)
