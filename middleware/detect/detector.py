"""The detector: normalise -> recognizers (+ custom types, + context rule) -> overlaps.

Pure: text in, spans out, no database and no network. Built once from the config.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from coatcheck.middleware.detect.address import absorb_places, find_addresses
from coatcheck.middleware.detect.config import DetectConfig, load_config
from coatcheck.middleware.detect.context_rules import apply_rule, resolve_rule
from coatcheck.middleware.detect.normalise import Normalised, normalise
from coatcheck.middleware.detect.phone import PHONE_MIN_DIGITS, find_phones
from coatcheck.middleware.detect.recognizers import (
    BUILTIN_RECOGNIZERS,
    DIGIT_RUN,
    Candidate,
    Recognizer,
)
from coatcheck.middleware.detect.resolve import resolve_overlaps
from coatcheck.middleware.detect.spans import Context, Span

if TYPE_CHECKING:
    from coatcheck.middleware.detect.ner import Analysis, NerRecognizer
    from coatcheck.middleware.detect.places import PlaceGazetteer

__all__ = ["Detector"]


def _separators(run: str) -> int:
    return run.count(" ") + run.count(".") + run.count("-")


class Detector:
    """Finds PII spans; offsets index the original text, values are normalised."""

    def __init__(self, config: DetectConfig) -> None:
        self.config = config
        custom = tuple(
            Recognizer(
                c.name,
                (c.regex,),
                validator=c.validator,
                context=tuple(c.context),
                context_required=c.context_required,
                prune=False,
                needs_digit=False,
            )
            for c in config.custom_types
        )
        self._recognizers = BUILTIN_RECOGNIZERS + custom
        self._addresses = config.detection.addresses_on
        self._ner: NerRecognizer | None = None
        self._places: PlaceGazetteer | None = None
        if config.detection.ner:
            from coatcheck.middleware.detect.ner import (
                NerRecognizer as _Ner,  # optional extra: spaCy
            )
            from coatcheck.middleware.detect.places import PlaceGazetteer as _Places

            self._ner = _Ner()
            if config.detection.places_on:
                self._places = _Places(config.detection.place_min_population)

    @classmethod
    def from_config(cls, config: DetectConfig | dict[str, object] | None = None) -> Detector:
        """Build from a validated config or the raw YAML dict."""
        if isinstance(config, DetectConfig):
            return cls(config)
        return cls(load_config(config))

    def detect(self, text: str, context: Context | None = None) -> list[Span]:
        """Spans in `text`; while `context` is active its rule wins over global patterns."""
        norm = normalise(text)
        analysis = self._ner.analyse(norm.text) if self._ner is not None else None
        return self._detect(norm, context, analysis)

    def detect_many(self, texts: Sequence[str], batch_size: int = 64) -> list[list[Span]]:
        """`detect` (no context rule) for several texts, e.g. a history import: the same
        spans, with the NER model run on batches of `batch_size` texts."""
        norms = [normalise(text) for text in texts]
        if self._ner is None:
            return [self._detect(norm, None, None) for norm in norms]
        analyses = self._ner.analyse_many([norm.text for norm in norms], batch_size)
        return [self._detect(n, None, a) for n, a in zip(norms, analyses, strict=True)]

    def _detect(
        self, norm: Normalised, context: Context | None, analysis: Analysis | None
    ) -> list[Span]:
        candidates = list(self._global(norm.text, analysis))
        if context is not None:
            rule = resolve_rule(self.config, context)
            candidates.extend(apply_rule(norm.text, context.expect, rule))
        spans = []
        kept = resolve_overlaps(candidates)
        if self._addresses:
            kept = absorb_places(norm.text, kept)
        for candidate in kept:
            if candidate.score < self._threshold(candidate.entity_type):
                continue
            start, end = norm.span(candidate.start, candidate.end)
            value = norm.text[candidate.start : candidate.end]
            spans.append(
                Span(
                    start,
                    end,
                    candidate.entity_type,
                    value,
                    candidate.rule,
                    candidate.validated,
                    candidate.score,
                )
            )
        return spans

    def _threshold(self, entity_type: str) -> float:
        detection = self.config.detection
        return detection.thresholds.get(entity_type, detection.min_score)

    def _global(self, text: str, analysis: Analysis | None) -> Iterator[Candidate]:
        # One scan of digit runs gates every recognizer: half of chat messages have too few
        # digits for any digit-bearing type (then only the e-mail pattern runs, if "@"), and
        # scattered digits (an address, a date) rule out card, SSN, NHS and passport numbers.
        runs = [len(run) - _separators(run) for run in DIGIT_RUN.findall(text)]
        digits, longest = sum(runs), max(runs, default=0)
        for recognizer in self._recognizers:
            if recognizer.could_match(text, digits, longest):
                yield from recognizer.find(text)
        if digits >= PHONE_MIN_DIGITS:
            yield from find_phones(text, self.config.detection.default_region)
        if self._addresses and digits:
            yield from find_addresses(text)
        if analysis is not None:
            found, others = analysis
            yield from found
            if self._places is not None:
                yield from self._places.find(text, others)
