"""Reprs never show values; opting in needs declared types (no service needed)."""

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from coatcheck.actions import (
    ConfigurationError,
    GrantToken,
    RevealedView,
    RevealingAction,
    parse_reference,
)


def test_reprs_hide_values() -> None:
    view = RevealedView(
        {"email": "a.b@example.com"}, [], {"CC_EMAIL_ADDRESS_0123456789": "a.b@example.com"}
    )
    assert "example.com" not in repr(view) and "refs=1" in repr(view)
    grant = GrantToken("opaque-grant-token", 12.5)
    assert "opaque" not in repr(grant) and "12.5" in repr(grant)
    ref = parse_reference("CC_EMAIL_ADDRESS_0123456789(++b@exam++)")
    assert ref is not None and "exam" not in repr(ref)


def test_values_by_type() -> None:
    view = RevealedView(
        by_reference={
            "CC_EMAIL_ADDRESS_0123456789": "x@example.com",
            "CC_PHONE_NUMBER_0123456789": "+15550100",
            "CC_EMAIL_ADDRESS_abcdefghjk": "y@example.com",
        }
    )
    assert view.values("EMAIL_ADDRESS") == ["x@example.com", "y@example.com"]
    assert view.values("CREDIT_CARD") == []


def test_values_match_the_type_exactly_never_a_prefix() -> None:
    view = RevealedView(
        by_reference={
            "CC_CARD_0123456789": "4111111111111111",
            "CC_CARD_PIN_0123456789": "482915",
            "CC_CARD_PIN_EXTRA_0123456789": "77",
        }
    )
    assert view.values("CARD") == ["4111111111111111"]
    assert view.values("CARD_PIN") == ["482915"]
    assert view.values("CARD_P") == []


class _Undeclared(RevealingAction):
    def name(self) -> str:
        return "action_undeclared"

    async def run_revealed(self, *args: Any) -> list[dict[str, Any]]:
        return []


@pytest.mark.anyio
async def test_opting_in_to_nothing_is_a_configuration_error() -> None:
    tracker = Tracker("c", {}, {}, [], False, None, {}, "action_listen")
    with pytest.raises(ConfigurationError) as info:
        await _Undeclared().run(CollectingDispatcher(), tracker, {})
    assert info.value.name == "action_undeclared"
    assert "reveal_types" in str(info.value)
