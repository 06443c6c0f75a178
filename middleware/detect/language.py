"""The conversation's language: a hint from the channel, or a guess from the text.

The hint (`de`, `de-DE`, `pt_BR`, `fr-CA`) comes from the channel (Rasa `metadata`); a
malformed one is ignored. Without one, the language is guessed only where it matters (which
NER model may read the message): the configured language whose function words ("der",
"le", "el", "il", "het", "o") occur most often, or None on no hit or a tie.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coatcheck.middleware.detect.locales import Lexicon

__all__ = ["Language", "guess_language", "parse_language"]

_HINT = re.compile(r"([A-Za-z]{2})(?:[-_]([A-Za-z]{2}))?")
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True, slots=True)
class Language:
    """A language code and, when given, a region."""

    language: str
    region: str | None = None


def parse_language(hint: str | None) -> Language | None:
    """`de-DE` -> Language("de", "DE"); None for None or anything malformed."""
    if not hint:
        return None
    match = _HINT.fullmatch(hint.strip())
    if match is None:
        return None
    language, region = match.groups()
    return Language(language.lower(), region.upper() if region else None)


def guess_language(text: str, lexicon: Lexicon) -> str | None:
    """The configured language with the most function-word hits (None: no hit, a tie)."""
    words = [w.lower() for w in _WORD.findall(text)]
    scores = {
        language: sum(word in stop for word in words)
        for language, stop in lexicon.stopwords.items()
    }
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    if not ranked or ranked[0][1] == 0:
        return None
    if len(ranked) > 1 and ranked[1][1] == ranked[0][1]:
        return None
    return ranked[0][0]
