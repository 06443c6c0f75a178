"""The response detector: values in the model's output, and how much of a stream could still
become one.

A stream can only be filtered if the filter knows, for the text it holds, where a value
could still be starting. `ShapedDetector` gets that from a `ValueShape` per entity type:
the characters a value of that type can start with and be made of, and its maximum length
(counted in characters after percent-decoding). Any match of the type must be such a run:
then the longest suffix of the held text made of that type's characters, starting with one
of its start characters and no longer than its bound, is the only place a value can still
be growing, and everything before it can be released (docs/llm.md, "Hold-back").

It also looks at a percent-decoded view (`jane%40example.com`): the benchmark and real
links encode values that way. Types with no shape get `CONSERVATIVE` (any character but a
line break, 64 long): safe for any detector, at the price of holding up to 64 characters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "CONSERVATIVE",
    "DEFAULT_SHAPES",
    "WORD_TYPES",
    "Found",
    "NoResponseDetector",
    "ResponseDetector",
    "ShapedDetector",
    "ValueShape",
]


@dataclass(frozen=True, slots=True)
class Found:
    """A value in the model's output (offsets into the text given to `find`)."""

    start: int
    end: int
    entity_type: str


class ResponseDetector(Protocol):
    """What the response filter needs: matches, and where a match could still be growing."""

    @property
    def max_hold(self) -> int:
        """Upper bound of `len(text) - hold_from(text)`, in characters."""
        ...

    def find(self, text: str) -> Sequence[Found]: ...

    def hold_from(self, text: str) -> int:
        """Smallest index from which `text` + more text could still hold (part of) a match;
        len(text) when nothing can."""
        ...


class NoResponseDetector:
    """`llm.response_pii: pass`: nothing is looked for, nothing is held for it."""

    max_hold = 0

    def find(self, text: str) -> Sequence[Found]:
        return ()

    def hold_from(self, text: str) -> int:
        return len(text)


def _fold(ch: str) -> str:
    return unicodedata.normalize("NFKC", ch)


def _invisible(ch: str) -> bool:
    """Format characters (zero-width and the like): normalisation drops them, so a value may
    carry them anywhere."""
    return unicodedata.category(ch) == "Cf"


def _digit(ch: str) -> bool:
    return ch.isdecimal() or _fold(ch).isdecimal()


def _chars(
    extra: str, *, digits: bool = True, letters: bool = False, spaces: bool = False
) -> Callable[[str], bool]:
    def slow(ch: str) -> bool:
        if _invisible(ch) or (digits and _digit(ch)) or (spaces and ch.isspace()):
            return True
        folded = _fold(ch)
        if letters and folded.isalnum():
            return True
        return bool(folded) and all(c in extra for c in folded)

    # ASCII answered from a table (the hold-back asks per character, per type, per event)
    ascii_ok = frozenset(c for c in map(chr, range(128)) if slow(c))

    def accepts(ch: str) -> bool:
        return ch in ascii_ok if ch < "\x80" else slow(ch)

    return accepts


@dataclass(frozen=True, slots=True)
class ValueShape:
    """What a value of one type can look like, for the hold-back (not for detection).

    `needs`: a pattern every text holding such a value matches once NFKC-folded (a digit,
    an `@`...), or None.  When no type's pattern matches, the detector is not run at all:
    most streamed text is prose, and this skips detection for it.
    """

    start: Callable[[str], bool]
    body: Callable[[str], bool]
    max_len: int
    needs: re.Pattern[str] | None = None


