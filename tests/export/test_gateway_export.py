"""Export controls through the real gateway: the config routes, and nested records
delivered to a JSONL file and a loopback webhook (allow, deny, mandatory, default)."""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from aiohttp import web
from sqlalchemy import text

from coatcheck.middleware.app import create_app
from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.settings import Settings
from tests.export.gateway_app import GatewayFactory, Harness
from tests.external.loopback import closed_port, threaded

CONFIG_URL = "/v1/config/export-redaction"
MANDATORY = {"conversation_id", "tenant", "ended_at"}
# Canary PII planted through the channel webhook; none may reach an export.
CANARIES = ["quokka.canary@example.com", "+1 415 555 0188", "4111 1111 1111 1111"]
MESSAGES = [
    f"hi, mail me at {CANARIES[0]}",
    f"or call {CANARIES[1]} please",
    f"card {CANARIES[2]} and {CANARIES[0]} again",
]
LOOPBACK = {"allow_private_network": True}  # the receivers here listen on 127.0.0.1
BASE_CONFIG: dict[str, Any] = {
    "types": {"EMAIL_ADDRESS": {"display": "mask", "mask": {"first": 0, "last": 6}}}
}


@dataclass
class Receiver:
    """A loopback analytics webhook that records what it is sent."""

    bodies: list[bytes] = field(default_factory=list)
    status: int = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        return web.json_response({}, status=self.status)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    with threaded(app) as base:
        yield rec, f"{base}/hook"


@pytest.fixture
def exporting(
    gateways: GatewayFactory, receiver: tuple[Receiver, str], tmp_path: Path
) -> tuple[Harness, Receiver, Path]:
    rec, url = receiver
    jsonl = tmp_path / "export.jsonl"
    sinks = [{"jsonl": str(jsonl)}, {"webhook": url, **LOOPBACK}]
    config = {**BASE_CONFIG, "export": {"sinks": sinks}}
    gw = gateways.build(config)
    for message in MESSAGES:
        gw.say("conv-1", message)
    return gw, rec, jsonl


def export(gw: Harness, conv: str = "conv-1") -> dict[str, Any]:
    response = gw.call("POST", f"/v1/conversations/{gw.cid(conv)}/export")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def put(gw: Harness, config: Any, role: Role | None = Role.ADMIN) -> Any:
    return gw.call("PUT", CONFIG_URL, role, json=config)


def settled(gw: Harness, timeout: float = 10.0) -> None:
    """Wait until the outbox worker has delivered (or parked) every record of an end."""
    deadline = time.monotonic() + timeout
    while gw.services.store.outbox.counts()["pending"]:
        assert time.monotonic() < deadline, "the outbox was not drained"
        time.sleep(0.05)


