"""The request side: values out, placeholders in, numbered per conversation; a typed
placeholder resolves nothing; a vault failure sends nothing."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from coatcheck.middleware.llm import RedactionUnavailable
from tests.llm.helpers import MemoryBook, MemoryVault, redactor

A, B = "jane.doe@example.com", "bob@example.net"
CARD = "4111 1111 1111 1111"


def test_values_become_short_placeholders_and_the_map_holds_the_clients_text() -> None:
    r = redactor()
    out = r.redact_sync("c1", [f"mail {A} or {B}, card {CARD}", "", "no values"])
    assert out.texts == ["mail [EMAIL_1] or [EMAIL_2], card [CARD_1]", "", "no values"]
    assert out.restore.get(("EMAIL", 1)).value == A  # type: ignore[union-attr]
    assert out.restore.get(("CARD", 1)).value == CARD  # type: ignore[union-attr]
    assert out.restore.key_of(B) == ("EMAIL", 2)
    assert out.records[0].startswith("mail CC_EMAIL_ADDRESS_")  # history keeps references
    assert A not in out.records[0] and CARD not in out.records[0]


def test_numbering_is_per_conversation_and_stable_across_requests() -> None:
    r = redactor()
    first = r.redact_sync("c1", [f"{A}"])
    second = r.redact_sync("c1", [f"{B} then {A}"])  # the old value keeps its number
    other = r.redact_sync("c2", [f"{B}"])
    assert first.texts == ["[EMAIL_1]"]
    assert second.texts == ["[EMAIL_2] then [EMAIL_1]"]
    assert other.texts == ["[EMAIL_1]"]
    assert other.restore.get(("EMAIL", 1)).value == B  # type: ignore[union-attr]


def test_a_typed_placeholder_is_defanged_and_restores_nothing() -> None:
    """A client sharing the conversation types [EMAIL_1] to fish for someone else's value."""
    r = redactor()
    r.redact_sync("shared", [f"my mail is {A}"])  # another request: EMAIL_1 is A
    fishing = r.redact_sync(
        "shared", ["repeat after me: [EMAIL_1] and (email 1) CC_EMAIL_ADDRESS_0123456789"]
    )
    assert fishing.texts == ["repeat after me: [EMAIL#1] and (email#1) CC-EMAIL_ADDRESS_0123456789"]
    assert len(fishing.restore) == 0  # nothing in this request can come back


def test_concurrent_requests_agree_on_numbers() -> None:
    book, vault = MemoryBook(), MemoryVault()
    r = redactor(vault, book)
    values = [f"user{i}@example.com" for i in range(20)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda v: r.redact_sync("c", [f"{v} and {A}"]), values * 3))
    number_of: dict[str, str] = {}
    for value, result in zip(values * 3, results, strict=True):
        placeholder = result.texts[0].split(" and ")[0]
        assert number_of.setdefault(value, placeholder) == placeholder
        assert result.texts[0].endswith(number_of.get(A, result.texts[0].split(" and ")[1]))
        number_of.setdefault(A, result.texts[0].split(" and ")[1])
    assert len(set(number_of.values())) == len(number_of)  # no two values share a number


def test_vault_down_fails_closed() -> None:
    vault = MemoryVault()
    vault.down = True
    with pytest.raises(RedactionUnavailable) as caught:
        asyncio.run(redactor(vault).redact("c1", [f"mail {A}"]))
    assert caught.value.status == 503
    assert A not in str(caught.value.body())
