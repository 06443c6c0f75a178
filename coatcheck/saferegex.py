"""Regexes that run on text a user or a bot controls: none may stall a worker.

Python's `re` backtracks without a limit and holds the GIL while it does, so one pattern
such as `(a*)*b` or `(\\d+\\s?)+`, met by the right 25 characters, blocks every request of
the worker for seconds.  Every pattern that comes from config (declared checks, capture
rules, custom types) and the built-in context rules run here instead, on one of two
engines chosen once per pattern, when the config is loaded:

- `re2` (google-re2): linear time in the text, whatever the pattern.  The default.
- `regex` with a hard time limit per match (`MATCH_TIMEOUT_SECONDS`), for the patterns
  RE2 refuses because they need lookaround or backreferences (the shipped PIN pattern,
  the built-in context rules).  Matching releases the GIL (`concurrent=True`); a match
  past its limit raises `RegexTimeout`, which callers treat as "fail closed" (the
  message is refused, a check answers False).

A pattern neither engine compiles is an `UnsafePattern` (the config names its path).
RE2's `\\d`, `\\w`, `\\s` and `\\b` are ASCII only (Python's are Unicode); the detector
normalises digits before matching, and docs/detection.md says so.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import re2
import regex

__all__ = [
    "MATCH_TIMEOUT_SECONDS",
    "Engine",
    "Finder",
    "MatchSpan",
    "RegexTimeout",
    "SafePattern",
    "SafeRegexError",
    "UnsafePattern",
    "safe_compile",
]

MATCH_TIMEOUT_SECONDS = 0.05
Engine = Literal["re2", "regex"]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print the refused pattern to stderr


class SafeRegexError(Exception):
    """Root of this module's errors."""


class UnsafePattern(SafeRegexError, ValueError):
    """Neither RE2 nor `regex` compiles the pattern."""


class RegexTimeout(SafeRegexError):
    """A lookaround pattern ran past its time limit on one text (the text is not kept)."""


class MatchSpan(Protocol):
    """What callers read of a match: its span, or a group's (by number or name)."""

    def span(self, group: int | str = 0, /) -> tuple[int, int]: ...


class Finder(Protocol):
    """The part of `re.Pattern` the detector uses; `SafePattern` offers the same."""

    @property
    def groupindex(self) -> Mapping[str, int]: ...

    def finditer(self, string: str, /) -> Iterator[MatchSpan]: ...


@dataclass(frozen=True, slots=True)
class _Re2Match:
    """RE2's match with `span` by group name too (RE2's takes numbers only)."""

    match: Any
    names: Mapping[str, int]

    def span(self, group: int | str = 0, /) -> tuple[int, int]:
        index = self.names[group] if isinstance(group, str) else group
        start, end = self.match.span(index)
        return int(start), int(end)


@dataclass(frozen=True)
class SafePattern:
    """One compiled pattern and the engine that runs it."""

    pattern: str
    engine: Engine
    _compiled: Any = field(repr=False, compare=False)

    @property
    def groupindex(self) -> Mapping[str, int]:
        return dict(self._compiled.groupindex)

    def finditer(self, string: str, /) -> Iterator[MatchSpan]:
        """Non-overlapping matches, left to right (`RegexTimeout` past the limit)."""
        if self.engine == "re2":
            names = self.groupindex
            for match in self._compiled.finditer(string):
                yield _Re2Match(match, names)
            return
        try:
            yield from self._compiled.finditer(
                string, timeout=MATCH_TIMEOUT_SECONDS, concurrent=True
            )
        except TimeoutError:
            raise RegexTimeout("a pattern took too long on this text") from None

    def fullmatch(self, string: str) -> bool:
        """Whether the whole of `string` matches (`RegexTimeout` past the limit)."""
        if self.engine == "re2":
            return self._compiled.fullmatch(string) is not None
        try:
            found = self._compiled.fullmatch(string, timeout=MATCH_TIMEOUT_SECONDS, concurrent=True)
        except TimeoutError:
            raise RegexTimeout("a pattern took too long on this text") from None
        return found is not None


@functools.lru_cache(maxsize=512)
def safe_compile(pattern: str) -> SafePattern:
    """RE2 if it takes the pattern, else `regex` (time-limited); `UnsafePattern` if neither.

    Cached: config patterns are compiled once per process, whoever asks.
    """
    try:
        return SafePattern(pattern, "re2", re2.compile(pattern, _OPTIONS))
    except re2.error:
        pass
    try:
        return SafePattern(pattern, "regex", regex.compile(pattern, regex.V0))
    except (regex.error, RecursionError, OverflowError, ValueError):
        raise UnsafePattern("not a valid regular expression for RE2 or regex") from None