def delivered(rec: Receiver, jsonl: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The newest record in the JSONL file and at the webhook."""
    line = jsonl.read_text("utf-8").splitlines()[-1]
    return json.loads(line), json.loads(rec.bodies[-1])


# -- the config routes ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize(
    ("role", "status"),
    [(None, 401)] + [(r, 403) for r in Role if r is not Role.ADMIN],
)
def test_config_routes_are_admin_only(
    gateways: GatewayFactory, method: str, role: Role | None, status: int
) -> None:
    gw = gateways.build({})
    body = {"type": "allow", "fields": ["metrics"]} if method == "PUT" else None
    response = gw.call(method, CONFIG_URL, role, json=body)
    assert response.status_code == status
    if method == "PUT":  # the role is checked before the body: no probing of validation
        bad = gw.call(method, CONFIG_URL, role, json={"type": "deny", "fields": ["tenant"]})
        assert bad.status_code == status
    # Nothing changed for the admin either.
    assert gw.call("GET", CONFIG_URL).json()["version"] == 0


def test_default_put_get_delete(gateways: GatewayFactory) -> None:
    gw = gateways.build({})
    assert gw.call("GET", CONFIG_URL).json() == {
        "type": "allow",
        "fields": [],
        "mandatory": sorted(MANDATORY),
        "default": True,
        "version": 0,
    }
    put_response = put(gw, {"type": "deny", "fields": ["turns.text", "metrics"]})
    assert put_response.status_code == 200
    assert put_response.json()["version"] == 1
    got = gw.call("GET", CONFIG_URL).json()
    assert (got["type"], got["fields"], got["default"], got["version"]) == (
        "deny",
        ["turns.text", "metrics"],
        False,
        1,
    )
    deleted = gw.call("DELETE", CONFIG_URL).json()
    assert (deleted["default"], deleted["fields"], deleted["version"]) == (True, [], 2)
    assert gw.call("GET", CONFIG_URL).json() == deleted


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"type": "deny", "fields": ["tenant"]}, "'tenant'"),
        ({"type": "deny", "fields": ["turns.text", "ended_at"]}, "'ended_at'"),
        # the position and our field's name, never the submitted path (no echo of input)
        ({"type": "deny", "fields": ["conversation_id.part"]}, "fields[0]: 'conversation_id'"),
        ({"type": "allow", "fields": ["turns[0].text"]}, "fields[0]: invalid path"),
        ({"type": "allow", "fields": ["turns..text"]}, "fields[0]: invalid path"),
        ({"type": "maybe", "fields": []}, "type"),
        ({"type": "allow", "fields": "metrics"}, "fields"),
        ({"fields": ["metrics"]}, "type"),
        ({"type": "allow", "fields": [], "extra": 1}, "<unexpected field>"),
        ({"type": "allow", "fields": ["a" * 201]}, "fields.0"),
        ({"type": "allow", "fields": [f"f{i}" for i in range(257)]}, "fields"),
    ],
)
def test_bad_configs_are_422_naming_the_path(
    gateways: GatewayFactory, config: dict[str, Any], named: str
) -> None:
    gw = gateways.build({})
    assert put(gw, {"type": "allow", "fields": ["metrics"]}).status_code == 200
    response = put(gw, config)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert named in response.json()["message"]
    got = gw.call("GET", CONFIG_URL).json()  # the previous config stands
    assert (got["fields"], got["version"]) == (["metrics"], 1)


# -- exports --------------------------------------------------------------------------------


def test_default_exports_the_mandatory_fields_only(
    exporting: tuple[Harness, Receiver, Path],
) -> None:
    gw, rec, jsonl = exporting
    result = export(gw)
    assert result["config_version"] == 0 and result["delivered"] == 2
    assert result["record"] == {
        "conversation_id": gw.cid("conv-1"),
        "tenant": "default",
        "ended_at": None,
    }
    assert delivered(rec, jsonl) == (result["record"], result["record"])


def test_allow_list_on_the_nested_record(exporting: tuple[Harness, Receiver, Path]) -> None:
    gw, rec, jsonl = exporting
    fields = ["turns.direction", "turns.entities.type", "metrics.entities.by_type", "nope.x"]
    assert put(gw, {"type": "allow", "fields": fields}).status_code == 200
    record = export(gw)["record"]
    assert set(record) == MANDATORY | {"turns", "metrics"}  # mandatory kept though not listed
    assert record["metrics"] == {
        "entities": {"by_type": {"EMAIL_ADDRESS": 4, "PHONE_NUMBER": 2, "CREDIT_CARD": 2}}  # echoed
    }
    assert record["turns"] == [
        {"direction": "user", "entities": [{"type": "EMAIL_ADDRESS"}]},
        {"direction": "bot", "entities": [{"type": "EMAIL_ADDRESS"}]},
        {"direction": "user", "entities": [{"type": "PHONE_NUMBER"}]},
        {"direction": "bot", "entities": [{"type": "PHONE_NUMBER"}]},
        {"direction": "user", "entities": [{"type": "CREDIT_CARD"}, {"type": "EMAIL_ADDRESS"}]},
        {"direction": "bot", "entities": [{"type": "CREDIT_CARD"}, {"type": "EMAIL_ADDRESS"}]},
    ]
    assert delivered(rec, jsonl) == (record, record)


def test_deny_list_on_the_nested_record(exporting: tuple[Harness, Receiver, Path]) -> None:
    gw, rec, jsonl = exporting
    fields = ["turns.text", "turns.entities.ref", "metrics.entities", "channel", "no.such"]
    assert put(gw, {"type": "deny", "fields": fields}).status_code == 200
    record = export(gw)["record"]
    assert set(record) == MANDATORY | {"started_at", "status", "turns", "metrics"}
    assert record["status"] == "active"
    assert set(record["metrics"]) == {"turns", "user_turns", "bot_turns", "duration_seconds"}
    assert record["metrics"]["turns"] == 6
    for turn in record["turns"]:
        assert set(turn) == {"direction", "entities", "at"}
        assert all(set(entity) == {"type"} for entity in turn["entities"])
    assert delivered(rec, jsonl) == (record, record)


def test_full_record_carries_bare_references_and_no_canary(
    exporting: tuple[Harness, Receiver, Path],
) -> None:
    gw, rec, jsonl = exporting
    assert put(gw, {"type": "deny", "fields": []}).status_code == 200
    record = export(gw)["record"]
    first = record["turns"][0]
    [entity] = first["entities"]
    assert first["text"] == f"hi, mail me at {entity['ref']}"  # no "(display)" after it
    assert "(" not in json.dumps(record["turns"])  # mask displays are cut away
    # Nothing of any canary leaves: not whole, not the masked tail the bot saw.
    exported = [jsonl.read_bytes(), *rec.bodies, json.dumps(record).encode()]
    for blob in exported:
        for canary in [*CANARIES, CANARIES[0][:-6]]:
            assert canary.encode() not in blob
    assert CANARIES[0][:-6] in gw.say("conv-2", f"x {CANARIES[0]}")[0]["text"]  # mask is live


def test_mandatory_fields_cannot_be_denied_and_stay_in_allow_lists(
    exporting: tuple[Harness, Receiver, Path],
) -> None:
    gw, _, _ = exporting
    assert put(gw, {"type": "deny", "fields": ["ended_at"]}).status_code == 422
    assert put(gw, {"type": "allow", "fields": ["status"]}).status_code == 200
    assert set(export(gw)["record"]) == MANDATORY | {"status"}


def test_put_applies_to_the_next_export_and_delete_restores_default(
    exporting: tuple[Harness, Receiver, Path],
) -> None:
    gw, rec, jsonl = exporting
    assert set(export(gw)["record"]) == MANDATORY
    put(gw, {"type": "allow", "fields": ["status"]})
    assert set(export(gw)["record"]) == MANDATORY | {"status"}
    gw.call("DELETE", CONFIG_URL)
    result = export(gw)
    assert set(result["record"]) == MANDATORY and result["config_version"] == 2
    lines = jsonl.read_text("utf-8").splitlines()
    assert [set(json.loads(line)) for line in lines] == [
        MANDATORY,
        MANDATORY | {"status"},
        MANDATORY,
    ]
    assert len(rec.bodies) == 3


def test_two_gateways_on_one_database_see_each_others_changes(
    gateways: GatewayFactory, db_url: str
) -> None:
    a = gateways.build({}, database_url=db_url)
    b = gateways.build({}, database_url=db_url)
    a.say("conv-9", f"mail {CANARIES[0]}")
    assert put(a, {"type": "allow", "fields": ["metrics.turns"]}).status_code == 200
    result = export(b, "conv-9")
    assert result["config_version"] == 1
    assert result["record"]["metrics"] == {"turns": 2}
    assert b.call("DELETE", CONFIG_URL).status_code == 200
    assert a.call("GET", CONFIG_URL).json()["default"] is True
    assert set(export(a, "conv-9")["record"]) == MANDATORY


def test_a_stored_config_that_no_longer_validates_reads_as_default(
    exporting: tuple[Harness, Receiver, Path], caplog: pytest.LogCaptureFixture
) -> None:
    gw, _, _ = exporting
    put(gw, {"type": "allow", "fields": ["status"]})
    # As if written by a release before `tenant` became mandatory.
    with gw.services.engine.begin() as conn:
        conn.execute(
            text("UPDATE gw_export_config SET config_json = :c"),
            {"c": '{"type": "deny", "fields": ["tenant"]}'},
        )
    got = gw.call("GET", CONFIG_URL).json()
    assert (got["default"], got["version"]) == (True, 1)
    assert set(export(gw)["record"]) == MANDATORY
    assert "no longer valid" in caplog.text


def test_export_errors(
    gateways: GatewayFactory, tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    jsonl = tmp_path / "out.jsonl"
    dead = f"http://127.0.0.1:{closed_port()}/hook"
    sinks = [
        {"webhook": dead, "timeout_seconds": 1, **LOOPBACK},
        {"jsonl": str(jsonl)},
        {"webhook": url, **LOOPBACK},
    ]
    gw = gateways.build({"export": {"sinks": sinks}})
    gw.say("conv-1", f"hi {CANARIES[0]}")
    assert (
        gw.call("POST", f"/v1/conversations/{gw.cid('conv-1')}/export", Role.VIEWER).status_code
        == 403
    )
    unknown = gw.call("POST", "/v1/conversations/nobody/export")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_conversation")
    failed = gw.call("POST", f"/v1/conversations/{gw.cid('conv-1')}/export")
    assert (failed.status_code, failed.json()["error"]) == (502, "export_failed")
    assert failed.json()["message"].startswith("webhook:")
    # Every sink is tried: the later ones still got the record.
    assert len(jsonl.read_text("utf-8").splitlines()) == 1 and len(rec.bodies) == 1
    rec.status = 500
    assert gw.call("POST", f"/v1/conversations/{gw.cid('conv-1')}/export").status_code == 502


def test_sync_bridge_for_sync_callers(exporting: tuple[Harness, Receiver, Path]) -> None:
    """`Exporter.export_sync` from a threadpool thread (as a sync route would call it)."""
    gw, rec, jsonl = exporting
    put(gw, {"type": "allow", "fields": ["status"]})
    call = functools.partial(
        gw.services.exporter.export_sync, gw.cid("conv-1"), status="ended", ended_at=1_800_000_060.0
    )
    portal = gw.client.portal
    assert portal is not None
    result = portal.call(anyio.to_thread.run_sync, call)
    expected = {
        "conversation_id": gw.cid("conv-1"),
        "tenant": "default",
        "ended_at": "2027-01-15T08:01:00Z",
        "status": "ended",
    }
    assert result["record"] == expected
    assert delivered(rec, jsonl) == (expected, expected)


def test_no_sinks_still_returns_the_filtered_record(gateways: GatewayFactory) -> None:
    gw = gateways.build({})
    gw.say("conv-1", "hello")
    result = export(gw)
    assert result["delivered"] == 0 and set(result["record"]) == MANDATORY


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"sinks": [{"jsonl": "a", "webhook": "http://x/"}]}, "export.sinks.0"),
        ({"sinks": [{}]}, "export.sinks.0"),
        ({"sinks": [{"webhook": "not a url"}]}, "export.sinks.0.webhook"),
        ({"sinks": [{"jsonl": "a", "timeout_seconds": 0}]}, "export.sinks.0.timeout_seconds"),
        ({"sink": []}, "export.sink"),
    ],
)
def test_bad_export_section_is_refused_at_start(
    tmp_path: Path, section: dict[str, Any], field: str
) -> None:
    path = tmp_path / "c.yml"
    path.write_text(json.dumps({"export": section}), encoding="utf-8")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", config=path)
    with pytest.raises(ValueError, match=re.escape(f"COATCHECK_CONFIG: {field}: ")):
        create_app(settings)


# -- export when a conversation ends ----------------------------------------------------------


def test_ending_a_conversation_exports_its_record_once(
    exporting: tuple[Harness, Receiver, Path],
) -> None:
    gw, rec, jsonl = exporting
    assert put(gw, {"type": "deny", "fields": []}).status_code == 200
    response = gw.call("POST", f"/v1/conversations/{gw.cid('conv-1')}/end", Role.BOT)
    assert response.status_code == 200, response.text
    settled(gw)
    file_record, hook_record = delivered(rec, jsonl)
    assert file_record == hook_record
    assert file_record["conversation_id"] == gw.cid("conv-1")
    assert file_record["status"] == response.json()["status"] == "shredded"
    assert file_record["ended_at"] is not None
    assert len(file_record["turns"]) == 2 * len(MESSAGES)  # both directions (echo bot)
    for canary in CANARIES:
        assert canary.encode() not in jsonl.read_bytes()
    # Ending again changes nothing and sends nothing more.
    assert gw.call("POST", f"/v1/conversations/{gw.cid('conv-1')}/end", Role.BOT).status_code == 200
    settled(gw)
    assert len(jsonl.read_text("utf-8").splitlines()) == 1 and len(rec.bodies) == 1


def test_a_failing_sink_does_not_undo_the_end(gateways: GatewayFactory, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/hook"
    jsonl = tmp_path / "out.jsonl"
    sinks = [{"webhook": dead, "timeout_seconds": 1, **LOOPBACK}, {"jsonl": str(jsonl)}]
    gw = gateways.build({**BASE_CONFIG, "export": {"sinks": sinks}})
    gw.say("conv-9", MESSAGES[0])
    response = gw.call("POST", f"/v1/conversations/{gw.cid('conv-9')}/end", Role.BOT)
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 10
    while not jsonl.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(jsonl.read_text("utf-8").splitlines()) == 1  # the other sink still got it
    status = gw.call("GET", f"/v1/conversations/{gw.cid('conv-9')}/history", Role.AUDITOR)
    assert status.status_code == 200
