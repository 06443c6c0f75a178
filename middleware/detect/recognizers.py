"""Global recognizers: one per class, patterns and context words as data.

A recognizer proposes candidates by regex, a named checksum validator confirms them, and
the single `invalidate` hook prunes the look-alikes users complain about (order numbers,
amounts, versions, times, ticket ids). Low-evidence patterns (a bare 9-digit SSN, a
passport number, a date) only count when a context word is near.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from coatcheck.middleware.detect.validators import VALIDATORS

__all__ = ["BUILTIN_RECOGNIZERS", "DIGIT_RUN", "Candidate", "Recognizer", "invalidate"]

_CONTEXT_WINDOW = 40
# Digits joined by at most one separator: every digit-group pattern below (cards, SSNs,
# NHS and passport numbers) lies inside one such run, so its digit count is a safe gate.
DIGIT_RUN = re.compile(r"\d(?:[ .-]?\d)*")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A pattern hit in normalised text, before overlap resolution."""

    start: int
    end: int
    entity_type: str
    rule: str
    validated: bool
    score: float


@dataclass(frozen=True)
class Recognizer:
    """One information type: regexes, an optional validator name and context words."""

    entity_type: str
    patterns: tuple[str, ...]
    validator: str | None = None
    context: tuple[str, ...] = ()
    context_required: bool = False
    score: float = 0.6
    flags: int = 0
    prune: bool = True
    needs_digit: bool = True
    weak_patterns: tuple[str, ...] = ()  # these count only with a context word near
    # Cheap gates, checked before any regex runs: the fewest digits any pattern can match,
    # and substrings of which at least one must occur (e.g. "@" for e-mail addresses).
    min_digits: int = 0
    min_run: int = 0  # fewest digits in one run joined by single " ", "." or "-" (DIGIT_RUN)
    requires: tuple[str, ...] = ()
    # Per pattern (patterns then weak_patterns, by position): substrings of which one must
    # occur for that pattern to be run at all; an empty tuple (or no entry) means no gate.
    pattern_requires: tuple[tuple[str, ...], ...] = ()
    _compiled: tuple[tuple[re.Pattern[str], bool], ...] = field(init=False, repr=False)
    _context_re: re.Pattern[str] | None = field(init=False, repr=False)
    _value_group: tuple[bool, ...] = field(init=False, repr=False)
    _gates: tuple[tuple[str, ...], ...] = field(init=False, repr=False)
    _context_lower: tuple[str, ...] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        strong = tuple((re.compile(p, self.flags), False) for p in self.patterns)
        weak = tuple((re.compile(p, self.flags), True) for p in self.weak_patterns)
        object.__setattr__(self, "_compiled", strong + weak)
        groups = tuple("value" in regex.groupindex for regex, _ in strong + weak)
        object.__setattr__(self, "_value_group", groups)
        gates = self.pattern_requires + ((),) * (len(groups) - len(self.pattern_requires))
        object.__setattr__(self, "_gates", gates[: len(groups)])
        words = "|".join(re.escape(w) for w in self.context)
        context_re = re.compile(rf"\b(?:{words})", re.IGNORECASE) if words else None
        object.__setattr__(self, "_context_re", context_re)
        ascii_words = all(w.isascii() for w in self.context)
        lower = tuple(w.lower() for w in self.context) if ascii_words else None
        object.__setattr__(self, "_context_lower", lower)

    def could_match(self, text: str, digits: int, longest_run: int) -> bool:
        """False when the cheap gates rule this recognizer out for `text` (no regex run).

        `digits` counts the digits in `text`, `longest_run` the most digits in one
        `DIGIT_RUN` match; both come from a single scan shared by all recognizers.
        """
        if digits < self.min_digits or (self.needs_digit and digits == 0):
            return False
        if longest_run < self.min_run:
            return False
        return not self.requires or any(needle in text for needle in self.requires)

    def find(self, text: str, expected: bool = False) -> Iterator[Candidate]:
        """Candidates in `text` that pass the validator, the context test and `invalidate`.

        A context word must precede a weak or context-required hit, so when no context word
        occurs anywhere in `text` those patterns are not run at all: one search instead of
        one scan per pattern (most messages carry no context word). `expected=True` means
        the bot is waiting for this type (a context rule): that is the context, so weak and
        context-required patterns count without a context word.
        """
        any_context: bool | None = True if expected else None
        patterns = zip(self._compiled, self._value_group, self._gates, strict=True)
        for (regex, weak), value_group, gate in patterns:
            if gate and not any(needle in text for needle in gate):
                continue
            if weak or self.context_required:
                if any_context is None:
                    any_context = self._has_context_anywhere(text)
                if not any_context:
                    continue
            for match in regex.finditer(text):
                start, end = match.span("value") if value_group else match.span()
                candidate = self._check(text, start, end, weak, expected)
                if candidate is not None:
                    yield candidate

    def _has_context_anywhere(self, text: str) -> bool:
        # Plain substring tests on the lower-cased text first (C speed, no regex scan);
        # the word-boundary regex only confirms when a word is there at all. ASCII only:
        # re.IGNORECASE also folds a few non-ASCII letters (dotless i, long s) onto ASCII.
        if self._context_re is None:
            return False
        if self._context_lower is not None and text.isascii():
            lowered = text.lower()
            if not any(word in lowered for word in self._context_lower):
                return False
        return self._context_re.search(text) is not None

    def _check(
        self, text: str, start: int, end: int, weak: bool, expected: bool = False
    ) -> Candidate | None:
        value = text[start:end]
        validated = False
        if self.validator is not None:
            if not VALIDATORS[self.validator](value):
                return None
            validated = True
        has_context = expected or self._near_context(text, start)
        if (self.context_required or weak) and not has_context:
            return None
        if self.prune and invalidate(text, start, end):
            return None
        score = min(1.0, self.score + (0.3 if validated else 0.0) + (0.1 if has_context else 0.0))
        return Candidate(start, end, self.entity_type, self.entity_type, validated, score)

    def _near_context(self, text: str, start: int) -> bool:
        if self._context_re is None:
            return False
        return self._context_re.search(text, max(0, start - _CONTEXT_WINDOW), start) is not None


