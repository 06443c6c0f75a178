"""What every finder asks of a message, worked out once per message.

Detection runs ~40 recognizers, the phone, name and address finders on every chat message,
and most messages hold none of their values: the cost is in ruling them out. A `Scan` holds
the cheap facts the gates need (digit runs, the longest token, a lower-cased copy, which
recognizers' context words occur anywhere), each computed at most once and only when a gate
asks for it.

`fold` gives the lower-cased copy on which a pattern of lower-cased words, compiled without
IGNORECASE, matches exactly where the IGNORECASE pattern matches the original (several times
faster: the engine compares characters instead of case-folding each one). It is refused
(None) for the few characters where `str.lower` and the regex engine's case folding part
ways: those whose lower case is longer (U+0130) or depends on the context (final sigma),
and those IGNORECASE also matches with another letter (`re._compiler._EXTRA_CASES`: long s,
dotless i, micro sign, some Greek and Cyrillic letters, two ligatures).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from coatcheck.middleware.detect.locales import words_regex

__all__ = ["DIGIT_RUN", "Scan", "WordIndex", "digit_count", "fold"]

# Digits joined by at most one separator: every digit-group pattern (cards, SSNs, NHS and
# passport numbers...) lies inside one such run, so its digit count is a safe gate.
DIGIT_RUN = re.compile(r"\d(?:[ ./_-]?\d)*")
_SEPARATORS = " ./_-"
# Characters on which lower-casing and IGNORECASE disagree (see the module docstring).
_FOLD_UNSAFE = re.compile(
    "[\u0130\u03a3\u00b5\u0131\u017f\u0345\u0390\u03b0\u03b2\u03b5\u03b8\u03b9\u03ba\u03bc"
    "\u03c0\u03c1\u03c2\u03c3\u03c6\u03d0\u03d1\u03d5\u03d6\u03f0\u03f1\u03f5\u0432\u0434"
    "\u043e\u0441\u0442\u044a\u0463\u1c80-\u1c88\u1e61\u1e9b\u1fbe\u1fd3\u1fe3\ua64b"
    "\ufb05\ufb06]"
)


def digit_count(run: str) -> int:
    """Digits in a `DIGIT_RUN` match (its length minus its separators)."""
    return len(run) - sum(run.count(sep) for sep in _SEPARATORS)


def fold(text: str) -> str | None:
    """`text` lower-cased with the same offsets, or None where that would not match what
    IGNORECASE matches (see the module docstring)."""
    lowered = text.lower()
    if text.isascii():
        return lowered
    if len(lowered) != len(text) or _FOLD_UNSAFE.search(text) is not None:
        return None
    return lowered


class WordIndex:
    """Which of several word lists has a word anywhere in a text, in one scan.

    A word counts at a word start, in any case, as a prefix ("card" in "cardholder"): what
    `(?<!\\w)(?:words)` with IGNORECASE finds. The scan looks at every word start once and
    takes the longest listed word there; every listed word that is a prefix of it occurs
    there too, so each longest word maps to all the lists that one of its prefixes is in.
    """

    def __init__(self, lists: Mapping[int, tuple[str, ...]]) -> None:
        words = {_lower(w) for ws in lists.values() for w in ws if w}
        self._keys: dict[str, frozenset[int]] = {
            word: frozenset(
                key for key, ws in lists.items() for w in ws if w and word.startswith(_lower(w))
            )
            for word in words
        }
        self._all = frozenset(lists)
        alternation = words_regex(tuple(words))
        self._regex = re.compile(rf"(?<!\w)(?=({alternation}))") if alternation else None

    def keys_in(self, folded: str | None) -> frozenset[int]:
        """The keys of the lists with a word in the text (`fold` of it); every key when the
        text could not be folded (the callers' own patterns then decide)."""
        if self._regex is None:
            return frozenset()
        if folded is None:
            return self._all
        found: set[int] = set()
        for match in self._regex.finditer(folded):
            found |= self._keys[match.group(1)]
        return frozenset(found)


def _lower(word: str) -> str:
    return "".join(low if len(low := char.lower()) == 1 else char for char in word)


class Scan:
    """The cheap facts about one normalised message that the gates ask for."""

    __slots__ = ("_context", "_folded", "_index", "_token", "digits", "longest", "runs", "text")

    def __init__(self, text: str, index: WordIndex | None = None) -> None:
        self.text = text
        # (start, digits) of each digit run; the gates need the count, the longest run and,
        # for a few patterns, what stands right before a run.
        self.runs = [(m.start(), digit_count(m.group())) for m in DIGIT_RUN.finditer(text)]
        self.digits = sum(n for _, n in self.runs)
        self.longest = max((n for _, n in self.runs), default=0)
        self._index = index
        self._folded: str | bool | None = False  # False: not computed yet
        self._token = -1
        self._context: frozenset[int] | None = None

    @property
    def folded(self) -> str | None:
        """`fold(text)`, computed once."""
        if self._folded is False:
            self._folded = fold(self.text)
        return self._folded  # type: ignore[return-value]

    @property
    def longest_token(self) -> int:
        """Characters in the longest run without white space."""
        if self._token < 0:
            self._token = max(map(len, self.text.split()), default=0)
        return self._token

    def has_context(self, key: int) -> bool:
        """Whether list `key` of the detector's `WordIndex` has a word in the message."""
        if self._index is None:
            return True  # nothing to rule it out with
        if self._context is None:
            self._context = self._index.keys_in(self.folded)
        return key in self._context

    def letters_before_run(self, count: int) -> bool:
        """Some digit run starts right after `count` letters ("DE89...", "GB82 ...")."""
        text = self.text
        return any(
            start >= count and text[start - count : start].isalpha() for start, _ in self.runs
        )
