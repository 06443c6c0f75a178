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
    conv = f"retok-{uuid.uuid4().hex[:10]}"
    data = {"event": "slot", "name": "x", "value": ["mail dora@example.com", 7, None]}
    async with CoatcheckClient(coatcheck.url, coatcheck.action_key) as client:
        out = await Retokenizer(client, conv, {}).walk(data)
    assert out["event"] == "slot" and out["name"] == "x"
    assert out["value"][1:] == [7, None]
    assert "dora@example.com" not in out["value"][0]
    assert [r.entity_type for r in find_references(out["value"][0])] == ["EMAIL_ADDRESS"]