# Words right before a number that say "this is an identifier of ours, not PII".
_ID_PREFIX = re.compile(
    r"(?:\b(?:order|invoice|inv|ticket|ref|reference|case|tracking|item|sku|version|ver|build"
    r"|release|qty|quantity|count|total|amount)(?:\s*(?:no|nr|number|id|#))?\b[\s:.#-]*"
    r"|[#$€£¥]\s*|\bv)$",
    re.IGNORECASE,
)
_ID_SUFFIX = re.compile(
    r"^(?:\s*(?:%|usd|eur|gbp|dollars|euros|items|units|pcs)\b|[.,]\d)", re.IGNORECASE
)
_TIME_OR_AMOUNT = re.compile(
    r"^(?:\d{1,2}:\d{2}(?::\d{2})?|\d{1,3}(?:,\d{3})+(?:\.\d+)?)$|^\d{4}-\d{2}-\d{2}(?!\d)"
)


def invalidate(text: str, start: int, end: int) -> bool:
    """True when a candidate is an order/ticket id, amount, version, time or count."""
    before = text[max(0, start - 24) : start]
    if _ID_PREFIX.search(before):
        return True
    if start > 0 and text[start - 1] in "-/_" and start > 1 and text[start - 2].isalnum():
        return True  # INV-2024-0001: the number is a tail of an identifier
    if _ID_SUFFIX.match(text[end : end + 10]):
        return True
    return _TIME_OR_AMOUNT.match(text[start:end]) is not None


_BIRTH = ("born", "birth", "dob", "d.o.b", "birthday", "birthdate", "date of birth")
_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)

BUILTIN_RECOGNIZERS: tuple[Recognizer, ...] = (
    Recognizer(
        "EMAIL_ADDRESS",
        (r"\b[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b",),
        score=0.9,
        prune=False,
        needs_digit=False,
        requires=("@",),
    ),
    Recognizer(
        "CREDIT_CARD",
        (
            r"(?<![\w.-])\d{4}(?:[ -]?\d{4}){2}[ -]?\d{1,7}(?![\w]|[.-]\d)",
            r"(?<![\w.-])\d{4}[ -]?\d{6}[ -]?\d{4,5}(?![\w]|[.-]\d)",
        ),
        weak_patterns=(r"(?<![\w.-])\d{4}[ -]?\d{4}[ -]?\d{4}(?![\w]|[.-]\d)",),
        validator="luhn",
        context=("card", "credit", "visa", "mastercard", "amex", "cc"),
        min_digits=12,
        min_run=12,
    ),
    Recognizer(
        "US_SSN",
        (r"(?<![\w.-])(?!000|666|9\d\d)\d{3}([- .])(?!00)\d{2}\1(?!0000)\d{4}(?![\w]|[.-]\d)",),
        weak_patterns=(
            r"(?<![\w.-])(?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4}(?![\w]|[.-]\d)",
        ),
        context=("ssn", "social security", "social", "ss#", "ss #", "ssn#"),
        score=0.5,
        min_digits=9,
        min_run=9,
    ),
    Recognizer(
        "IBAN_CODE",
        (r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",),
        validator="iban",
        min_digits=2,
    ),
    Recognizer(
        "IP_ADDRESS",
        (
            r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)",
            r"(?<![\w:])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f]*:)[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
            r"(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])",
        ),
        validator="ip",
        min_digits=1,
        requires=(".", ":"),
        pattern_requires=((".",), (":",)),
    ),
    Recognizer(
        "US_PASSPORT",
        (r"\b[A-Z]?\d{9}\b",),
        context=("passport",),
        context_required=True,
        score=0.5,
        min_digits=9,
        min_run=9,
    ),
    Recognizer(
        "UK_NHS",
        (r"(?<![\w.-])\d{3}([ -]?)\d{3}\1\d{4}(?![\w]|[.-]\d)",),
        validator="nhs",
        context=("nhs", "health service", "national health"),
        context_required=True,
        min_digits=10,
        min_run=10,
    ),
    Recognizer(
        "CRYPTO",
        (
            r"\b[13][1-9A-HJ-NP-Za-km-z]{25,34}\b",
            r"\b(?:bc1|BC1)[02-9ac-hj-np-zAC-HJ-NP-Z]{11,71}\b",
        ),
        validator="btc",
        prune=False,
        min_digits=1,
        pattern_requires=((), ("bc1", "BC1")),
    ),
    Recognizer(
        "DATE_OF_BIRTH",
        (
            r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\b",
            rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}\.?,?\s+\d{{4}}\b",
            rf"\b{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b",
        ),
        context=_BIRTH,
        context_required=True,
        flags=re.IGNORECASE,
        prune=False,
        min_digits=3,
    ),
)
