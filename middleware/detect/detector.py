"""The detector: normalise -> recognizers (+ custom types, + context rule) -> overlaps.

Pure: text in, spans out, no database and no network. Built once from the config: the
configured locales decide the word lists, numbering plans and national ids (`locales.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from coatcheck.middleware.detect.address import ADDRESS_TYPE, AddressFinder, absorb_places
from coatcheck.middleware.detect.cards import NearCard
from coatcheck.middleware.detect.config import DetectConfig, load_config
from coatcheck.middleware.detect.context_rules import apply_rule, resolve_rule
from coatcheck.middleware.detect.credentials import SECRET_TYPES
from coatcheck.middleware.detect.language import Language, guess_language, parse_language
from coatcheck.middleware.detect.locales import lexicon_for, words_regex
from coatcheck.middleware.detect.names import NameFinder
from coatcheck.middleware.detect.normalise import Normalised, normalise
from coatcheck.middleware.detect.phone import PHONE_MIN_DIGITS, PhoneFinder
from coatcheck.middleware.detect.prune import Pruner
from coatcheck.middleware.detect.recognizers import Candidate, Recognizer, build_recognizers
from coatcheck.middleware.detect.resolve import resolve_overlaps
from coatcheck.middleware.detect.scan import Scan, WordIndex
from coatcheck.middleware.detect.spans import Context, Span

if TYPE_CHECKING:
    from coatcheck.middleware.detect.ner import Analysis, NerRecognizer
    from coatcheck.middleware.detect.places import PlaceGazetteer
    from coatcheck.middleware.detect.presidio_plugin import PresidioPlugin

__all__ = ["Detector"]

# Digit-bearing types whose words, said last before a number, make it not a phone number
# (cards are left out: Luhn and length tell them apart, and "CB"/"cc" are too short).
_PHONE_RIVALS = (
    "BANK_ACCOUNT",
    "US_SSN",
    "US_PASSPORT",
    "UK_NHS",
    "UK_SORT_CODE",
    "FR_NIR",
    "ES_NIF",
    "NL_BSN",
    "BR_CPF",
    "BR_CNPJ",
    "DE_TAX_ID",
    "OTHER_ID",  # identifiers with no type of their own (a driver's licence number)
)


# (position in the recognizer list, recognizer, has text gates, needs a context word)
_Eligible = tuple[int, Recognizer, bool, bool]


def _needles(needles: tuple[str, ...]) -> re.Pattern[str] | None:
    """One search for any of these substrings (None: no substring)."""
    alternation = words_regex(needles, casefold=False)
    return re.compile(alternation) if alternation else None


def _drop_house_numbers(candidates: list[Candidate]) -> list[Candidate]:
    """Digits that a street address runs into are no phone number: a phone candidate whose
    last digits start the address ("I live in 84164 1266 Cheriton Dr", "Apt. 023 09306 8
    Circle Way": a postcode or flat number and the house number run together), or that
    starts inside one (its postcode: "Rua X, 157, 01590501 Almeida")."""
    spans = [(c.start, c.end) for c in candidates if c.rule == ADDRESS_TYPE]
    if not spans:
        return candidates
    return [
        c
        for c in candidates
        if not (
            c.rule == "PHONE_NUMBER"
            and any(c.start < s < c.end or s < c.start < e for s, e in spans)
        )
    ]


class Detector:
    """Finds PII spans; offsets index the original text, values are normalised."""

    def __init__(self, config: DetectConfig) -> None:
        self.config = config
        detection = config.detection
        lexicon = lexicon_for(detection.locales)
        self.lexicon = lexicon
        pruner = Pruner(lexicon)
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
        builtin = build_recognizers(lexicon)
        if not detection.secrets:
            builtin = tuple(r for r in builtin if r.entity_type not in SECRET_TYPES)
        self._secrets = tuple(r for r in builtin if r.entity_type in SECRET_TYPES)
        self._recognizers = tuple(r for r in builtin if r.entity_type not in SECRET_TYPES) + custom
        # One scan per message tells every recognizer whose patterns need a context word
        # whether one of its words occurs at all (keys: positions in `_recognizers`).
        self._context_index = WordIndex(
            {i: r.context for i, r in enumerate(self._recognizers) if r.needs_context}
        )
        self._by_digits: dict[tuple[int, int], tuple[_Eligible, ...]] = {}
        # One search for the whole secret family before any of its gates runs (each secret
        # needs one of its needles: a prefix such as "AKIA", or a word such as "password").
        self._secret_hint = _needles(
            tuple(n for r in self._secrets if not r.requires_casefold for n in r.requires)
        )
        self._secret_hint_cf = _needles(
            tuple(n for r in self._secrets if r.requires_casefold for n in r.requires)
        )
        phone_words = {w.lower() for w in lexicon.context_for("PHONE_NUMBER")}
        rivals = tuple(
            word
            for entity_type in _PHONE_RIVALS
            for word in lexicon.context_for(entity_type)
            if word.lower() not in phone_words
        )
        self._phones = PhoneFinder(lexicon, pruner, rivals)
        self._default_region = detection.default_region
        self._near_card = NearCard(lexicon)
        self._names = NameFinder(lexicon) if detection.names else None
        self._addresses = AddressFinder(lexicon) if detection.addresses_on else None
        self._presidio: PresidioPlugin | None = None
        if detection.presidio is not None:
            from coatcheck.middleware.detect.presidio_plugin import PresidioPlugin as _Plugin

            settings = detection.presidio
            self._presidio = _Plugin(settings.recognizers, settings.yaml, settings.min_score)
        self._ner: dict[str, NerRecognizer] = {}
        self._places: PlaceGazetteer | None = None
        if detection.ner:
            from coatcheck.middleware.detect.ner import (
                NerRecognizer as _Ner,  # optional extra: spaCy
            )
            from coatcheck.middleware.detect.places import PlaceGazetteer as _Places

            self._ner = {lang: _Ner(package) for lang, package in detection.ner_models.items()}
            if detection.places_on:
                self._places = _Places(detection.place_min_population)

    @classmethod
    def from_config(cls, config: DetectConfig | dict[str, object] | None = None) -> Detector:
        """Build from a validated config or the raw YAML dict."""
        if isinstance(config, DetectConfig):
            return cls(config)
        return cls(load_config(config))

    def detect(
        self, text: str, context: Context | None = None, language: str | None = None
    ) -> list[Span]:
        """Spans in `text`; while `context` is active its rule wins over global patterns.

        `language` is the conversation's language hint from the channel (`de`, `de-DE`,
        `pt_BR`; unknown or malformed hints are ignored): its region's numbering plan is
        tried first and NER runs only with a model of that language. Without a hint the
        language is guessed from the text when it matters (NER).
        """
        norm = normalise(text)
        hint = parse_language(language)
        analysis = self._analyse(norm.text, hint) if self._ner else None
        return self._detect(norm, context, analysis, hint)

    def detect_many(self, texts: Sequence[str], batch_size: int = 64) -> list[list[Span]]:
        """`detect` (no context rule, no hint) for several texts, e.g. a history import:
        the same spans, with each NER model run on batches of `batch_size` texts."""
        norms = [normalise(text) for text in texts]
        if not self._ner:
            return [self._detect(norm, None, None, None) for norm in norms]
        analyses: list[Analysis | None] = [None] * len(norms)
        by_model: dict[str, list[int]] = {}
        for index, norm in enumerate(norms):
            model = self._model_language(norm.text, None)
            if model is not None:
                by_model.setdefault(model, []).append(index)
        for model, indexes in by_model.items():
            found = self._ner[model].analyse_many([norms[i].text for i in indexes], batch_size)
            for index, analysis in zip(indexes, found, strict=True):
                analyses[index] = analysis
        return [self._detect(n, None, a, None) for n, a in zip(norms, analyses, strict=True)]

    def _model_language(self, text: str, hint: Language | None) -> str | None:
        """The language whose NER model reads this text, or None (no model for it)."""
        if hint is not None:
            language: str | None = hint.language
        else:
            language = guess_language(text, self.lexicon)
            if language is None:
                language = self.lexicon.languages[0]
        return language if language in self._ner else None

    def _analyse(self, text: str, hint: Language | None) -> Analysis | None:
        model = self._model_language(text, hint)
        return self._ner[model].analyse(text) if model is not None else None

    def _detect(
        self,
        norm: Normalised,
        context: Context | None,
        analysis: Analysis | None,
        hint: Language | None,
    ) -> list[Span]:
        candidates = _drop_house_numbers(list(self._global(norm.text, analysis, hint)))
        if context is not None:
            rule = resolve_rule(self.config, context)
            candidates.extend(apply_rule(norm.text, context.expect, rule))
        spans = []
        kept = resolve_overlaps(candidates)
        if self._addresses is not None:
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

    def _region(self, hint: Language | None) -> str | None:
        if hint is not None and hint.region is not None:
            return hint.region
        if hint is not None:
            for locale in self.lexicon.locales:
                if locale.language == hint.language:
                    return locale.region
        return self._default_region

    def _any_secret_hint(self, scan: Scan) -> bool:
        if self._secret_hint is not None and self._secret_hint.search(scan.text):
            return True
        if self._secret_hint_cf is None:
            return False
        return self._secret_hint_cf.search(scan.folded or scan.text.lower()) is not None

    def _digit_eligible(self, digits: int, longest: int) -> tuple[_Eligible, ...]:
        """The recognizers whose digit gates pass for these counts (cached per pair: the
        gates are thresholds, so counts beyond the highest one give the same list), with
        what else to ask of each: its text gates, its context words."""
        key = (min(digits, 32), min(longest, 32))
        found = self._by_digits.get(key)
        if found is None:
            found = tuple(
                (i, r, r.has_text_gates, r.needs_context)
                for i, r in enumerate(self._recognizers)
                if digits >= r.min_digits
                and longest >= r.min_run
                and not (r.needs_digit and digits == 0)
            )
            self._by_digits[key] = found
        return found

    def _global(
        self, text: str, analysis: Analysis | None, hint: Language | None
    ) -> Iterator[Candidate]:
        # One scan of digit runs gates every recognizer: half of chat messages have too few
        # digits for any digit-bearing type (then only the e-mail pattern runs, if "@"), and
        # scattered digits (an address, a date) rule out card, SSN, NHS and passport numbers.
        scan = Scan(text, self._context_index)
        digits = scan.digits
        cards: list[Candidate] = []
        for index, recognizer, text_gates, needs_context in self._digit_eligible(
            digits, scan.longest
        ):
            if text_gates and not recognizer.passes_text_gates(scan):
                continue
            anywhere = scan.has_context(index) if needs_context else None
            if recognizer.context_required and not anywhere:
                continue  # no pattern of it counts without a context word
            for candidate in recognizer.find(text, context_anywhere=anywhere):
                if candidate.entity_type == "CREDIT_CARD":
                    cards.append(candidate)
                yield candidate
        if cards:
            yield from self._near_card.find(text, cards)
        if self._secrets and self._any_secret_hint(scan):
            for recognizer in self._secrets:
                if recognizer.could_match(scan):
                    yield from recognizer.find(text)
        if digits >= PHONE_MIN_DIGITS:
            yield from self._phones.find(text, self._region(hint), self._default_region)
        if self._addresses is not None and digits:
            yield from self._addresses.find(text, scan)
        if self._names is not None:
            yield from self._names.find(text, scan.folded)
        if self._presidio is not None:
            yield from self._presidio.find(text)
        if analysis is not None:
            found, others = analysis
            yield from found
            if self._places is not None:
                yield from self._places.find(text, others)
