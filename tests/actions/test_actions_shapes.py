"""Issue 19, findings 1 and 2: what an opted-in action hands back never holds a revealed value.

Real rasa-sdk actions (tests/actions/live_pkg/cc_live_actions.py) against the live
coatcheck service: in process through `ActionExecutor` (also with a streaming sink), and
over HTTP through the real rasa-sdk server. Every dispatcher argument, `name=` template
variables, image URLs, dict keys, tuples, sets, stream chunks, slot values and other events.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from rasa_sdk.executor import ActionExecutor

from coatcheck.actions import CoatcheckClient, UnsupportedValue, find_references
from tests.actions.conftest import new_conversation, seed_text
from tests.actions.live_pkg.cc_live_actions import ActionCardLast4, ActionShapes

Coatcheck = Any  # the `coatcheck` fixture's object (tests/actions/conftest.py)
pytestmark = pytest.mark.anyio

EMAIL = "dana.shapes@example.net"
PIN = "482915"
CARD = "4111111111111111"


async def _seed(cc: Coatcheck, conversation: str, entity_type: str, value: str) -> str:
    text = await seed_text(cc, conversation, value, entity_type)
    (ref,) = find_references(text)
    assert ref.entity_type == entity_type
    return ref.token


def _executor(action: Any, cc: Coatcheck) -> ActionExecutor:
    action.make_client = lambda: CoatcheckClient(cc.url, cc.action_key, timeout=10)
    executor = ActionExecutor()
    executor.register_action(action)
    return executor


async def _shapes_payload(
    cc: Coatcheck, webhook: Any, extra: list[str]
) -> tuple[dict[str, Any], str, str]:
    conv = new_conversation(cc, "shapes")
    email_ref = await _seed(cc, conv, "EMAIL_ADDRESS", EMAIL)
    pin_ref = await _seed(cc, conv, "PIN", PIN)
    payload = webhook("action_shapes", conv, {"email": email_ref, "pin": pin_ref, "extra": extra})
    return payload, email_ref, pin_ref


def _assert_shapes(responses: list[Any], events: list[Any], email_ref: str, pin_ref: str) -> None:
    """Each shape came back holding the reference where the value was."""
    assert EMAIL not in repr((responses, events)) and PIN not in repr((responses, events))
    assert responses[0]["response"] == "utter_receipt" and responses[0]["name"] == email_ref
    assert responses[1]["custom"] == {"customer": {"name": email_ref}}
    assert responses[2]["image"] == "https://cdn.example/qr?to=" + email_ref
    keyed = responses[3]["custom"]
    assert keyed.keys() == {email_ref, "t"} and list(keyed["t"]) == [email_ref]  # a tuple
    everything = responses[4]
    assert everything["text"] == f"mail {email_ref}"
    assert everything["buttons"] == [
        {"title": email_ref, "payload": '/inform{"email": "' + email_ref + '"}'}
    ]
    assert everything["elements"] == [
        {"title": email_ref, "template": email_ref, "event": email_ref}
    ]
    assert everything["attachment"] == email_ref and everything["timestamp"] == email_ref
    assert everything[email_ref] == "as a keyword"
    texts = [item["text"] for item in responses[5:]]
    assert f"streamed {email_ref}" in texts and f"left open {email_ref}" in texts
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["email_copy"] == email_ref
    contact = slots["contact"]
    assert contact["to"] == [email_ref] and contact["pin"] == pin_ref  # int(pin) too
    assert list(contact[email_ref]) == [email_ref, 7]
    assert slots["raw_event"] == [email_ref]
    (bot,) = [e for e in events if e["event"] == "bot"]
    assert bot["text"] == email_ref and bot["data"]["elements"] == [{"name": email_ref}]


async def test_every_shape_in_process(webhook: Any, coatcheck: Coatcheck) -> None:
    payload, email_ref, pin_ref = await _shapes_payload(coatcheck, webhook, ["set"])
    result = await _executor(ActionShapes(), coatcheck).run(payload)
    assert result is not None
    _assert_shapes(result.responses, result.events, email_ref, pin_ref)
    (sets,) = [item["custom"] for item in result.responses if "s" in item["custom"]]
    assert sets == {"s": {email_ref}, "f": frozenset({pin_ref})}


async def test_every_shape_over_http(
    webhook: Any, coatcheck: Coatcheck, action_server: tuple[str, Any]
) -> None:
    payload, email_ref, pin_ref = await _shapes_payload(coatcheck, webhook, [])
    response = httpx.post(f"{action_server[0]}/webhook", json=payload, timeout=30)
    assert response.status_code == 200, response.text
    assert EMAIL not in response.text and PIN not in response.text
    body = response.json()
    _assert_shapes(body["responses"], body["events"], email_ref, pin_ref)


async def test_stream_chunks_never_reach_a_streaming_sink_in_clear(
    webhook: Any, coatcheck: Coatcheck
) -> None:
    payload, email_ref, pin_ref = await _shapes_payload(coatcheck, webhook, [])
    sink: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    result = await _executor(ActionShapes(), coatcheck).run(payload, sink=sink)
    assert result is not None
    streamed = []
    while not sink.empty():
        streamed.append(sink.get_nowait())
    assert EMAIL not in repr(streamed) and EMAIL not in repr(result.responses)
    assert [item["event"] for item in streamed] == ["stream_done"]
    _assert_shapes(result.responses, result.events, email_ref, pin_ref)


async def test_a_value_that_cannot_be_walked_fails_the_run(
    webhook: Any, coatcheck: Coatcheck
) -> None:
    payload, _, _ = await _shapes_payload(coatcheck, webhook, ["object"])
    with pytest.raises(UnsupportedValue) as info:
        await _executor(ActionShapes(), coatcheck).run(payload)
    assert info.value.name == "_Opaque" and EMAIL not in str(info.value)


async def test_values_of_a_type_never_include_a_longer_type(
    webhook: Any, coatcheck: Coatcheck
) -> None:
    """Finding 2: `values("CARD")` once returned CARD_PIN values too (a prefix test)."""
    conv = new_conversation(coatcheck, "card")
    card_ref = await _seed(coatcheck, conv, "CARD", CARD)
    pin_ref = await _seed(coatcheck, conv, "CARD_PIN", PIN)
    payload = webhook("action_card_last4", conv, {"card": card_ref, "card_pin": pin_ref})
    result = await _executor(ActionCardLast4(), coatcheck).run(payload)
    assert result is not None
    slots = {e["name"]: e["value"] for e in result.events}
    assert slots == {"card_last4": CARD[-4:], "cards_seen": 1}
    assert PIN[-4:] not in json.dumps(result.events)
