"""`accepts_reference`: a validator that does not opt in accepts a reference of its type."""

from typing import Any

import pytest
from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher

from coatcheck.actions import accepts_reference


class _Form(FormValidationAction):
    def name(self) -> str:
        return "validate_f"

    @accepts_reference("EMAIL_ADDRESS")
    def validate_email(self, value: Any, d: Any, t: Any, dom: Any) -> dict[str, Any]:
        return {"email": value if "@" in str(value) else None}

    @accepts_reference("PIN")
    async def validate_pin(self, value: Any, d: Any, t: Any, dom: Any) -> dict[str, Any]:
        return {"pin": value if str(value).isdigit() else None}


@pytest.mark.parametrize(
    ("method", "value", "expected"),
    [
        ("validate_email", "CC_EMAIL_ADDRESS_7k2m9xq4cw", "CC_EMAIL_ADDRESS_7k2m9xq4cw"),
        ("validate_email", "CC_PHONE_NUMBER_7k2m9xq4cw", None),  # wrong type: body rejects
        ("validate_email", "someone@example.org", "someone@example.org"),
        ("validate_email", "not an address", None),
        ("validate_pin", "CC_PIN_0123456789", "CC_PIN_0123456789"),
        ("validate_pin", "1234", "1234"),
        ("validate_pin", "12a4", None),
    ],
)
@pytest.mark.anyio
async def test_accepts_reference(method: str, value: str, expected: str | None) -> None:
    form = _Form()
    slot = method.removeprefix("validate_")
    tracker = Tracker("c", {}, {}, [], False, None, {}, "action_listen")
    result = await getattr(form, method)(value, CollectingDispatcher(), tracker, {})
    assert result == {slot: expected}
