"""Transition checks without reveal: a declared check runs in the vault, a boolean comes back.

Checks are declared in coatcheck's config (`checks.declared`: a name, the type it applies
to, the predicate) and named here; no predicate travels from the action server.  Only an
`equals` check takes a value (`operand`).  Each reference has a check budget
(`checks.budget_per_reference`, default 5) shared by every caller: a spent budget is
`ServiceError` with code `check_budget`.

For `FormValidationAction.validate_<slot>`: `check_slot` keeps the reference in the slot
and sets a non-PII flag slot (`card_valid: true`); `accepts_reference` lets a validator
that never sees real values accept a reference of the expected type instead of rejecting
the token as malformed input.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from coatcheck.actions._references import is_reference, parse_reference
from coatcheck.actions.client import CoatcheckClient

__all__ = ["accepts_reference", "check_reference", "check_slot"]

Validator = Callable[..., Awaitable[dict[str, Any]] | dict[str, Any]]


async def check_reference(
    client: CoatcheckClient,
    conversation_id: str,
    value: Any,
    check: str,
    operand: str | None = None,
) -> bool:
    """The declared check's result for a reference; False for anything that is not one."""
    ref = parse_reference(value)
    if ref is None:
        return False
    return await client.check(conversation_id, ref.token, check, operand)


async def check_slot(
    client: CoatcheckClient,
    tracker: Tracker,
    slot: str,
    value: Any,
    check: str,
    flag_slot: str,
) -> dict[str, Any]:
    """Slot updates for a validator: the reference stays, `flag_slot` gets the result of
    the declared check `check`.

    On failure the slot is cleared so the form asks again.
    """
    ok = await check_reference(client, tracker.sender_id, value, check)
    return {slot: value if ok else None, flag_slot: ok}


def accepts_reference(entity_type: str) -> Callable[[Validator], Validator]:
    """Decorate `validate_<slot>`: a reference of `entity_type` is accepted as is.

    Anything else goes to the decorated validator unchanged.
    """

    def decorate(method: Validator) -> Validator:
        slot = method.__name__.removeprefix("validate_")

        @functools.wraps(method)
        async def wrapper(
            self: Any,
            value: Any,
            dispatcher: CollectingDispatcher,
            tracker: Tracker,
            domain: dict[str, Any],
        ) -> dict[str, Any]:
            if is_reference(value, entity_type):
                return {slot: value}
            result = method(self, value, dispatcher, tracker, domain)
            if isinstance(result, Awaitable):
                result = await result
            return dict(result)

        return wrapper

    return decorate
