"""In-process: rasa-sdk's ActionExecutor runs opted-in actions against a live coatcheck."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher

from coatcheck.actions import ActionFailed, CoatcheckClient, RevealedView, RevealingAction, reveals
from coatcheck.actions.examples import ActionSendReceipt, sent_receipts
from tests.actions.conftest import new_conversation, seed_text

Coatcheck = Any  # the `coatcheck` fixture's object (tests/actions/conftest.py)
pytestmark = pytest.mark.anyio

EMAIL = "bob.jones@example.net"


class _Live:
    """Mixin: a client for the live test service instead of the environment."""

    service: Coatcheck

    def make_client(self) -> CoatcheckClient:
        return CoatcheckClient(self.service.url, self.service.action_key, timeout=10)


class _Receipt(_Live, ActionSendReceipt):
    pass


seen: list[Any] = []


@reveals("EMAIL_ADDRESS", purpose="executor test")
class _Peek(_Live, RevealingAction):
    def name(self) -> str:
        return "action_peek"

    async def run_revealed(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
        revealed: RevealedView,
    ) -> list[dict[str, Any]]:
        seen.append((revealed.slot("email"), revealed.values("EMAIL_ADDRESS"), tracker.slots))
        seen.append(revealed.slots)
        if revealed.slot("fail"):
            raise ValueError(f"backend rejected {revealed.slot('email')}")
        nested = {"to": [revealed.slot("email")], "note": "cc carol@example.com"}
        return [SlotSet("nested", nested)]


async def _seed(service: Coatcheck, conversation: str, value: str) -> str:
    return await seed_text(service, conversation, value, "EMAIL_ADDRESS")


def _executor(action: Any, service: Coatcheck) -> ActionExecutor:
    action.service = service
    executor = ActionExecutor()
    executor.register_action(action)
    return executor


async def test_example_action_calls_backend_with_real_value(
    webhook: Any, coatcheck: Coatcheck
) -> None:
    conv = new_conversation(coatcheck, "exec")
    ref = (await _seed(coatcheck, conv, EMAIL)).split("(")[0]
    before = len(sent_receipts)
    result = await _executor(_Receipt(), coatcheck).run(
        webhook("action_send_receipt", conv, {"email": ref})
    )
    assert result is not None
    assert sent_receipts[before:] == [1]  # the backend got a real address
    events = {e["name"]: e["value"] for e in result.events}
    assert events == {"receipt_sent": True, "receipt_to": ref}
    assert result.responses[0]["text"] == f"Receipt sent to {ref}."


async def test_values_in_nested_events_are_retokenized(webhook: Any, coatcheck: Coatcheck) -> None:
    conv = new_conversation(coatcheck, "exec")
    ref = (await _seed(coatcheck, conv, EMAIL)).split("(")[0]
    seen.clear()
    result = await _executor(_Peek(), coatcheck).run(
        webhook("action_peek", conv, {"email": ref, "fail": False})
    )
    assert result is not None
    assert seen[0][0] == EMAIL and seen[0][1] == [EMAIL]
    assert seen[0][2]["email"] == ref  # the tracker itself keeps the reference
    (event,) = result.events
    assert event["value"]["to"] == [ref]
    assert "carol@example.com" not in event["value"]["note"]
    assert "CC_EMAIL_ADDRESS_" in event["value"]["note"]


async def test_no_declared_reference_means_no_grant(webhook: Any, coatcheck: Coatcheck) -> None:
    conv = new_conversation(coatcheck, "exec")
    seen.clear()
    result = await _executor(_Peek(), coatcheck).run(
        webhook("action_peek", conv, {"email": "CC_PHONE_NUMBER_0123456789"})
    )
    assert result is not None
    assert seen[0][0] == "CC_PHONE_NUMBER_0123456789" and seen[0][1] == []


async def test_failure_inside_run_revealed_drops_the_value(
    webhook: Any, coatcheck: Coatcheck
) -> None:
    conv = new_conversation(coatcheck, "exec")
    ref = (await _seed(coatcheck, conv, EMAIL)).split("(")[0]
    with pytest.raises(ActionFailed) as info:
        await _executor(_Peek(), coatcheck).run(
            webhook("action_peek", conv, {"email": ref, "fail": True})
        )
    assert EMAIL not in str(info.value)
    assert "ValueError" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


async def test_list_slots_are_resolved_element_wise(webhook: Any, coatcheck: Coatcheck) -> None:
    conv = new_conversation(coatcheck, "exec")
    ref = (await _seed(coatcheck, conv, EMAIL)).split("(")[0]
    other = "CC_PHONE_NUMBER_0123456789"
    seen.clear()
    result = await _executor(_Peek(), coatcheck).run(
        webhook("action_peek", conv, {"email": None, "emails": [ref, other]})
    )
    assert result is not None
    assert seen[1]["emails"] == [EMAIL, other]
