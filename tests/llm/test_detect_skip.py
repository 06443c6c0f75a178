"""The response detector skips text that cannot hold a value of any of its types (prose
without a digit, `@`, `%` or `:`), which is most of a stream; anything that could is
still looked at, whatever script its digits are in."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from coatcheck.middleware.llm import WORD_TYPES, ShapedDetector
from tests.llm.helpers import DETECTOR


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, text: str) -> Iterable[object]:
        self.calls += 1
        return DETECTOR.detect(text)


@pytest.mark.parametrize(
    ("text", "looked", "found"),
    [
        ("Hello there, how are you today?", False, None),  # no match: skipped
        ("Ünïcödé prose — with dashes; and (brackets).", False, None),
        ("write to mallory@evil.example now", True, "EMAIL_ADDRESS"),
        ("write to mallory\uff20evil.example now", True, None),  # fullwidth @ folds to @
        ("write to mallory%40evil.example now", True, "EMAIL_ADDRESS"),
        ("call 415-555-0134 today", True, "PHONE_NUMBER"),
        ("call \uff14\uff11\uff15-555-0134 today", True, None),  # fullwidth digits
        ("card \u0664\u0661\u0661\u0661 1111 1111 1111", True, None),  # Arabic-Indic
        ("host fe80::1 is up", True, None),
    ],
)
def test_detection_runs_only_where_a_value_can_be(
    text: str, looked: bool, found: str | None
) -> None:
    spans = Counting()
    detector = ShapedDetector(spans, WORD_TYPES)
    result = detector.find(text)
    assert (spans.calls > 0) is looked
    if found is not None:
        assert found in {f.entity_type for f in result}
    if not looked:
        assert result == ()


def test_a_type_without_a_pattern_always_runs_detection() -> None:
    spans = Counting()
    detector = ShapedDetector(spans, {*WORD_TYPES, "PERSON"})
    detector.find("Hello there, how are you today?")
    assert spans.calls == 1
