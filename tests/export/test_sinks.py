"""JsonlSink on a real tmp file; WebhookSink against a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from coatcheck.middleware.export import ExportSinkError, JsonlSink, WebhookSink
from tests.external.loopback import closed_port, serve

RECORDS: list[dict[str, Any]] = [
    {"conversation_id": "c-1", "tenant": "acme", "ended_at": None},
    {"conversation_id": "c-2", "tenant": "acme", "ended_at": "x", "note": "line\nbreak é"},
]


def test_jsonl_appends_one_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    sink = JsonlSink(path)
    sink.write(RECORDS[0])
    asyncio.run(sink.send(RECORDS[1]))
    JsonlSink(path).write(RECORDS[0])  # a second sink appends, never truncates
    JsonlSink(path).write({"at": datetime(2026, 1, 2, tzinfo=UTC)})
    lines = path.read_text("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        RECORDS[0],
        RECORDS[1],
        RECORDS[0],
        {"at": "2026-01-02T00:00:00+00:00"},
    ]
    assert path.stat().st_mode & 0o777 == 0o600


def test_jsonl_unwritable_path_names_the_sink(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "missing-dir" / "out.jsonl")
    with pytest.raises(ExportSinkError) as info:
        sink.write({"secret": "do-not-show"})
    assert info.value.sink == "jsonl"
    assert "do-not-show" not in str(info.value)


def test_jsonl_unserialisable_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with pytest.raises(ExportSinkError):
        JsonlSink(path).write({"x": {1, 2}})
    with pytest.raises(ExportSinkError):
        JsonlSink(path).write({"n": float("nan")})
    assert not path.exists() or path.read_text() == ""


async def _webhook_roundtrip(status: int, delay: float = 0.0) -> list[Any]:
    received: list[Any] = []

    async def handler(request: web.Request) -> web.Response:
        received.append(await request.json())
        await asyncio.sleep(delay)
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", handler)
    async with serve(app) as base, aiohttp.ClientSession() as session:
        sink = WebhookSink(f"{base}/hook", session, timeout=0.3)
        await sink.send(RECORDS[1])
    return received


def test_webhook_posts_json() -> None:
    assert asyncio.run(_webhook_roundtrip(204)) == [RECORDS[1]]


@pytest.mark.parametrize(
    ("status", "delay", "reason"), [(500, 0.0, "HTTP 500"), (200, 1.0, "timeout")]
)
def test_webhook_failures_raise_sink_error(status: int, delay: float, reason: str) -> None:
    with pytest.raises(ExportSinkError) as info:
        asyncio.run(_webhook_roundtrip(status, delay))
    assert info.value.reason == reason
    assert "break" not in str(info.value)


def test_webhook_down_raises_sink_error() -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            await WebhookSink(f"http://127.0.0.1:{closed_port()}/hook", session).send(RECORDS[0])

    with pytest.raises(ExportSinkError) as info:
        asyncio.run(main())
    assert info.value.sink == "webhook"
