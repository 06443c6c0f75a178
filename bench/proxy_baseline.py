"""A bare pass-through with the gateway's shape but no auth, vault, history or limits.

For comparison only: `uvicorn bench.proxy_baseline:create_app --factory --port 8767`.
With `BASELINE_BOT_URL` set it forwards to that bot through one aiohttp session, else it
echoes like the gateway's built-in echo bot; the difference to `coatcheck serve` under the
same load is the cost of coatcheck itself.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from fastapi import FastAPI, Request
from pydantic import BaseModel


class Message(BaseModel):
    sender: str
    message: str
    metadata: dict[str, Any] | None = None


def create_app() -> FastAPI:
    bot_url = os.environ.get("BASELINE_BOT_URL")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app.state.http = session
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/webhooks/rest/webhook")
    async def webhook(body: Message, request: Request) -> list[dict[str, Any]]:
        if bot_url is None:
            return [{"recipient_id": body.sender, "text": body.message}]
        session: aiohttp.ClientSession = request.app.state.http
        async with session.post(bot_url, json=body.model_dump()) as resp:
            replies: list[dict[str, Any]] = await resp.json()
        return replies

    return app
