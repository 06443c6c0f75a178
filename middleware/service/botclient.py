"""Talking to the bot: a Rasa REST webhook (or any HTTP bot speaking it), or the echo bot.

One aiohttp `ClientSession` per worker, created in the lifespan (it carried about five
times httpx's throughput at 50 concurrent requests on the target machine).  Errors never
quote the bot's body or the message: they name the bot and stop there.
"""

from __future__ import annotations

from typing import Any, Protocol

import aiohttp

from coatcheck.middleware.service.errors import BotUnavailable

__all__ = ["BotClient", "EchoBot", "HttpBot", "Reply"]

Reply = dict[str, Any]


class BotClient(Protocol):
    async def send(self, sender: str, message: str, metadata: dict[str, Any]) -> list[Reply]: ...


class EchoBot:
    """Built-in bot for a first run: answers with the (already redacted) text it got."""

    async def send(self, sender: str, message: str, metadata: dict[str, Any]) -> list[Reply]:
        return [{"recipient_id": sender, "text": message}]


class HttpBot:
    """A Rasa REST channel endpoint reached through a shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, url: str, timeout: float) -> None:
        self._session = session
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, sender: str, message: str, metadata: dict[str, Any]) -> list[Reply]:
        payload = {"sender": sender, "message": message, "metadata": metadata}
        try:
            async with self._session.post(self._url, json=payload, timeout=self._timeout) as resp:
                if resp.status >= 400:
                    raise BotUnavailable("bot", f"the bot answered HTTP {resp.status}")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise BotUnavailable("bot") from None
        if not isinstance(body, list):
            raise BotUnavailable("bot", "the bot's answer is not a reply list")
        return [item for item in body if isinstance(item, dict)]
