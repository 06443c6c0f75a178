"""Directive helpers and the capture result parser (pure, no service)."""

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from coatcheck.actions import (
    CaptureResult,
    capture_directive,
    capture_result,
    confirmation,
    luhn,
    utter_capture,
    utter_confirmation,
)


def _tracker(latest: dict[str, Any]) -> Tracker:
    return Tracker("conv-1", {}, latest, [], False, None, {}, "action_listen")


def test_confirmation_reply_shape() -> None:
    text = "You gave CC_EMAIL_ADDRESS_7k2m9xq4cw, right?"
    assert confirmation(text) == {"custom": {"coatcheck": {"confirm": True, "text": text}}}
    dispatcher = CollectingDispatcher()
    utter_confirmation(dispatcher, text)
    assert dispatcher.messages[0]["custom"] == confirmation(text)["custom"]
    assert dispatcher.messages[0]["text"] is None


def test_capture_directive_in_reply() -> None:
    dispatcher = CollectingDispatcher()
    utter_capture(dispatcher, "CREDIT_CARD", luhn(), retries=1, retry_text="Again?")
    assert dispatcher.messages[0]["custom"] == {
        "coatcheck": {
            "expect": "CREDIT_CARD",
            "capture": "secure",
            "check": {"op": "luhn"},
            "retries": 1,
            "retry_text": "Again?",
        }
    }


def test_capture_directive_rejects_negative_retries() -> None:
    with pytest.raises(ValueError, match="retries"):
        capture_directive("PIN", retries=-1)


def _entities(**fields: Any) -> list[dict[str, Any]]:
    return [{"entity": k, "value": v} for k, v in fields.items()]


@pytest.mark.parametrize(
    ("latest", "expected"),
    [
        (
            {
                "intent": {"name": "coatcheck_capture"},
                "entities": _entities(type="PIN", ok=True, ref="CC_PIN_0123456789"),
            },
            CaptureResult("PIN", True, "CC_PIN_0123456789"),
        ),
        (
            {
                "intent": {"name": "coatcheck_capture"},
                "entities": _entities(type="PIN", ok=False, ref=None),
            },
            CaptureResult("PIN", False, None),
        ),
        (  # a ref with ok false is not passed on
            {
                "intent": {"name": "coatcheck_capture"},
                "entities": _entities(type="PIN", ok=False, ref="CC_PIN_0123456789"),
            },
            CaptureResult("PIN", False, None),
        ),
        ({"intent": {"name": "greet"}, "entities": []}, None),
        ({}, None),
    ],
)
def test_capture_result(latest: dict[str, Any], expected: CaptureResult | None) -> None:
    assert capture_result(_tracker(latest)) == expected
