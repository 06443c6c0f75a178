"""Every built-in pattern on long adversarial input: linear by construction, so each scan
stays far below a generous bound (a backtracking pattern takes minutes on these)."""

from __future__ import annotations

import re
import time

import pytest

from coatcheck.middleware.detect import Detector
from coatcheck.middleware.detect.recognizers import BUILTIN_RECOGNIZERS

_DETECTOR = Detector.from_config({})
_N = 20_000
_INPUTS = {
    "digits": "1" * _N,
    "digit groups": "1 " * (_N // 2),
    "dotted digits": "1." * (_N // 2),
    "dashed digits": "12-" * (_N // 3),
    "letters": "a" * _N,
    "dotted words": "a." * (_N // 2),
    "words": "Aa " * (_N // 3),
    "capitals": "Marie " * (_N // 6),
    "at signs": "a@" * (_N // 2),
    "spelled": "a at b dot " * (_N // 10),
    "hex colons": "a:" * (_N // 2),
    "base64": "eyJ" + "A" * _N,
    "pem": "-----BEGIN RSA PRIVATE KEY-----\n" + "A/" * (_N // 2),
    "assignments": "password= " * (_N // 10),
    "mixed": "ab12-_. " * (_N // 8),
}
_PATTERNS = [
    (r.entity_type, regex)
    for r in BUILTIN_RECOGNIZERS
    for regex, _ in r._compiled  # the compiled patterns themselves
]


@pytest.mark.parametrize(("entity_type", "regex"), _PATTERNS, ids=lambda v: str(v)[:40])
def test_builtin_pattern_is_linear(entity_type: str, regex: re.Pattern[str]) -> None:
    for name, text in _INPUTS.items():
        start = time.perf_counter()
        for _ in regex.finditer(text):
            pass
        elapsed = time.perf_counter() - start
        assert elapsed < 2.0, (entity_type, name, elapsed)


def test_whole_detector_on_adversarial_input() -> None:
    for name, text in _INPUTS.items():
        start = time.perf_counter()
        _DETECTOR.detect(text)
        elapsed = time.perf_counter() - start
        assert elapsed < 10.0, (name, elapsed)
