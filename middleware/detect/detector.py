"""The detector: normalise -> recognizers (+ custom types, + context rule) -> overlaps.

Pure: text in, spans out, no database and no network. Built once from the config: the
configured locales decide the word lists, numbering plans and national ids (`locales.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from coatcheck.middleware.detect.address import ADDRESS_TYPE, AddressFinder, absorb_places
from coatcheck.middleware.detect.cards import NearCard
from coatcheck.middleware.detect.config import DetectConfig, load_config
from coatcheck.middleware.detect.context_rules import apply_rule, resolve_rule
from coatcheck.middleware.detect.credentials import (
    ASSIGNMENT_WORDS,
    SECRET_TYPES,
    SECRET_WORDS_KEY,
)
from coatcheck.middleware.detect.language import Language, guess_language, parse_language
from coatcheck.middleware.detect.locales import lexicon_for
from coatcheck.middleware.detect.names import NameFinder
from coatcheck.middleware.detect.normalise import Normalised, normalise
from coatcheck.middleware.detect.phone import PHONE_MIN_DIGITS, PhoneFinder
from coatcheck.middleware.detect.prune import Pruner
from coatcheck.middleware.detect.recognizers import (
    EMAIL_AT_WORDS,
    Candidate,
    Recognizer,
    build_recognizers,
)
from coatcheck.middleware.detect.resolve import resolve_overlaps
from coatcheck.middleware.detect.scan import Key, Scan, WordIndex
from coatcheck.middleware.detect.spans import Context, Span

if TYPE_CHECKING:
    from coatcheck.middleware.detect.ner import Analysis, NerRecognizer
    from coatcheck.middleware.detect.places import PlaceGazetteer
    from coatcheck.middleware.detect.presidio_plugin import PresidioPlugin

__all__ = ["Detector"]

# Digit-bearing types whose words, said last before a number, make it not a phone number
# (cards are left out: Luhn and length tell them apart, and "CB"/"cc" are too short).
_PHONE_RIVALS: Final = (
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


# (recognizer, its text gate (`Recognizer.text_gate`), a context word occurs: None when it
# does not ask)
_Eligible = tuple[Recognizer, Callable[[Scan], bool] | None, bool | None]
# Digit counts at or above this one gate alike (no recognizer bounds a count this high).
_CAP: Final = 40
# The finders' lists in the word index (beside the recognizers' positions).
_NAMES: Final = "name cues"
_STREETS: Final = "street words"


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
                safe=True,
            )
            for c in config.custom_types
        )
        builtin = build_recognizers(lexicon)
        if not detection.secrets:
            builtin = tuple(r for r in builtin if r.entity_type not in SECRET_TYPES)
        self._secrets = tuple(r for r in builtin if r.entity_type in SECRET_TYPES)
        self._secrets_by_token = tuple(sorted(self._secrets, key=lambda r: r.min_token))
        self._secret_gates = tuple((r, r.min_token, r.text_gate) for r in self._secrets_by_token)
        self._recognizers = tuple(r for r in builtin if r.entity_type not in SECRET_TYPES) + custom
        # Which recognizers a message's digits allow, as bit masks over `_recognizers`: one
        # per digit count of a run (the recognizers whose run bounds admit it, and those
        # with no run bound), one per total digit count (`min_digits`, `needs_digit`).
        recognizers = self._recognizers
        free = sum(1 << i for i, r in enumerate(recognizers) if not r.min_run)
        self._no_run_mask = free
        self._run_masks = tuple(
            free | sum(1 << i for i, r in enumerate(recognizers) if r.min_run and r.fits_run(n))
            for n in range(_CAP + 1)
        )
        self._digit_masks = tuple(
            sum(
                1 << i
                for i, r in enumerate(recognizers)
                if d >= r.min_digits and not (r.needs_digit and d == 0)
            )
            for d in range(_CAP + 1)
        )
        # Recognizers that read context words: all of whose patterns need one (skipped
        # without one), and those with weak patterns too.
        self._required_mask = sum(1 << i for i, r in enumerate(recognizers) if r.context_required)
        self._context_mask = sum(1 << i for i, r in enumerate(recognizers) if r.needs_context)
        self._by_mask: dict[tuple[int, int], tuple[_Eligible, ...]] = {}
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
        # One scan of the lower-cased message finds every word a finder asks about: the
        # context words of each recognizer that needs one (keys: positions in
        # `_recognizers`), the name cues, the street words, the secrets' key words.
        lists: dict[Key, tuple[str, ...]] = {
            i: r.context for i, r in enumerate(self._recognizers) if r.needs_context
        }
        if self._names is not None:
            lists[_NAMES] = self._names.cue_words
        if self._addresses is not None:
            lists[_STREETS] = self._addresses.gate_words
        if self._secrets:
            lists[SECRET_WORDS_KEY] = ASSIGNMENT_WORDS
        lists.update(self._phones.word_lists)
        lists[EMAIL_AT_WORDS] = lexicon.email_at
        self._index = WordIndex(lists, whole=frozenset([_STREETS]))
        # ... and the lists a message without digits can need (most street words are short
        # and common: their hits cost more than the scan, and addresses need a digit).
        self._plain_index = WordIndex(
            {
                key: words
                for key, words in lists.items()
                if key in (_NAMES, SECRET_WORDS_KEY, EMAIL_AT_WORDS)
                or (isinstance(key, int) and not self._recognizers[key].needs_digit)
            }
        )
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
        candidates = _drop_house_numbers(self._global(norm.text, analysis, hint))
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

    def _find_secrets(self, text: str, scan: Scan) -> list[Candidate]:
        """Most secrets are a long token (most messages have none: one look at the tokens
        rules them all out); the others (a key assignment, a private key) have gates of
        their own."""
        longest = scan.longest_token
        found: list[Candidate] = []
        for recognizer, min_token, gate in self._secret_gates:
            if min_token > longest:
                break
            if gate is None or gate(scan):
                found += recognizer.find(text)
        return found

    def _eligible(self, scan: Scan) -> tuple[_Eligible, ...]:
        """The recognizers the message's digits and words allow (`Recognizer.min_digits`,
        `min_run`, `max_run`: each run's digit count is looked up once; a recognizer all
        of whose patterns need a context word needs one in the message), with what else to
        ask of each: its text gates, whether a context word occurs. The list per pair of
        masks is built once (a mask is a set of recognizers, so there are few)."""
        runs = self._run_masks
        mask = self._no_run_mask
        for _, _, n in scan.runs:
            mask |= runs[n if n < _CAP else _CAP]
        digits = scan.digits
        mask &= self._digit_masks[digits if digits < _CAP else _CAP]
        words = 0
        if mask & self._context_mask:
            words = scan.key_bits() & self._context_mask
            mask &= ~self._required_mask | words
            words &= mask
        key = (mask, words)
        found = self._by_mask.get(key)
        if found is None:
            found = tuple(
                (r, r.text_gate, bool(words >> i & 1) if r.needs_context else None)
                for i, r in enumerate(self._recognizers)
                if mask >> i & 1
            )
            self._by_mask[key] = found
        return found

    def _global(
        self, text: str, analysis: Analysis | None, hint: Language | None
    ) -> list[Candidate]:
        # One scan of digit runs gates every recognizer: half of chat messages have too few
        # digits for any digit-bearing type (then only the e-mail pattern runs, if "@"), and
        # scattered digits (an address, a date) rule out card, SSN, NHS and passport numbers.
        scan = Scan(text, self._index, self._plain_index)
        digits = scan.digits
        found: list[Candidate] = []
        for recognizer, text_gate, anywhere in self._eligible(scan):
            if text_gate is not None and not text_gate(scan):
                continue
            found += recognizer.find(text, context_anywhere=anywhere)
        if found and any(c.entity_type == "CREDIT_CARD" for c in found):
            found += self._near_card.find(text, found)
        if self._secrets:
            found += self._find_secrets(text, scan)
        if digits >= PHONE_MIN_DIGITS:
            found += self._phones.find(text, self._region(hint), self._default_region, scan)
        if self._addresses is not None and digits:
            found += self._addresses.find(text, scan, scan.starts(_STREETS))
        if self._names is not None:
            found += self._names.find(text, scan.folded, scan.starts(_NAMES))
        if self._presidio is not None:
            found += self._presidio.find(text)
        if analysis is not None:
            entities, others = analysis
            found += entities
            if self._places is not None:
                found += self._places.find(text, others)
        return found
