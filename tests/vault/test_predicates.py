"""Predicate parsing (the HTTP JSON form) and evaluation."""

from __future__ import annotations

from typing import Any

import pytest

from coatcheck.vault import InvalidPredicate, predicate_from_dict
from coatcheck.vault.predicates import MAX_VALUE_CHARS


@pytest.mark.parametrize(
    ("data", "value", "expected"),
    [
        ({"op": "luhn"}, "79927398713", True),
        ({"op": "luhn"}, "79927398710", False),
        (
            {"op": "luhn"},
            "\uff17\uff19\uff19\uff12\uff17\uff13\uff19\uff18\uff17\uff11\uff13",
            False,
        ),
        ({"op": "digits"}, "0042", True),
        ({"op": "digits"}, "٤٢", False),
        ({"op": "length", "min": 2, "max": 3}, "abc", True),
        ({"op": "length", "max": 2}, "abc", False),
        ({"op": "regex", "pattern": "a+"}, "aaa", True),
        ({"op": "regex", "pattern": "a+"}, "aaab", False),
        ({"op": "regex", "pattern": "a*"}, "a" * (MAX_VALUE_CHARS + 1), False),
        ({"op": "equals", "value": "é"}, "é", True),
        ({"op": "equals", "value": "e"}, "é", False),
    ],
)
def test_evaluate(data: dict[str, Any], value: str, expected: bool) -> None:
    assert predicate_from_dict(data)(value) is expected


@pytest.mark.parametrize(
    ("data", "name"),
    [
        ([], "op"),
        ({}, "op"),
        ({"op": "nope"}, "op"),
        ({"op": "regex"}, "pattern"),
        ({"op": "regex", "pattern": "("}, "pattern"),
        ({"op": "regex", "pattern": "a" * 201}, "pattern"),
        ({"op": "regex", "pattern": 5}, "pattern"),
        ({"op": "length"}, "min"),
        ({"op": "length", "min": -1}, "min"),
        ({"op": "length", "min": 5, "max": 2}, "max"),
        ({"op": "length", "min": True}, "min"),
        ({"op": "equals"}, "value"),
        ({"op": "equals", "value": 4}, "value"),
        ({"op": "digits", "extra": 1}, "extra"),
    ],
)
def test_invalid(data: Any, name: str) -> None:
    with pytest.raises(InvalidPredicate) as err:
        predicate_from_dict(data)
    assert err.value.name == name
