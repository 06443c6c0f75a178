"""Directive helpers (pure, no service); capture results: test_actions_capture.py."""

import pytest
from rasa_sdk.executor import CollectingDispatcher

from coatcheck.actions import (
    capture_directive,
    confirmation,
    utter_capture,
    utter_confirmation,
)


def test_confirmation_reply_shape() -> None:
    text = "You gave CC_EMAIL_ADDRESS_7k2m9xq4cw, right?"
    assert confirmation(text) == {"custom": {"coatcheck": {"confirm": True, "text": text}}}
    dispatcher = CollectingDispatcher()
    utter_confirmation(dispatcher, text)
    assert dispatcher.messages[0]["custom"] == confirmation(text)["custom"]
    assert dispatcher.messages[0]["text"] is None


def test_capture_directive_in_reply() -> None:
    dispatcher = CollectingDispatcher()
    utter_capture(dispatcher, "CREDIT_CARD", "card_luhn", retries=1, retry_text="Again?")
    assert dispatcher.messages[0]["custom"] == {
        "coatcheck": {
            "expect": "CREDIT_CARD",
            "capture": "secure",
            "check": "card_luhn",
            "retries": 1,
            "retry_text": "Again?",
        }
    }


def test_capture_directive_rejects_negative_retries() -> None:
    with pytest.raises(ValueError, match="retries"):
        capture_directive("PIN", retries=-1)
