"""Issue 19, finding 3: a slow export sink must not stall the gateway, and no record may be
lost to a crash.  Exports now go through a durable outbox written in the end's
transaction and drained outside the request path and the database limiter.

Against a running gateway (uvicorn on loopback; `coatcheck serve` in a subprocess for the
crash), with real sinks on loopback.  On the code before the outbox, the slow-sink tests
fail (other senders waited for the sink inside the database limiter), the crash test
fails (the record died with the process) and the epoch test fails (each end exported
the whole history).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web

from coatcheck.middleware.gateway.apikeys import Role
from reliability.harness import Cluster, running_bot
from tests.conftest import BACKENDS, FakeClock
from tests.edges.live import Live, Peer, database_url, live_gateway, wait_for

LOOPBACK = {"allow_private_network": True}  # the receivers here listen on 127.0.0.1
SLOW = 10.0  # seconds the slow sink takes per record
BOUND = 1.0  # what any other sender's message may take meanwhile (a DoS bound)


def _ending_bot(payload: dict[str, Any]) -> list[dict[str, Any]]:
    reply = [{"recipient_id": payload["sender"], "text": f"echo: {payload['message']}"}]
    if payload["message"] == "bye":
        reply.append({"custom": {"coatcheck": {"end": True}}})
    return reply


class Receiver:
    """An export receiver: records every body; `delay` seconds before answering `status`."""

    def __init__(self, delay: float = 0.0, status: int = 200) -> None:
        self.delay = delay
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        self.first = threading.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        self.first.set()
        loop = asyncio.get_running_loop()
        until = loop.time() + self.delay
        while self.delay and loop.time() < until:  # held; released early if delay drops to 0
            await asyncio.sleep(0.05)
        return web.json_response({}, status=self.status)


@pytest.fixture
def bot() -> Iterator[Peer]:
    async def handle(request: web.Request) -> web.Response:
        return web.json_response(_ending_bot(await request.json()))

    with Peer("/webhooks/rest/webhook", handle).running() as peer:
        yield peer


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(tmp_path, request.param) as url:
        yield url


def _receiver(receiver: Receiver) -> Peer:
    return Peer("/hook", receiver.handle)


def _timed(live: Live, sender: str, message: str) -> float:
    started = time.monotonic()
    response = live.say(sender, message)
    assert response.status_code == 200, response.text
    return time.monotonic() - started


def _others_meanwhile(live: Live, count: int = 8) -> list[float]:
    """`count` messages of other senders (one at a time) while the sink is busy."""
    return [_timed(live, f"other-{i}", f"hello, mail other{i}@example.com") for i in range(count)]


def test_a_slow_sink_holds_no_other_sender_at_a_bot_end(tmp_path: Path, db: str, bot: Peer) -> None:
    receiver = Receiver(delay=SLOW)
    with _receiver(receiver).running() as hook:
        config = {"export": {"sinks": [{"webhook": hook.url, "timeout_seconds": 15, **LOOPBACK}]}}
        with live_gateway(tmp_path, db_url=db, config=config, bot_url=bot.url) as live:
            assert _timed(live, "leaver", "hello, mail leaver@example.com") < 5
            with ThreadPoolExecutor(1) as pool:
                ending = pool.submit(_timed, live, "leaver", "bye")  # the bot ends it
                assert receiver.first.wait(10), "the record never reached the sink"
                took = _others_meanwhile(live)
                assert max(took) < BOUND, took
                assert ending.result() < BOUND  # the ending message did not wait either
            wait_for(lambda: live.services.store.outbox.counts()["pending"] == 0, 30, "delivery")
            leaver = live.cid("leaver")  # exports name the conversation by its pseudonym
    assert len(receiver.bodies) == 1
    record = receiver.bodies[0]
    assert record["conversation_id"] == leaver and record["ended_at"] is not None


def test_a_slow_sink_holds_no_other_sender_at_idle_ends(tmp_path: Path, bot: Peer) -> None:
    receiver = Receiver(delay=SLOW)
    clock = FakeClock(1_800_000_000.0)
    db = f"sqlite:///{tmp_path / 'idle.db'}"
    with _receiver(receiver).running() as hook:
        config = {"export": {"sinks": [{"webhook": hook.url, "timeout_seconds": 15, **LOOPBACK}]}}
        with live_gateway(
            tmp_path,
            db_url=db,
            config=config,
            bot_url=bot.url,
            clock=clock,
            idle_timeout_seconds=60,
            sweep_interval_seconds=0.2,
        ) as live:
            for i in range(5):
                assert _timed(live, f"idle-{i}", f"mail idle{i}@example.com") < 5
            clock.now += 120  # all five are idle now: the sweeper ends them
            assert receiver.first.wait(10), "no idle end reached the sink"
            took = _others_meanwhile(live)
            assert max(took) < BOUND, took
            idle = [live.cid(f"idle-{i}") for i in range(5)]
            ended = {s["status"] for s in _statuses(live, idle)}
            assert ended == {"shredded"}


def _statuses(live: Live, ids: list[str]) -> list[dict[str, Any]]:
    rows = live.services.records.list_conversations(status=None, since=None, until=None)
    found = [r for r in rows if r["conversation_id"] in ids]
    assert len(found) == len(ids), found
    return found


def test_each_end_exports_the_turns_of_the_ended_epoch_only(
    tmp_path: Path, db: str, bot: Peer
) -> None:
    jsonl = tmp_path / "out.jsonl"
    config = {"export": {"sinks": [{"jsonl": str(jsonl)}]}}
    with live_gateway(tmp_path, db_url=db, config=config, bot_url=bot.url) as live:
        live.call("PUT", "/v1/config/export-redaction", json={"type": "deny", "fields": []})
        assert live.say("twice", "first session, mail one@example.com").status_code == 200
        assert live.say("twice", "bye").status_code == 200  # the bot ends the first session
        wait_for(lambda: jsonl.exists() and len(jsonl.read_text().splitlines()) == 1)
        assert live.say("twice", "second session").status_code == 200  # reopens it
        assert live.call("POST", "/v1/conversations/twice/end", Role.CHANNEL).status_code == 200
        wait_for(lambda: len(jsonl.read_text().splitlines()) == 2, what="the second record")
    first, second = (json.loads(line) for line in jsonl.read_text().splitlines())
    assert [t["text"] for t in first["turns"]][-2:] == ["bye", "echo: bye"]
    assert len(first["turns"]) == 4
    assert [t["text"] for t in second["turns"]] == ["second session", "echo: second session"]
    assert first["ended_at"] < second["ended_at"]


@pytest.mark.parametrize(
    ("status", "attempts", "dead"),
    [(500, 3, 1), (200, 1, 0)],  # a failing receiver is retried, then dead; a working one not
)
def test_retries_back_off_then_dead_letter_and_an_admin_requeues(
    tmp_path: Path, db: str, bot: Peer, status: int, attempts: int, dead: int
) -> None:
    receiver = Receiver(status=status)
    with _receiver(receiver).running() as hook:
        outbox = {"max_attempts": 3, "backoff_seconds": 0.3, "poll_seconds": 0.1}
        sinks = [{"webhook": hook.url, "timeout_seconds": 2, **LOOPBACK}]
        config = {"export": {"sinks": sinks, "outbox": outbox}}
        with live_gateway(tmp_path, db_url=db, config=config, bot_url=bot.url) as live:
            live.say("retry", "hello")
            started = time.monotonic()
            assert live.say("retry", "bye").status_code == 200
            store = live.services.store
            wait_for(lambda: store.outbox.counts()["pending"] == 0, 20, "the outbox to settle")
            assert len(receiver.bodies) == attempts
            if attempts == 3:  # waited 0.3 s, then 0.6 s between attempts
                assert time.monotonic() - started >= 0.85
            listed = live.call("GET", "/v1/exports/outbox").json()
            assert listed == {"pending": 0, "dead": dead}
            assert live.call("GET", "/v1/exports/outbox", Role.AUDITOR).status_code == 403
            receiver.status = 200
            requeued = live.call("POST", "/v1/exports/outbox/requeue").json()
            assert requeued == {"requeued": dead}
            wait_for(lambda: store.outbox.counts() == {"pending": 0, "dead": 0}, 20)
            assert len(receiver.bodies) == attempts + dead


def test_a_loopback_sink_without_opt_in_and_a_redirect_deliver_nothing(
    tmp_path: Path, bot: Peer
) -> None:
    """Finding 5 stays fixed through the outbox: no private address without the opt-in,
    no redirect followed (the redirect's target gets nothing)."""
    target = Receiver()

    async def redirect(_: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": target_peer.url})

    target_peer = _receiver(target)
    with target_peer.running(), Peer("/moved", redirect).running() as moved:
        sinks = [
            {"webhook": target_peer.url, "timeout_seconds": 2},  # loopback, no opt-in
            {"webhook": moved.url, "timeout_seconds": 2, **LOOPBACK},  # answers 307
        ]
        outbox = {"max_attempts": 1}
        db = f"sqlite:///{tmp_path / 'five.db'}"
        config = {"export": {"sinks": sinks, "outbox": outbox}}
        with live_gateway(tmp_path, db_url=db, config=config, bot_url=bot.url) as live:
            live.say("wander", "hello")
            live.say("wander", "bye")
            wait_for(lambda: live.services.store.outbox.counts()["dead"] == 2, 20)
            with live.services.store.transaction() as tx:
                from sqlalchemy import text

                reasons = sorted(
                    r[0] for r in tx.execute(text("SELECT last_error FROM gw_export_outbox"))
                )
    assert target.bodies == []
    assert reasons[0] == "HTTP 307" and "loopback or private" in reasons[1]


# -- a crash between the end and the delivery ---------------------------------------------


def test_a_worker_killed_mid_delivery_delivers_the_record_once_after_restart(
    tmp_path: Path,
) -> None:
    receiver = Receiver(delay=30.0)  # holds the first delivery: the kill lands meanwhile
    with running_bot() as recording, _receiver(receiver).running() as hook:
        config = {
            "export": {
                "sinks": [{"webhook": hook.url, "timeout_seconds": 2, **LOOPBACK}],
                "outbox": {"lease_seconds": 3, "poll_seconds": 0.2},
            }
        }
        work = tmp_path / "crash"
        work.mkdir()
        (work / "coatcheck.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        cluster = Cluster(
            work, f"sqlite:///{work / 'crash.db'}", recording.url, workers=1, log_level="info"
        )
        cluster.start()
        try:
            headers = {"Authorization": f"Bearer {cluster.keys['channel']}"}
            said = httpx.post(
                f"{cluster.url}/webhooks/rest/webhook",
                json={"sender": "crashy", "message": "mail crashy@example.com"},
                headers=headers,
                timeout=30,
            )
            assert said.status_code == 200
            ended = httpx.post(
                f"{cluster.url}/v1/conversations/crashy/end", headers=headers, timeout=30
            )
            assert ended.status_code == 200, ended.text
            assert receiver.first.wait(15), "the record never left"
            assert cluster.proc is not None
            os.killpg(cluster.proc.pid, signal.SIGKILL)  # mid-delivery: never acknowledged
            cluster.proc.wait(10)
            cluster.proc = None
            receiver.delay = 0.0  # the receiver answers at once from now on
            cluster.start()
            wait_for(lambda: len(receiver.bodies) >= 2, 30, "the delivery after restart")
            time.sleep(2)  # nothing more arrives (lease and poll have passed meanwhile)
            crashy = cluster.pseudonym("crashy")  # the record names the pseudonym
        finally:
            cluster.stop()
    assert len(receiver.bodies) == 2  # the unacknowledged attempt, then exactly one more
    first, again = receiver.bodies
    assert first == again and first["conversation_id"] == crashy
    assert "crashy@example.com" not in json.dumps(first)
