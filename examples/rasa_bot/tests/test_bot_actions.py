"""The example bot's actions through rasa-sdk's real executor (no server, no gateway).

The opt-in action needs the gateway and is exercised by e2e/run.sh; here: the confirmation
directive keeps the reference, the reset clears the form, and the stand-in backend refuses
references.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bot_actions.contact import deliver_receipt
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import ActionNotFoundException

REF = "CC_EMAIL_ADDRESS_7k2m9xq4cw"


def _payload(action: str, slots: dict[str, Any]) -> dict[str, Any]:
    """The shape of a Rasa 3.6 action-server request, pointed at `action` with these slots."""
    return {
        "next_action": action,
        "sender_id": "conv-1",
        "version": "3.6.21",
        "domain": {},
        "tracker": {
            "sender_id": "conv-1",
            "slots": {"email": None, "phone": None, "pin": None, **slots},
            "latest_message": {"text": "CC_PIN_abcdefghjk", "intent": {}, "entities": []},
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "contact_form",
        },
    }


def _run(action: str, slots: dict[str, Any]) -> dict[str, Any]:
    executor = ActionExecutor()
    executor.register_package("bot_actions")
    result = asyncio.run(executor.run(_payload(action, slots)))
    assert result is not None
    return dict(result)


def test_confirmation_is_a_directive_with_the_reference() -> None:
    result = _run("action_confirm_contact", {"email": REF})
    assert result["events"] == []
    [response] = result["responses"]
    assert response["custom"] == {
        "coatcheck": {"confirm": True, "text": f"You gave {REF}, is that right?"}
    }
    assert not response.get("text")  # the plain text would reach the user unrevealed


def test_reset_clears_every_contact_slot() -> None:
    result = _run("action_reset_contact", {"email": REF})
    cleared = {(e["event"], e["name"], e["value"]) for e in result["events"]}
    assert cleared == {("slot", name, None) for name in ("email", "phone", "pin")}


def test_unknown_action_is_refused() -> None:
    with pytest.raises(ActionNotFoundException):
        _run("action_does_not_exist", {})


@pytest.mark.parametrize(
    ("address", "sent"),
    [
        ("canary.x@example.org", True),
        (REF, False),  # the opt-in did not happen: a reference must not be "mailed"
        ("CC_EMAIL_ADDRESS_7k2m9xq4cw@x", False),
        ("", False),
        ("not an address", False),
    ],
)
def test_deliver_receipt_wants_a_real_address(address: str, sent: bool) -> None:
    assert deliver_receipt(address) is sent
