"""Transition checks: predicates that run inside the vault so only a boolean leaves.

Patterns are capped in length and compiled once, on RE2 (linear time) or, for lookaround,
on `regex` with a time limit per match (`coatcheck.saferegex`); a match past its limit
answers False.  Values longer than `MAX_VALUE_CHARS` are never matched.  `Equals` compares with
`hmac.compare_digest`.  Predicates that hold a secret never show it in their repr.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any, Protocol

from stdnum import luhn

from coatcheck.saferegex import RegexTimeout, SafePattern, SafeRegexError, safe_compile
from coatcheck.vault.errors import InvalidPredicate

__all__ = [
    "MAX_PATTERN_CHARS",
    "MAX_VALUE_CHARS",
    "Digits",
    "Equals",
    "Length",
    "Luhn",
    "Predicate",
    "Regex",
    "predicate_from_dict",
]

MAX_PATTERN_CHARS = 200
MAX_VALUE_CHARS = 1000


class Predicate(Protocol):
    def __call__(self, value: str) -> bool: ...


@dataclass(frozen=True)
class Regex:
    pattern: str
    _compiled: SafePattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str) or not 0 < len(self.pattern) <= MAX_PATTERN_CHARS:
            raise InvalidPredicate("pattern")
        try:
            compiled = safe_compile(self.pattern)
        except SafeRegexError:
            raise InvalidPredicate("pattern") from None
        object.__setattr__(self, "_compiled", compiled)

    def __call__(self, value: str) -> bool:
        if len(value) > MAX_VALUE_CHARS:
            return False
        try:
            return self._compiled.fullmatch(value)
        except RegexTimeout:
            return False


@dataclass(frozen=True)
class Luhn:
    def __call__(self, value: str) -> bool:
        digits = value.replace(" ", "").replace("-", "")
        return digits.isascii() and digits.isdigit() and luhn.is_valid(digits)


@dataclass(frozen=True)
class Length:
    min: int = 0
    max: int = MAX_VALUE_CHARS

    def __post_init__(self) -> None:
        for name in ("min", "max"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidPredicate(name)
        if self.min > self.max:
            raise InvalidPredicate("max")

    def __call__(self, value: str) -> bool:
        return self.min <= len(value) <= self.max


@dataclass(frozen=True)
class Digits:
    def __call__(self, value: str) -> bool:
        return value.isascii() and value.isdigit()


@dataclass(frozen=True)
class Equals:
    expected: str = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.expected, str):
            raise InvalidPredicate("value")

    def __repr__(self) -> str:
        return "Equals(<redacted>)"

    def __call__(self, value: str) -> bool:
        return hmac.compare_digest(value.encode("utf-8"), self.expected.encode("utf-8"))


def _field(data: dict[str, Any], name: str, default: Any = None) -> Any:
    if name not in data and default is None:
        raise InvalidPredicate(name)
    return data.get(name, default)


def predicate_from_dict(data: Any) -> Predicate:
    """Parse the HTTP API's JSON form: `{"op": "regex"|"luhn"|"length"|"digits"|"equals"}`."""
    if not isinstance(data, dict):
        raise InvalidPredicate("op")
    op = data.get("op")
    allowed = {
        "regex": {"pattern"},
        "luhn": set(),
        "length": {"min", "max"},
        "digits": set(),
        "equals": {"value"},
    }
    if op not in allowed:
        raise InvalidPredicate("op")
    extra = set(data) - {"op"} - allowed[op]
    if extra:
        raise InvalidPredicate(sorted(extra)[0])
    if op == "regex":
        return Regex(_field(data, "pattern"))
    if op == "length":
        if "min" not in data and "max" not in data:
            raise InvalidPredicate("min")
        return Length(data.get("min", 0), data.get("max", MAX_VALUE_CHARS))
    if op == "equals":
        return Equals(_field(data, "value"))
    return Luhn() if op == "luhn" else Digits()