_ALNUM = _chars("", letters=True)
_DIGIT = re.compile(r"\d")  # any script's decimal digits (after NFKC: fullwidth ones too)
DEFAULT_SHAPES: Mapping[str, ValueShape] = {
    # `%`: a percent-encoded `@` (`%40`) is looked for in the decoded view
    "EMAIL_ADDRESS": ValueShape(_ALNUM, _chars("._%+-@'", letters=True), 254, re.compile("[@%]")),
    "PHONE_NUMBER": ValueShape(
        _chars("+("), _chars("+-().\u2013\u2014/extEXT", spaces=True), 40, _DIGIT
    ),
    "CREDIT_CARD": ValueShape(_chars(""), _chars(" -\u00a0"), 32, _DIGIT),
    "US_SSN": ValueShape(_chars(""), _chars(" -.\u00a0"), 16, _DIGIT),
    "UK_NHS": ValueShape(_chars(""), _chars(" -\u00a0"), 16, _DIGIT),
    "US_PASSPORT": ValueShape(_ALNUM, _ALNUM, 12, _DIGIT),
    "IBAN_CODE": ValueShape(
        _chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ", digits=False),
        _chars(" ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
        42,
        _DIGIT,  # its check digits
    ),
    "IP_ADDRESS": ValueShape(
        _chars(":abcdefABCDEF"), _chars(".:abcdefABCDEF"), 45, re.compile(r"[\d:]")
    ),
    "CRYPTO": ValueShape(_ALNUM, _ALNUM, 90, _DIGIT),  # base58 / bech32 / 0x: a digit
    "DATE_OF_BIRTH": ValueShape(_ALNUM, _chars(" /.,-", letters=True), 32),
}
# The types whose values are at most "the current word or number" long: holding for them
# costs a word of delay. DATE_OF_BIRTH ("5 January 1990") and NER types hold prose, up to
# their bound, and are left to the request side unless a deployment opts in.
WORD_TYPES = frozenset(DEFAULT_SHAPES) - {"DATE_OF_BIRTH"}
CONSERVATIVE = ValueShape(lambda ch: ch not in "\r\n", lambda ch: ch not in "\r\n", 64)
_HEX = frozenset("0123456789abcdefABCDEF")


def _decoded_before(text: str, i: int) -> tuple[str, int]:
    """The (percent-decoded) character ending at index i, and its width in `text`."""
    if i >= 3 and text[i - 3] == "%" and text[i - 2] in _HEX and text[i - 1] in _HEX:
        return chr(int(text[i - 2 : i], 16)), 3
    return text[i - 1], 1


def _pending_escape(text: str) -> int:
    """Width of an incomplete `%` / `%X` escape at the end (0 if none)."""
    if text.endswith("%"):
        return 1
    if len(text) >= 2 and text[-2] == "%" and text[-1] in _HEX:
        return 2
    return 0


def viable_start(text: str, shape: ValueShape) -> int:
    """Start of the longest suffix that could still be (the start of) a value of `shape`."""
    pending = _pending_escape(text)
    i = len(text) - pending
    best = i if pending else len(text)  # an unfinished escape could be any character
    count = 1 if pending else 0
    while i > 0 and count < shape.max_len:
        ch, width = _decoded_before(text, i)
        if not shape.body(ch):
            break
        i -= width
        count += 1
        if shape.start(ch):
            best = i
    return best


class _ShapeSet:
    """`min(viable_start(text, s) for s in shapes)` in one backward walk: each character's
    verdict for every shape is one bitmask (a table for ASCII, cached otherwise), so the
    walk costs per character what one shape's did (the hold-back runs on every event)."""

    _CACHE = 4096

    def __init__(self, shapes: Sequence[ValueShape]) -> None:
        self._shapes = list(shapes)
        self._all = (1 << len(self._shapes)) - 1
        widest = max((s.max_len for s in self._shapes), default=0)
        # shapes still allowed to grow once `count` characters were taken
        self._alive_at = [
            sum(1 << k for k, s in enumerate(self._shapes) if s.max_len > count)
            for count in range(widest + 1)
        ]
        self._masks: dict[str, tuple[int, int]] = {
            chr(c): self._verdict(chr(c)) for c in range(128)
        }

    def _verdict(self, ch: str) -> tuple[int, int]:
        body = sum(1 << k for k, s in enumerate(self._shapes) if s.body(ch))
        start = sum(1 << k for k, s in enumerate(self._shapes) if s.start(ch))
        return body, start

    def _mask(self, ch: str) -> tuple[int, int]:
        found = self._masks.get(ch)
        if found is None:
            found = self._verdict(ch)
            if len(self._masks) < 128 + self._CACHE:
                self._masks[ch] = found
        return found

    def hold_from(self, text: str) -> int:
        if not self._shapes:
            return len(text)
        pending = _pending_escape(text)
        i = len(text) - pending
        best = i if pending else len(text)
        count = 1 if pending else 0
        alive = self._all
        widest = len(self._alive_at) - 1
        while i > 0:
            alive &= self._alive_at[count] if count <= widest else 0
            if not alive:
                break
            ch, width = _decoded_before(text, i)
            body, start = self._mask(ch)
            alive &= body
            if not alive:
                break
            i -= width
            count += 1
            if alive & start:
                best = i
        return best


class _PercentView:
    """`text` with %XX decoded, and where each decoded character came from."""

    def __init__(self, text: str) -> None:
        chars: list[str] = []
        origin: list[int] = []
        i = 0
        while i < len(text):
            if text[i] == "%" and _is_escape(text, i):
                chars.append(chr(int(text[i + 1 : i + 3], 16)))
                origin.append(i)
                i += 3
            else:
                chars.append(text[i])
                origin.append(i)
                i += 1
        origin.append(len(text))
        self.text = "".join(chars)
        self._origin = origin

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Decoded [start, end) -> original [start, end)."""
        return self._origin[start], self._origin[end]


def _is_escape(text: str, i: int) -> bool:
    return i + 2 < len(text) and text[i + 1] in _HEX and text[i + 2] in _HEX


class ShapedDetector:
    """A span detector plus value shapes: a `ResponseDetector`.

    `spans(text)` is any detection function returning objects with `start`, `end` and
    `entity_type` (e.g. `Detector.detect`); `types`, when given, keeps only those types (a
    deployment may leave types that need long context, like PERSON, to the request side).
    """

    def __init__(
        self,
        spans: Callable[[str], Iterable[object]],
        types: Iterable[str],
        *,
        shapes: Mapping[str, ValueShape] | None = None,
        percent: bool = True,
    ) -> None:
        table = DEFAULT_SHAPES if shapes is None else shapes
        self._spans = spans
        self.types = frozenset(types)
        self._shapes = [table.get(t, CONSERVATIVE) for t in sorted(self.types)]
        self._percent = percent
        widest = max((s.max_len for s in self._shapes), default=0)
        self.max_hold = widest * (3 if percent else 1)
        self._walk = _ShapeSet(self._shapes)
        needs = [s.needs for s in self._shapes]
        self._needs: re.Pattern[str] | None = None
        if needs and all(n is not None for n in needs):
            self._needs = re.compile("|".join(f"(?:{n.pattern})" for n in needs if n))

    def find(self, text: str) -> Sequence[Found]:
        if self._needs is not None and not self._needs.search(unicodedata.normalize("NFKC", text)):
            return ()
        found = self._find(text)
        if self._percent and "%" in text:
            view = _PercentView(text)
            if view.text != text:
                for f in self._find(view.text):
                    start, end = view.span(f.start, f.end)
                    found.append(Found(start, end, f.entity_type))
        return _merge(found)

    def _find(self, text: str) -> list[Found]:
        out: list[Found] = []
        for span in self._spans(text):
            entity_type = getattr(span, "entity_type", "")
            start, end = getattr(span, "start", 0), getattr(span, "end", 0)
            if entity_type in self.types and 0 <= start < end <= len(text):
                out.append(Found(start, end, entity_type))
        return out

    def hold_from(self, text: str) -> int:
        return self._walk.hold_from(text)


def _merge(found: list[Found]) -> list[Found]:
    """Overlapping finds become one (the earliest type names it)."""
    out: list[Found] = []
    for f in sorted(found, key=lambda f: (f.start, -f.end)):
        if out and f.start < out[-1].end:
            last = out[-1]
            out[-1] = Found(last.start, max(last.end, f.end), last.entity_type)
        else:
            out.append(f)
    return out
