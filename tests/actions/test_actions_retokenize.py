"""Retokenizer against the live service: references survive, values become references."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from coatcheck.actions import CoatcheckClient, Retokenizer, find_references

Coatcheck = Any  # the `coatcheck` fixture's object (tests/actions/conftest.py)
pytestmark = pytest.mark.anyio

PIN_REF = "CC_PIN_0123456789"
OTHER = "CC_ACCOUNT_ID_9123456780(##1234##)"  # its id and display contain the PIN digits


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PIN 1234 ok", f"PIN {PIN_REF} ok"),
        (f"keep {OTHER} and 1234", f"keep {OTHER} and {PIN_REF}"),
        ("12345", PIN_REF + "5"),  # longest-first is per value, not per word
        (OTHER, OTHER),
        ("nothing here", "nothing here"),
        ("   ", "   "),
        ("; ", "; "),
    ],
)
async def test_known_values_and_references(coatcheck: Coatcheck, text: str, expected: str) -> None:
    conv = f"retok-{uuid.uuid4().hex[:10]}"
    async with CoatcheckClient(coatcheck.url, coatcheck.action_key) as client:
        retok = Retokenizer(client, conv, {"1234": PIN_REF, "12": "CC_PIN_abcdefghjk"})
        assert await retok.text(text) == expected


async def test_new_pii_is_vaulted_and_structure_kept(coatcheck: Coatcheck) -> None:
    """With the run's grant, new values of its types are vaulted (and stay linkable)."""
    conv = f"retok-{uuid.uuid4().hex[:10]}"
    data = {"event": "slot", "name": "x", "value": ["mail dora@example.com", 7, None]}
    async with CoatcheckClient(coatcheck.url, coatcheck.action_key) as client:
        grant = await client.grant(conv, {"EMAIL_ADDRESS"}, "action_peek", "retokenize")
        out = await Retokenizer(client, conv, {}, grant).walk(data)
        again = await Retokenizer(client, conv, {}, grant).text("to dora@example.com")
    assert out["event"] == "slot" and out["name"] == "x"
    assert out["value"][1:] == [7, None]
    assert "dora@example.com" not in out["value"][0]
    (ref,) = find_references(out["value"][0])
    assert ref.entity_type == "EMAIL_ADDRESS"
    assert [r.token for r in find_references(again)] == [ref.token]  # same value, same ref


@pytest.mark.parametrize("granted", [(), ("CARD",)])
async def test_new_pii_outside_the_grant_is_not_stored(
    coatcheck: Coatcheck, granted: tuple[str, ...]
) -> None:
    """No grant, or one for other types: `[TYPE]` comes back and nothing is vaulted."""
    conv = f"retok-{uuid.uuid4().hex[:10]}"
    async with CoatcheckClient(coatcheck.url, coatcheck.action_key) as client:
        grant = None
        if granted:
            grant = await client.grant(conv, set(granted), "action_card_last4", "x")
        out = await Retokenizer(client, conv, {}, grant).text("mail dora@example.com")
    assert out == "mail [EMAIL_ADDRESS]"
    assert not find_references(out)
