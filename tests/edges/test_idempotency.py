"""Issue 19, finding 9: a channel's retry must not make the bot act twice.

The webhook takes a client message id (`Idempotency-Key`, or Rasa's `metadata.message_id`):
a repeat gets the first answer again, rebuilt from the stored reference form, without a
bot call; a repeat whose first attempt's outcome is unknown (in flight, or its worker was
killed) gets 409.  The message is stored once either way.

Against a running gateway (uvicorn on loopback), and for the kill, `coatcheck serve` in a
subprocess SIGKILLed while the bot stand-in holds the request.  On the code before, every
repeat reached the bot again and was stored again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import create_engine, text

from reliability.harness import Cluster
from tests.conftest import BACKENDS
from tests.edges.live import Live, Peer, database_url, live_gateway, wait_for

MAIL = "retry.me@example.com"


class HoldingBot:
    """A bot stand-in that counts deliveries and can hold one until released."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.hold = False
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.received.append(payload)
        if self.hold:
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        reply = [
            {"recipient_id": payload["sender"], "text": f"paid: {payload['message']}"},
            {"recipient_id": payload["sender"], "buttons": [{"title": "ok", "payload": "/ok"}]},
        ]
        return web.json_response(reply)


@pytest.fixture
def bot() -> Iterator[tuple[HoldingBot, str]]:
    holder = HoldingBot()
    with Peer("/webhooks/rest/webhook", holder.handle).running() as peer:
        yield holder, peer.url
        holder.release.set()


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(tmp_path, request.param) as url:
        yield url


def _inbound_lines(live: Live, cid: str) -> int:
    with live.services.store.transaction() as tx:
        return int(
            tx.execute(
                text(
                    "SELECT count(*) FROM gw_history WHERE conversation_id = :c AND direction='in'"
                ),
                {"c": cid},
            ).scalar_one()
        )


@pytest.mark.parametrize(
    ("how", "deliveries"),
    [
        ("header", 1),
        ("metadata", 1),
        ("metadata-number", 1),
        ("none", 2),  # no id: two messages, as before (the "no match" row)
    ],
)
def test_the_same_message_id_twice_reaches_the_bot_once(
    tmp_path: Path, db: str, bot: tuple[HoldingBot, str], how: str, deliveries: int
) -> None:
    holder, url = bot
    kwargs: dict[str, Any] = {
        "header": {"headers": {"Idempotency-Key": "pay-42"}},
        "metadata": {"metadata": {"message_id": "9f1c2e"}},
        "metadata-number": {"metadata": {"message_id": 42}},
        "none": {},
    }[how]
    with live_gateway(tmp_path, db_url=db, bot_url=url) as live:
        first = live.say("payer", f"pay with {MAIL}", **kwargs)
        again = live.say("payer", f"pay with {MAIL}", **kwargs)
        assert first.status_code == again.status_code == 200, again.text
        assert again.json() == first.json()  # the same replies, buttons included
        assert len(holder.received) == deliveries
        assert _inbound_lines(live, live.cid("payer")) == deliveries
        # another sender's message with the same id is its own message
        other = live.say("someone-else", "hello", **kwargs)
        assert other.status_code == 200 and len(holder.received) == deliveries + 1
        with live.services.store.transaction() as tx:
            stored = tx.execute(text("SELECT id, replies_json FROM gw_idempotency")).all()
        dump = json.dumps([list(row) for row in stored])
        assert MAIL not in dump  # reference form only
        assert "pay-42" not in dump and "9f1c2e" not in dump  # the id is a keyed digest


def test_a_repeat_while_the_first_is_in_flight_is_409_not_a_second_delivery(
    tmp_path: Path, db: str, bot: tuple[HoldingBot, str]
) -> None:
    holder, url = bot
    header = {"Idempotency-Key": "ticket-7"}
    with live_gateway(tmp_path, db_url=db, bot_url=url) as live:
        holder.hold = True
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(live.say, "ticketer", "open a ticket", headers=header)
            assert holder.holding.wait(10)
            repeat = live.say("ticketer", "open a ticket", headers=header)
            assert repeat.status_code == 409 and repeat.json()["error"] == "duplicate_message"
            holder.release.set()
            assert first.result(10).status_code == 200
        after = live.say("ticketer", "open a ticket", headers=header)
        assert after.status_code == 200 and after.json() == first.result().json()
        assert len(holder.received) == 1 and _inbound_lines(live, live.cid("ticketer")) == 1


@pytest.mark.parametrize(
    ("headers", "metadata", "status"),
    [
        ({"Idempotency-Key": ""}, None, 422),
        ({"Idempotency-Key": "x" * 256}, None, 422),
        ({}, {"message_id": ["a list"]}, 422),
        ({}, {"message_id": ""}, 422),
        ({}, {"message_id": "zq9\u0000id"}, 422),
        ({"Idempotency-Key": "fine-1"}, None, 200),  # no match: a good id passes
    ],
)
def test_a_malformed_message_id_is_refused(
    tmp_path: Path, headers: dict[str, str], metadata: dict[str, Any] | None, status: int
) -> None:
    with live_gateway(tmp_path, db_url=f"sqlite:///{tmp_path / 'k.db'}") as live:
        answer = live.say("u1", "hi", headers=headers, metadata=metadata)
        assert answer.status_code == status, answer.text
        if status == 422:
            assert "x" * 50 not in answer.text and "zq9" not in answer.text


def test_a_worker_killed_mid_request_is_never_delivered_twice(
    tmp_path: Path, bot: tuple[HoldingBot, str]
) -> None:
    holder, url = bot
    holder.hold = True
    work = tmp_path / "kill"
    work.mkdir()
    database = f"sqlite:///{work / 'kill.db'}"
    cluster = Cluster(work, database, url, workers=1, log_level="info")
    cluster.start()
    headers = {"Idempotency-Key": "charge-1"}
    body = {"sender": "charged", "message": f"charge {MAIL}"}
    try:
        headers["Authorization"] = f"Bearer {cluster.keys['channel']}"
        endpoint = f"{cluster.url}/webhooks/rest/webhook"
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(httpx.post, endpoint, json=body, headers=headers, timeout=30)
            assert holder.holding.wait(15), "the bot never got the message"
            assert cluster.proc is not None
            os.killpg(cluster.proc.pid, signal.SIGKILL)  # the channel sees an error
            cluster.proc.wait(10)
            cluster.proc = None
            with pytest.raises(httpx.HTTPError):
                first.result(15)
        holder.release.set()
        cluster.start()
        retry = httpx.post(endpoint, json=body, headers=headers, timeout=30)
        assert retry.status_code == 409, retry.text
        assert retry.json()["error"] == "duplicate_message"
        wait_for(lambda: len(holder.received) >= 1)
        assert len(holder.received) == 1  # at most once
        fresh = httpx.post(
            endpoint, json=body, headers={**headers, "Idempotency-Key": "charge-2"}, timeout=30
        )
        assert fresh.status_code == 200 and len(holder.received) == 2  # a new id is new
        charged = cluster.pseudonym("charged")  # the history's conversation id
    finally:
        cluster.stop()
    engine = create_engine(database)
    with engine.connect() as conn:
        lines = conn.execute(
            text("SELECT count(*) FROM gw_history WHERE conversation_id=:c AND direction='in'"),
            {"c": charged},
        ).scalar_one()
    engine.dispose()
    assert lines == 2  # the killed attempt's line once, the new id's once
