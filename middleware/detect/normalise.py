"""Normalisation with an offset map, and inbound defanging of look-alike references.

Users paste full-width digits and zero-width joiners (on purpose or not); matching on the
NFKC form with those removed finds them, and the map gives offsets in the original text so
the redaction replaces exactly what the user typed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Normalised", "defang", "normalise"]

_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")
_LOOKALIKE = re.compile(r"CC_", re.IGNORECASE)
_ZERO_WIDTH_RE = re.compile("[" + "".join(sorted(_ZERO_WIDTH)) + "]")


@dataclass(frozen=True, slots=True)
class Normalised:
    """Normalised text plus, per normalised char, the original index it came from
    (`origin=None`: identity, the common all-ASCII case, kept cheap)."""

    text: str
    origin: tuple[int, ...] | None
    original_length: int

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a normalised [start, end) back to the original text."""
        if self.origin is None:
            return start, end
        if start >= len(self.origin):
            return self.original_length, self.original_length
        return self.origin[start], self.origin[end - 1] + 1 if end > start else self.origin[start]


def _is_identity(text: str) -> bool:
    """True when normalising would change nothing (accented names, most non-ASCII text).

    A string that is NFKC-normalised as a whole contains no character with NFKC quick-check
    "No", so each of its characters is also unchanged by NFKC on its own; with no zero-width
    character present the per-character pass is then the identity, and the C-level check is
    far cheaper than walking the text in Python.
    """
    return unicodedata.is_normalized("NFKC", text) and _ZERO_WIDTH_RE.search(text) is None


def normalise(text: str) -> Normalised:
    """NFKC per character, zero-width characters dropped, offsets kept."""
    if text.isascii() or _is_identity(text):
        return Normalised(text, None, len(text))
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char in _ZERO_WIDTH:
            continue
        folded = unicodedata.normalize("NFKC", char) if ord(char) > 127 else char
        for piece in folded:
            out.append(piece)
            origin.append(index)
    return Normalised("".join(out), tuple(origin), len(text))


def defang(text: str) -> str:
    """Break anything that imitates a reference prefix (`CC_` -> `CC-`); length is kept."""
    return _LOOKALIKE.sub(lambda m: m.group(0)[:2] + "-", text)
