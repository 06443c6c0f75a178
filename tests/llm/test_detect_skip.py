"""What keeps the stream filter cheap, and must not change what it finds or holds: the
response detector skips text that cannot hold a value of any of its types (prose without
a digit, `@`, `%` or `:`), which is most of a stream, while anything that could is still
looked at, whatever script its digits are in; and the hold-back walks the text once for
all types."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.middleware.llm import CONSERVATIVE, DEFAULT_SHAPES, WORD_TYPES, ShapedDetector
from coatcheck.middleware.llm.response_detect import viable_start
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


PIECES = [*"ab Z9 1-@.%4Fx_\u200b\uff11\n:+(", "%40", "%4", "jane@ex", "4111 1111", "\u0664"]


@pytest.mark.parametrize("types", [sorted(WORD_TYPES), ["EMAIL_ADDRESS"], ["PERSON"], []])
@settings(max_examples=400, deadline=None)
@given(text=st.lists(st.sampled_from(PIECES), max_size=80).map("".join))
def test_the_one_walk_hold_equals_the_per_type_holds(types: list[str], text: str) -> None:
    """The hold-back walks the text once for all types; it must agree with each type's own
    walk (`viable_start`), the definition in docs/llm.md."""
    shapes = [DEFAULT_SHAPES.get(t, CONSERVATIVE) for t in types]
    detector = ShapedDetector(DETECTOR.detect, types)
    want = min((viable_start(text, shape) for shape in shapes), default=len(text))
    assert detector.hold_from(text) == want
