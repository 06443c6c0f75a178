"""`coatcheck.saferegex`: the engine chosen per pattern, spans, the time limit, errors."""

from __future__ import annotations

import time

import pytest

from coatcheck.middleware.config import ConfigError, config_from_data
from coatcheck.saferegex import RegexTimeout, UnsafePattern, safe_compile
from coatcheck.vault import Regex


@pytest.mark.parametrize(
    ("pattern", "engine", "text", "spans"),
    [
        (r"(a*)*b", "re2", "aaab", [(0, 4)]),
        (r"(a*)*b", "re2", "a" * 40, []),  # no match, and no backtracking
        (r"(\d+\s?)+", "re2", "1" * 25 + "x", [(0, 25)]),
        (r"(?P<value>\d{4})!", "re2", "pin 1234! 99", [(4, 8)]),  # group `value`, by name
        (r"(?<!\d)\d{4,6}(?!\d)", "regex", "pin 123456 or 1234567", [(4, 10)]),  # lookaround
        (r"(\w)\1", "regex", "abba", [(1, 3)]),  # backreference
        (r"\bACC-\d{6}\b", "re2", "no account here", []),
    ],
)
def test_engine_per_pattern(
    pattern: str, engine: str, text: str, spans: list[tuple[int, int]]
) -> None:
    compiled = safe_compile(pattern)
    assert compiled.engine == engine
    group = "value" if "value" in compiled.groupindex else 0
    assert [m.span(group) for m in compiled.finditer(text)] == spans


def test_offsets_are_characters_not_bytes() -> None:
    assert [m.span() for m in safe_compile(r"\d+").finditer("é ü 42")] == [(4, 6)]


@pytest.mark.parametrize("pattern", ["(", "a{2,1}", "[z-a]"])
def test_a_pattern_neither_engine_takes(pattern: str) -> None:
    with pytest.raises(UnsafePattern):
        safe_compile(pattern)


def test_a_lookaround_pattern_is_cut_at_its_time_limit() -> None:
    compiled = safe_compile(r"(?=a)(a|aa)+b")
    started = time.monotonic()
    with pytest.raises(RegexTimeout):
        compiled.fullmatch("a" * 60)
    assert time.monotonic() - started < 1.0
    assert Regex(r"(?=a)(a|aa)+b")("a" * 60) is False  # a check past its limit: False


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"custom_types": [{"name": "ORDER", "regex": "(?<=a+)b"}]}, "custom_types.0.regex"),
        ({"types": {"PIN": {"pattern": "(?<!\\d+)\\d{4}"}}}, "types.PIN.pattern"),
        (
            {"checks": {"declared": {"x": {"type": "PIN", "op": "regex", "pattern": "("}}}},
            "checks.declared.x.pattern",
        ),
    ],
)
def test_config_error_names_the_dotted_path(data: dict[str, object], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_data(data)
    assert f"{path}: not a valid regular expression" in str(info.value)


def test_the_shipped_pin_pattern_still_captures() -> None:
    compiled = safe_compile(r"(?<!\d)\d{4,6}(?!\d)")
    assert [m.span() for m in compiled.finditer("it is 4821")] == [(6, 10)]
