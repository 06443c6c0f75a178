"""Transition checks without reveal: predicates run in the vault, a boolean comes back.

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

__all__ = [
    "accepts_reference",
    "check_reference",
    "check_slot",
    "digits",
    "equals",
    "length",
    "luhn",
    "regex",
]

Predicate = dict[str, Any]
Validator = Callable[..., Awaitable[dict[str, Any]] | dict[str, Any]]


def luhn() -> Predicate:
    return {"op": "luhn"}


def regex(pattern: str) -> Predicate:
    return {"op": "regex", "pattern": pattern}


def length(min_len: int | None = None, max_len: int | None = None) -> Predicate:
    predicate: Predicate = {"op": "length"}
    if min_len is not None:
        predicate["min"] = min_len
    if max_len is not None:
        predicate["max"] = max_len
    return predicate


def digits() -> Predicate:
    return {"op": "digits"}


def equals(value: str) -> Predicate:
    """Compare with a backend value inside the vault (the value goes in, only a bool out)."""
    return {"op": "equals", "value": value}


async def check_reference(
    client: CoatcheckClient, conversation_id: str, value: Any, predicate: Predicate
) -> bool:
    """The predicate's result for a reference; False for anything that is not one."""
    ref = parse_reference(value)
    if ref is None:
        return False
    return await client.check(conversation_id, ref.token, predicate)


async def check_slot(
    client: CoatcheckClient,
    tracker: Tracker,
    slot: str,
    value: Any,
    predicate: Predicate,
    flag_slot: str,
) -> dict[str, Any]:
    """Slot updates for a validator: the reference stays, `flag_slot` gets the result.

    On failure the slot is cleared so the form asks again.
    """
    ok = await check_reference(client, tracker.sender_id, value, predicate)
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
