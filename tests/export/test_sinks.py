"""JsonlSink on a real tmp file; WebhookSink against real aiohttp servers on loopback.

Issue 19, finding 5, also through the running gateway: webhooks followed redirects (a 307
to an internal address got the record, reported as delivered) and shared the bot client's
HTTP session and cookie jar; a loopback or private receiver now needs an explicit opt-in.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

from coatcheck.middleware.export import ExportSection, ExportSinkError, JsonlSink, WebhookSink
from coatcheck.middleware.gateway.apikeys import Role
from tests.export.gateway_app import GatewayFactory
from tests.external.loopback import closed_port, serve, threaded

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


@dataclass
class Peer:
    """A loopback HTTP peer that records each request's path, Cookie header and body."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    seen: list[tuple[str, str | None, bytes]] = field(default_factory=list)
    delay: float = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.path, request.headers.get("Cookie"), await request.read()))
        await asyncio.sleep(self.delay)
        if request.path == "/webhooks/rest/webhook":  # as a bot: a Rasa reply list
            return web.json_response([{"recipient_id": "u", "text": "ok"}], headers=self.headers)
        return web.Response(status=self.status, headers=self.headers)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


REFUSED = "address is loopback or private (set allow_private_network to send there)"


async def _send(url: str, record: dict[str, Any], **kwargs: Any) -> None:
    await WebhookSink(url, **kwargs).send(record)


def _deliver(peer: Peer, path: str = "/hook", **kwargs: Any) -> None:
    async def main() -> None:
        async with serve(peer.app()) as base:
            await _send(base + path, RECORDS[1], **kwargs)

    asyncio.run(main())


def test_webhook_posts_json() -> None:
    peer = Peer(status=204)
    _deliver(peer, allow_private_network=True)
    assert [(path, json.loads(body)) for path, _, body in peer.seen] == [("/hook", RECORDS[1])]


@pytest.mark.parametrize(
    ("status", "delay", "reason"), [(500, 0.0, "HTTP 500"), (200, 1.0, "timeout")]
)
def test_webhook_failures_raise_sink_error(status: int, delay: float, reason: str) -> None:
    with pytest.raises(ExportSinkError) as info:
        _deliver(Peer(status=status, delay=delay), timeout=0.3, allow_private_network=True)
    assert info.value.reason == reason
    assert "break" not in str(info.value)


def test_webhook_down_raises_sink_error() -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    with pytest.raises(ExportSinkError) as info:
        asyncio.run(_send(url, RECORDS[0], allow_private_network=True))
    assert info.value.sink == "webhook" and info.value.reason != REFUSED


def test_webhook_never_follows_a_redirect() -> None:
    internal = Peer()
    with threaded(internal.app()) as internal_base:
        receiver = Peer(status=307, headers={"Location": f"{internal_base}/internal"})
        with pytest.raises(ExportSinkError) as info:
            _deliver(receiver, allow_private_network=True)
    assert info.value.reason == "HTTP 307"
    assert len(receiver.seen) == 1 and internal.seen == []


def test_webhook_keeps_no_cookies() -> None:
    receiver = Peer(headers={"Set-Cookie": "sid=from-the-receiver; Path=/"})
    with threaded(receiver.app()) as base:
        sink = WebhookSink(base.replace("127.0.0.1", "localhost") + "/hook",
                           allow_private_network=True)  # fmt: skip

        async def twice() -> None:
            await sink.send(RECORDS[0])
            await sink.send(RECORDS[0])

        asyncio.run(twice())
    assert [cookie for _, cookie, _ in receiver.seen] == [None, None]


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "10.0.0.7", "169.254.169.254",
     "192.168.1.20", "100.64.0.1", "0.0.0.0"],
)  # fmt: skip
def test_private_addresses_need_the_opt_in(host: str) -> None:
    peer = Peer()
    with threaded(peer.app()) as base:
        port = base.rsplit(":", 1)[1]
        with pytest.raises(ExportSinkError) as info:
            asyncio.run(_send(f"http://{host}:{port}/hook", RECORDS[0], timeout=2))
    assert info.value.reason == REFUSED
    assert peer.seen == []  # refused before a byte was sent


def test_a_public_address_passes_the_guard() -> None:
    # Nothing answers here (no route out): what matters is that it was tried, not refused.
    with pytest.raises(ExportSinkError) as info:
        asyncio.run(_send("http://1.1.1.1:9/hook", RECORDS[0], timeout=0.5))
    assert info.value.reason != REFUSED


def test_the_opt_in_is_for_webhooks_only() -> None:
    with pytest.raises(ValidationError, match="webhook sinks only"):
        ExportSection.model_validate({"sinks": [{"jsonl": "a", "allow_private_network": True}]})
    spec = ExportSection.model_validate({"sinks": [{"webhook": "http://10.0.0.7/h"}]}).sinks[0]
    assert spec.allow_private_network is False


# -- the same attacks through the running gateway -----------------------------------------


def _exporting(gateways: GatewayFactory, url: str, **sink: Any) -> Any:
    gw = gateways.build({"export": {"sinks": [{"webhook": url, "timeout_seconds": 2, **sink}]}})
    gw.say("c1", "hello")
    return gw


def test_gateway_export_is_not_redirected_to_an_internal_address(
    gateways: GatewayFactory,
) -> None:
    internal = Peer()
    with threaded(internal.app()) as internal_base:
        receiver = Peer(status=307, headers={"Location": f"{internal_base}/internal"})
        with threaded(receiver.app()) as base:
            gw = _exporting(gateways, base + "/hook", allow_private_network=True)
            response = gw.call("POST", f"/v1/conversations/{gw.cid('c1')}/export")
    assert (response.status_code, response.json()["error"]) == (502, "export_failed")
    assert response.json()["message"].endswith("(HTTP 307)")
    assert len(receiver.seen) == 1 and internal.seen == []


def test_gateway_export_refuses_a_loopback_receiver_without_the_opt_in(
    gateways: GatewayFactory,
) -> None:
    receiver = Peer()
    with threaded(receiver.app()) as base:
        gw = _exporting(gateways, base + "/hook")
        response = gw.call("POST", f"/v1/conversations/{gw.cid('c1')}/export")
    assert (response.status_code, response.json()["error"]) == (502, "export_failed")
    assert "allow_private_network" in response.json()["message"]
    assert receiver.seen == []


def test_a_receivers_cookie_never_reaches_the_bot(gateways: GatewayFactory) -> None:
    """The bot client and the export webhooks once shared one session and cookie jar."""
    bot, receiver = Peer(), Peer(headers={"Set-Cookie": "sid=from-the-receiver; Path=/"})
    with threaded(bot.app()) as bot_base, threaded(receiver.app()) as hook_base:
        bot_url = bot_base.replace("127.0.0.1", "localhost") + "/webhooks/rest/webhook"
        hook = hook_base.replace("127.0.0.1", "localhost") + "/hook"
        sinks = [{"webhook": hook, "allow_private_network": True}]
        gw = gateways.build({"export": {"sinks": sinks}}, bot_url=bot_url)
        gw.say("c1", "hello")
        for _ in range(2):
            exported = gw.call("POST", f"/v1/conversations/{gw.cid('c1')}/export", Role.ADMIN)
            assert exported.status_code == 200, exported.text
            gw.say("c1", "hello again")
    assert len(bot.seen) == 3 and len(receiver.seen) == 2
    assert [cookie for _, cookie, _ in bot.seen] == [None, None, None]
    assert [cookie for _, cookie, _ in receiver.seen] == [None, None]
