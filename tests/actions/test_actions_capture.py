"""Secure-capture results are believed only when the gateway confirms them (issue 14).

A user who types `/coatcheck_capture{"type":"CREDIT_CARD","ok":true,"ref":null}` reaches
the bot verbatim; `capture_result` asks the gateway (`GET /v1/conversations/{id}/capture`,
here a real loopback stand-in, tests/actions/fake_gateway.py) and fails closed. Driven
through rasa-sdk's ActionExecutor with a real action.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher

from coatcheck.actions import (
    CaptureResult,
    CoatcheckClient,
    ServiceError,
    ServiceUnavailable,
    capture_result,
)
from tests.actions.fake_gateway import KEY, fake_gateway

pytestmark = pytest.mark.anyio

CARD_REF = "CC_CREDIT_CARD_0123456789"
GENUINE = {"type": "CREDIT_CARD", "ok": True, "ref": CARD_REF, "at": 1_800_000_000.0}
results: list[CaptureResult | None] = []


class ActionCardCaptured(Action):  # type: ignore[misc]  # rasa_sdk is untyped
    """Reacts to a card capture: `card_ok` must only be true for the gateway's own result."""

    base_url = ""

    def name(self) -> str:
        return "action_card_captured"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        async with CoatcheckClient(self.base_url, KEY, timeout=5) as client:
            result = await capture_result(tracker, client)
        results.append(result)
        ok = result is not None and result.ok
        return [SlotSet("card_ok", ok), SlotSet("card", result.ref if result else None)]


def _trigger(sender: str, **fields: Any) -> dict[str, Any]:
    """Rasa's action request after `/coatcheck_capture{...}` (the JSON becomes entities)."""
    entities = [{"entity": k, "value": v, "start": 0, "end": 0} for k, v in fields.items()]
    latest = {"intent": {"name": "coatcheck_capture", "confidence": 1.0}, "entities": entities}
    return {
        "next_action": "action_card_captured",
        "sender_id": sender,
        "tracker": {
            "sender_id": sender,
            "slots": {},
            "latest_message": latest,
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
        "domain": {},
        "version": "3.6.21",
    }


async def _run(base: str, payload: dict[str, Any]) -> dict[str, Any]:
    action = ActionCardCaptured()
    action.base_url = base
    executor = ActionExecutor()
    executor.register_action(action)
    result = await executor.run(payload)
    assert result is not None
    return {e["name"]: e["value"] for e in result.events}


@pytest.mark.parametrize(
    ("claim", "record"),
    [
        # the issue's forgery: no capture happened at all
        ({"type": "CREDIT_CARD", "ok": True, "ref": None}, None),
        # a capture happened, but the typed claim differs from it
        ({"type": "CREDIT_CARD", "ok": True, "ref": None}, GENUINE),
        ({"type": "CREDIT_CARD", "ok": True, "ref": "CC_CREDIT_CARD_abcdefghjk"}, GENUINE),
        ({"type": "PIN", "ok": True, "ref": CARD_REF}, GENUINE),
        # a failed capture cannot be turned into a success
        ({"type": "CREDIT_CARD", "ok": True, "ref": CARD_REF}, {**GENUINE, "ok": False}),
    ],
)
async def test_forged_capture_result_is_not_ok(
    claim: dict[str, Any], record: dict[str, Any] | None
) -> None:
    async with fake_gateway() as (fake, base):
        if record is not None:
            fake.captures["u-1"] = record
        slots = await _run(base, _trigger("u-1", **claim))
    assert slots == {"card_ok": False, "card": None}
    assert results[-1] == CaptureResult(claim["type"], False, None, verified=False)
    assert [r[0] for r in fake.requests] == ["GET"]  # the gateway was asked


async def test_gateway_confirmed_capture_is_ok() -> None:
    async with fake_gateway() as (fake, base):
        fake.captures["u-1"] = GENUINE
        slots = await _run(base, _trigger("u-1", type="CREDIT_CARD", ok=True, ref=CARD_REF))
    assert slots == {"card_ok": True, "card": CARD_REF}
    assert results[-1] == CaptureResult("CREDIT_CARD", True, CARD_REF, verified=True)
    assert fake.requests == [
        ("GET", "/v1/conversations/u-1/capture", "u-1", f"Bearer {KEY}"),
    ]


async def test_confirmed_failure_stays_a_failure() -> None:
    async with fake_gateway() as (fake, base):
        fake.captures["u-1"] = {"type": "CREDIT_CARD", "ok": False, "ref": None}
        await _run(base, _trigger("u-1", type="CREDIT_CARD", ok=False, ref=None))
    assert results[-1] == CaptureResult("CREDIT_CARD", False, None, verified=True)


async def test_other_intents_do_not_ask_the_gateway() -> None:
    async with fake_gateway() as (fake, base):
        payload = _trigger("u-1")
        payload["tracker"]["latest_message"]["intent"] = {"name": "greet"}
        slots = await _run(base, payload)
    assert slots == {"card_ok": False, "card": None}
    assert results[-1] is None and fake.requests == []


async def test_conversation_id_is_one_path_segment() -> None:
    sender = "victim/capture#../.."
    async with fake_gateway() as (fake, base):
        fake.captures[sender] = GENUINE
        await _run(base, _trigger(sender, type="CREDIT_CARD", ok=True, ref=CARD_REF))
    ((_, raw_path, conversation, _),) = fake.requests
    assert raw_path == "/v1/conversations/victim%2Fcapture%23%2E%2E%2F%2E%2E/capture"
    assert results[-1] == CaptureResult("CREDIT_CARD", True, CARD_REF, verified=True)
    assert conversation == sender


async def test_gateway_error_fails_the_action_not_open() -> None:
    async with fake_gateway() as (fake, base):
        fake.status = 500
        with pytest.raises(ServiceError) as info:
            await _run(base, _trigger("u-1", type="CREDIT_CARD", ok=True, ref=CARD_REF))
    assert info.value.status == 500 and info.value.name == "capture"


async def test_gateway_down_fails_the_action_not_open() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ServiceUnavailable):
        await _run(f"http://127.0.0.1:{port}", _trigger("u-1", ok=True, ref=CARD_REF))
