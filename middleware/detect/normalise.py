"""Normalisation with an offset map, and inbound defanging of look-alike references.

Users paste full-width digits, Arabic-Indic or Devanagari digits, Unicode dashes and
zero-width joiners (on purpose or not), and pad numbers with runs of spaces; matching on
the folded form finds them, and the map gives offsets in the original text so the
redaction replaces exactly what the user typed.

Folding, per character: NFKC; any decimal digit of any script (Unicode category `Nd`) to
its ASCII digit; the dashes people type as separators to `-`; zero-width characters
dropped. Then a run of spaces or tabs between two digits becomes one space.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final, final

__all__ = ["DASHES", "Normalised", "defang", "normalise"]

_ZERO_WIDTH: Final = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")
# Hyphen, non-breaking hyphen, figure dash, en dash, em dash, horizontal bar, minus sign,
# small em dash, two- and three-em dashes: what a phone keyboard or a word processor puts
# between digit groups.
DASHES: Final = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\u2e3a\u2e3b")
_LOOKALIKE: Final = re.compile(r"CC_", re.IGNORECASE)
_ZERO_WIDTH_RE: Final = re.compile("[" + "".join(sorted(_ZERO_WIDTH)) + "]")
# Anything the per-character pass would change that NFKC alone leaves: a digit of another
# script (`\d` is every `Nd` character in a str pattern), a dash, a zero-width character;
# all of them non-ASCII. (The engine skips to a non-ASCII character with a range test, and
# asks the Unicode tables, in the lookbehind, only there.)
_NOT_NFKC_ONLY: Final = re.compile(
    "[^\\x00-\\x7f](?<=[\\d" + "".join(sorted(_ZERO_WIDTH | DASHES)) + "])"
)
# Two or more blanks, or a tab, between digits: collapsed to one space.
_DIGIT_GAP: Final = re.compile(r"(?<=\d)(?:[ \t]{2,}|\t)(?=\d)")


@final
class Normalised:
    """Normalised text plus, per normalised char, the original index it came from
    (`origin=None`: identity, the common all-ASCII case, kept cheap; one is made per
    message: a plain class, native in the compiled build)."""

    __slots__ = ("origin", "original_length", "text")

    def __init__(self, text: str, origin: tuple[int, ...] | None, original_length: int) -> None:
        self.text: Final = text
        self.origin: Final = origin
        self.original_length: Final = original_length

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a normalised [start, end) back to the original text."""
        if self.origin is None:
            return start, end
        if start >= len(self.origin):
            return self.original_length, self.original_length
        return self.origin[start], self.origin[end - 1] + 1 if end > start else self.origin[start]


def _fold(char: str) -> str:
    """One character's folded form (may be empty or several characters)."""
    if char in _ZERO_WIDTH:
        return ""
    if char in DASHES:
        return "-"
    folded = unicodedata.normalize("NFKC", char)
    if folded.isascii():
        return folded
    return "".join(
        str(unicodedata.decimal(piece))
        if unicodedata.category(piece) == "Nd"
        else ("-" if piece in DASHES else piece)
        for piece in folded
    )


def _one_for_one(match: re.Match[str]) -> str:
    """A dash, or a digit of another script, in text that is NFKC already (`_fold`)."""
    char = match.group()
    return "-" if char in DASHES else str(unicodedata.decimal(char))


def normalise(text: str) -> Normalised:
    """Fold per character (see the module docstring), collapse digit gaps, keep offsets."""
    if not text.isascii():
        if not unicodedata.is_normalized("NFKC", text):
            return _fold_each(text)
        # A string that is NFKC as a whole has no character that NFKC changes on its own
        # (quick-check "No"), so with nothing to drop the per-character pass changes only
        # dashes and digits of other scripts, one character for one: the offsets stay the
        # identity, and the C-level checks are far cheaper than walking the text.
        special = _NOT_NFKC_ONLY.search(text)
        if special is not None:
            if _ZERO_WIDTH_RE.search(text, special.start()) is not None:
                return _fold_each(text)  # (something to drop)
            text = _NOT_NFKC_ONLY.sub(_one_for_one, text)
    # (a gap is two blanks or a tab: two substring tests spare most texts the regex)
    if ("  " not in text and "\t" not in text) or _DIGIT_GAP.search(text) is None:
        return Normalised(text, None, len(text))
    return _collapse_gaps(list(text), list(range(len(text))), len(text))


def _fold_each(text: str) -> Normalised:
    """The per-character fold with its offset map (text that is not NFKC, or holds
    zero-width characters)."""
    out, origin = [], []
    for index, char in enumerate(text):
        folded = char if ord(char) < 128 else _fold(char)
        for piece in folded:
            out.append(piece)
            origin.append(index)
    return _collapse_gaps(out, origin, len(text))


def _collapse_gaps(out: list[str], origin: list[int], length: int) -> Normalised:
    joined = "".join(out)
    if _DIGIT_GAP.search(joined) is None:
        return Normalised(joined, tuple(origin), length)
    pieces: list[str] = []
    kept: list[int] = []
    last = 0
    for match in _DIGIT_GAP.finditer(joined):
        pieces.append(joined[last : match.start()])
        kept.extend(origin[last : match.start()])
        pieces.append(" ")
        kept.append(origin[match.start()])
        last = match.end()
    pieces.append(joined[last:])
    kept.extend(origin[last:])
    return Normalised("".join(pieces), tuple(kept), length)


def defang(text: str) -> str:
    """Break anything that imitates a reference prefix (`CC_` -> `CC-`); length is kept."""
    return _LOOKALIKE.sub(lambda m: m.group(0)[:2] + "-", text)
