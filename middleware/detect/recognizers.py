"""Global recognizers: one per class, patterns in code, context words from the locales.

A recognizer proposes candidates by regex, a named checksum validator confirms them, and
the locale-driven `Pruner` drops the look-alikes users complain about (order numbers,
amounts, versions, times, ticket ids). Low-evidence patterns (a bare 9-digit SSN, a
passport number, a date) only count when a context word is near.

Every pattern is linear by construction: a repeated class is preceded by a lookbehind
that excludes what it could consume (so attempts from consecutive positions never rescan
one run), and nested repetitions are bounded and unambiguous (each repetition must end in
a character the next cannot start with). `tests/detect/test_redos.py` feeds each pattern
long adversarial input.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final, final

from coatcheck.middleware.detect.locales import Lexicon, lexicon_for, words_regex
from coatcheck.middleware.detect.prune import Pruner
from coatcheck.middleware.detect.scan import (
    DIGIT_RUN,
    LONG_TOKEN,
    Scan,
    ascii_twin_or_self,
    digit_count,
    leading,
)
from coatcheck.middleware.detect.validators import VALIDATORS
from coatcheck.saferegex import Finder, safe_compile

__all__ = [
    "BUILTIN_RECOGNIZERS",
    "DIGIT_RUN",
    "EMAIL_AT_WORDS",
    "REGION_TYPES",
    "Candidate",
    "Recognizer",
    "build_recognizers",
    "default_pruner",
    "digit_count",
    "invalidate",
]

_CONTEXT_WINDOW: Final = 48
# The detector's word-index list of the at-words of spelled e-mail addresses.
EMAIL_AT_WORDS: Final = "email at words"


@final
class Candidate:
    """A pattern hit in normalised text, before overlap resolution. Every finder makes
    several per message: a plain class with read-only (`Final`) attributes, which the
    compiled build makes a native object built without a Python call (a named tuple's
    constructor is one; docs/performance.md, "fifth round")."""

    __slots__ = ("end", "entity_type", "rule", "score", "start", "validated")

    def __init__(
        self, start: int, end: int, entity_type: str, rule: str, validated: bool, score: float
    ) -> None:
        self.start: Final = start
        self.end: Final = end
        self.entity_type: Final = entity_type
        self.rule: Final = rule
        self.validated: Final = validated
        self.score: Final = score

    def _fields(self) -> tuple[int, int, str, str, bool, float]:
        return (self.start, self.end, self.entity_type, self.rule, self.validated, self.score)

    def with_end(self, end: int) -> Candidate:
        """The same candidate, ending at `end`."""
        return Candidate(self.start, end, self.entity_type, self.rule, self.validated, self.score)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Candidate) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        start, end, entity_type, rule, validated, score = self._fields()
        return (
            f"Candidate(start={start}, end={end}, entity_type={entity_type!r}, "
            f"rule={rule!r}, validated={validated}, score={score})"
        )


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
    max_run: int = 0  # most digits of that run, when a pattern bounds it (0: no bound)
    requires: tuple[str, ...] = ()
    requires_casefold: bool = False  # `requires` tested against the lower-cased text
    # Every match lies inside a run without white space of at least this many characters
    # (0: no such bound; else at least `LONG_TOKEN`, what `Scan.long_tokens` keeps).
    min_token: int = 0
    # Any other necessary condition, on the message's `Scan` (e.g. letters before digits).
    gate: Callable[[Scan], bool] | None = field(default=None, compare=False, repr=False)
    # Per pattern (patterns then weak_patterns, by position): substrings of which one must
    # occur for that pattern to be run at all; an empty tuple (or no entry) means no gate.
    pattern_requires: tuple[tuple[str, ...], ...] = ()
    # Decides the look-alikes (order numbers, amounts...) when `prune` is set; None = the
    # default locales' pruner. Set by `build_recognizers` from the configured locales.
    pruner: Pruner | None = field(default=None, compare=False, repr=False)
    # Patterns from config run on `coatcheck.saferegex` (RE2, or `regex` with a time limit):
    # a user's text must not stall the worker on a customer's pattern.
    safe: bool = False
    _compiled: tuple[tuple[Finder, bool], ...] = field(init=False, repr=False)
    _context_re: re.Pattern[str] | None = field(init=False, repr=False)
    _value_group: tuple[bool, ...] = field(init=False, repr=False)
    _gates: tuple[tuple[str, ...], ...] = field(init=False, repr=False)
    _context_lower: tuple[str, ...] = field(init=False, repr=False)
    _requires_re: re.Pattern[str] | None = field(init=False, repr=False)
    _requires_few: tuple[str, ...] = field(init=False, repr=False)
    _plans: tuple[tuple[Finder, bool, bool, tuple[str, ...]], ...] = field(init=False, repr=False)
    _plans_ascii: tuple[tuple[Finder, bool, bool, tuple[str, ...]], ...] = field(
        init=False, repr=False
    )
    _context_ascii: re.Pattern[str] | None = field(init=False, repr=False)
    _text_gate: Callable[[Scan], bool] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        strong = tuple((self._compile(p), False) for p in self.patterns)
        weak = tuple((self._compile(p), True) for p in self.weak_patterns)
        object.__setattr__(self, "_compiled", strong + weak)
        groups = tuple("value" in regex.groupindex for regex, _ in strong + weak)
        object.__setattr__(self, "_value_group", groups)
        gates = self.pattern_requires + ((),) * (len(groups) - len(self.pattern_requires))
        object.__setattr__(self, "_gates", gates[: len(groups)])
        # (regex, counts only after a context word, reports group "value", needles), the
        # context-required recognizer's patterns counting as weak ones
        plans = tuple(
            (regex, weak or self.context_required, group, gate)
            for (regex, weak), group, gate in zip(strong + weak, groups, self._gates, strict=True)
        )
        object.__setattr__(self, "_plans", plans)
        # the same for ASCII text, with each regex's ASCII twin where it has one
        twins = tuple((_twin(regex), *rest) for regex, *rest in plans)
        object.__setattr__(self, "_plans_ascii", twins)
        words = words_regex(self.context)
        context_re = re.compile(rf"(?<!\w)(?:{words})", re.IGNORECASE) if words else None
        object.__setattr__(self, "_context_re", context_re)
        object.__setattr__(self, "_context_ascii", _twin(context_re) if context_re else None)
        # The substring pre-test for ASCII text needs only the ASCII words: a word with a
        # non-ASCII letter cannot occur in ASCII text.
        lower = tuple(w.lower() for w in self.context if w.isascii())
        object.__setattr__(self, "_context_lower", lower)
        # One search for "any of these substrings" (the e-mail words are ~40 needles).
        needles = words_regex(self.requires, casefold=False)
        object.__setattr__(self, "_requires_re", re.compile(needles) if needles else None)
        # (one or two needles: `in` tests are cheaper than the regex)
        few = () if self.requires_casefold or len(self.requires) > 2 else self.requires
        object.__setattr__(self, "_requires_few", few)
        if 0 < self.min_token < LONG_TOKEN:
            raise ValueError("min_token below LONG_TOKEN: Scan.long_tokens would miss it")
        object.__setattr__(self, "_text_gate", self._build_text_gate())

    def _build_text_gate(self) -> Callable[[Scan], bool] | None:
        """`passes_text_gates` as one small function of only the checks this recognizer
        has (None: none): the detector asks it of several recognizers on every message,
        and the general method reads every gate attribute each time."""
        checks: list[Callable[[Scan], bool]] = []
        if self.min_token:
            size = self.min_token
            checks.append(lambda scan: scan.longest_token >= size)
        few = self._requires_few
        if len(few) == 1:
            needle = few[0]
            checks.append(lambda scan: needle in scan.text)
        elif few:
            checks.append(lambda scan: any(map(scan.text.__contains__, few)))
        elif self._requires_re is not None:
            search = self._requires_re.search
            if self.requires_casefold:
                checks.append(lambda scan: search(scan.folded or scan.text.lower()) is not None)
            else:
                checks.append(lambda scan: search(scan.text) is not None)
        if self.gate is not None:
            checks.append(self.gate)
        if not checks:
            return None
        if len(checks) == 1:
            return checks[0]
        every = tuple(checks)

        return lambda scan: all(check(scan) for check in every)

    def _compile(self, pattern: str) -> Finder:
        if self.safe:
            if self.flags:
                raise ValueError("safe patterns carry their flags inline")
            return safe_compile(pattern)
        return re.compile(pattern, self.flags)

    @property
    def needs_context(self) -> bool:
        """Some pattern counts only after a context word (weak or context-required)."""
        return self.context_required or bool(self.weak_patterns)

    def could_match(self, scan: Scan) -> bool:
        """False when the cheap gates rule this recognizer out for the message (no regex run).

        The digit count and the digit runs come from the message's `Scan`, shared by all
        recognizers.
        """
        if scan.digits < self.min_digits or (self.needs_digit and scan.digits == 0):
            return False
        if self.min_run and not any(self.fits_run(n) for _, _, n in scan.runs):
            return False
        return self.passes_text_gates(scan)

    def fits_run(self, digits: int) -> bool:
        """A digit run with this many digits can hold a match (`min_run`, `max_run`)."""
        return self.min_run <= digits and (not self.max_run or digits <= self.max_run)

    @property
    def has_text_gates(self) -> bool:
        """Gates beyond the digit counts (`passes_text_gates` has something to check)."""
        return bool(self.min_token) or self.gate is not None or self._requires_re is not None

    @property
    def text_gate(self) -> Callable[[Scan], bool] | None:
        """`passes_text_gates` specialised to this recognizer's gates (None: it has none)."""
        return self._text_gate

    def passes_text_gates(self, scan: Scan) -> bool:
        """The gates beyond the digit counts: `min_token`, `requires`, then `gate`."""
        if self.min_token and scan.longest_token < self.min_token:
            return False
        few = self._requires_few  # (one or two needles, tested without a generator)
        if few:
            text = scan.text
            if few[0] not in text and (len(few) == 1 or few[1] not in text):
                return False
        elif self._requires_re is not None:
            text = scan.text
            if self.requires_casefold:
                text = scan.folded or text.lower()
            if self._requires_re.search(text) is None:
                return False
        return self.gate is None or self.gate(scan)

    def find(
        self, text: str, expected: bool = False, context_anywhere: bool | None = None
    ) -> list[Candidate]:
        """Candidates in `text` that pass the validator, the context test and `invalidate`.

        A context word must precede a weak or context-required hit, so when no context word
        occurs anywhere in `text` those patterns are not run at all: one search instead of
        one scan per pattern (most messages carry no context word). `context_anywhere` is
        that answer when the caller has it already (the detector's one scan for all
        recognizers). `expected=True` means the bot is waiting for this type (a context
        rule): that is the context, so weak and context-required patterns count without a
        context word.
        """
        any_context: bool | None = True if expected else context_anywhere
        found = []
        for regex, weak, value_group, gate in self._plans_ascii if text.isascii() else self._plans:
            if gate and not any(map(text.__contains__, gate)):
                continue
            if weak:
                if any_context is None:
                    any_context = self._has_context_anywhere(text)
                if not any_context:
                    continue
            for match in regex.finditer(text):
                start, end = match.span("value") if value_group else match.span()
                candidate = self._check(text, start, end, weak, expected)
                if candidate is not None:
                    found.append(candidate)
        return found

    def _has_context_anywhere(self, text: str) -> bool:
        # Plain substring tests on the lower-cased text first (C speed, no regex scan);
        # the word-boundary regex only confirms when a word is there at all. ASCII only:
        # re.IGNORECASE also folds a few non-ASCII letters (dotless i, long s) onto ASCII.
        if self._context_re is None:
            return False
        if text.isascii():
            lowered = text.lower()
            if not any(map(lowered.__contains__, self._context_lower)):
                return False
            return self._context_ascii is not None and self._context_ascii.search(text) is not None
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
        if self.prune and (self.pruner or default_pruner()).invalid(text, start, end):
            return None
        score = min(1.0, self.score + (0.3 if validated else 0.0) + (0.1 if has_context else 0.0))
        return Candidate(start, end, self.entity_type, self.entity_type, validated, score)

    def localised(self, lexicon: Lexicon, pruner: Pruner) -> Recognizer:
        """This recognizer with the configured languages' context words and prunes (its own
        context words are kept when the locales have none for its type)."""
        return replace(
            self, context=lexicon.context_for(self.entity_type) or self.context, pruner=pruner
        )

    def _near_context(self, text: str, start: int) -> bool:
        context = self._context_ascii if text.isascii() else self._context_re
        if context is None:
            return False
        return context.search(text, max(0, start - _CONTEXT_WINDOW), start) is not None


@functools.cache
def default_pruner() -> Pruner:
    """The pruner of the default locales (for recognizers built without a lexicon)."""
    return Pruner(lexicon_for())


def invalidate(text: str, start: int, end: int) -> bool:
    """True when a candidate is an order/ticket id, amount, version, time or count
    (default locales; a detector uses its configured locales' `Pruner`)."""
    return default_pruner().invalid(text, start, end)


def _twin(regex: Finder) -> Finder:
    """`scan.ascii_twin_or_self` of a built-in pattern (configured patterns run on
    `saferegex`: kept as they are)."""
    return ascii_twin_or_self(regex) if isinstance(regex, re.Pattern) else regex


def _lead(first: str, not_after: str) -> str:
    """`first` (one character class) where it does not follow `not_after`.

    The same as `(?<!not_after)first`, written with the lookbehind after the character:
    the regex engine then skips straight to the characters `first` allows (most of a
    message is no digit), where a pattern that starts with a lookbehind is tried at every
    position.
    """
    return rf"{first}(?<!{not_after}{first})"


# Digits then no word character and no further digit group ("4111 1111 1111 1111" ends).
_END: Final = r"(?![\w]|[.,/_-]\d)"
_START: Final = r"(?<![\w.,/_-])"
_D: Final = _lead(r"\d", r"[\w.,/_-]")  # a digit that starts a number (what _START + \d says)
# After a first digit: the area is not 000 or 666 (`(?!000|666)` before it).
_NOT_000_666: Final = r"(?!(?<=0)00|(?<=6)66)"
_CARD_SEP: Final = r"[ ._/-]?"
_IPV4_LEAD: Final = _lead(r"\d", r"[\w.]")
_B58_LEAD: Final = _lead("[13]", r"\w")  # what \b before [13] says
_NIR_LEAD: Final = _lead("[12]", r"[\w.,/_-]")
_NIF_LEAD: Final = _lead(r"\d", r"[\w-]")
_DATE_LEAD: Final = _lead(r"\d", r"[\w.,/-]")


def _iban_gate(scan: Scan) -> bool:
    """An IBAN's check digits follow its two-letter country code."""
    return scan.letters_before_run(2)


def _ip_gate(scan: Scan) -> bool:
    """IPv4's four numbers lie in one run with three dots; IPv6 has two colons with at most
    four hex digits between them ("::", ":db8:")."""
    text = scan.text
    for start, end, n in scan.runs:
        if n >= 4 and text.count(".", start, end) >= 3:
            return True
    return text.count(":") >= 2 and _V6_COLONS.search(text) is not None


_V6_COLONS: Final = re.compile(r":[0-9A-Fa-f]{0,4}:")


def _crypto_gate(scan: Scan) -> bool:
    """A base58 address is a whole word of 26-35 characters starting with 1 or 3, a bech32
    one a whole word of 14-74 starting with bc1 (the patterns are bounded by non-word
    characters on both sides)."""
    text = scan.text  # (either starts a digit run with 1 or 3: a cheaper look first)
    if not any(text[start] in "13" for start, _, _ in scan.runs):
        return False
    return any(
        (word[0] in "13" and 26 <= len(word) <= 35)
        or (word[:3] in ("bc1", "BC1") and len(word) <= 74)
        for word in scan.long_words
    )


def _fiscal_code_gate(scan: Scan) -> bool:
    """A codice fiscale is a whole word of 16 characters (so a token of 16 at least)."""
    if scan.longest_token < 16:
        return False
    return any(len(word) == 16 for word in scan.long_words)


def _nif_gate(scan: Scan) -> bool:
    """A DNI's eight digits end their run, and a letter follows (after one blank or dash
    at most)."""
    text = scan.text
    for _, end, n in scan.runs:
        if n >= 8 and text[end - 8 : end].isdigit():
            after = text[end : end + 1]
            if after in (" ", "-"):
                after = text[end + 1 : end + 2]
            if after.isalpha():
                return True
    return False


def _nie_gate(scan: Scan) -> bool:
    """A NIE's seven digits are a run of their own, without separators."""
    return any(n == 7 and end - start == 7 for start, end, n in scan.runs)


def _nir_gate(scan: Scan) -> bool:
    """A NIR's fifteen digits are one run, unless a Corsican department (2A, 2B) parts it."""
    if scan.longest >= 15:
        return True
    folded = scan.folded or scan.text.lower()
    return "2a" in folded or "2b" in folded


# The patterns of every built-in type; context words come from the locale files.
_GLOBAL: Final[tuple[Recognizer, ...]] = (
    Recognizer(
        "EMAIL_ADDRESS",
        # Unicode local part and domain (IDN), an ASCII or Unicode top-level domain or its
        # punycode form. The lookbehind keeps it linear (no rescan of a local-part run).
        (
            r"(?<![\w.%+'-])[^\W_](?:[\w.%+'-]{0,63})@(?:[^\W_][\w-]{0,62}\.){1,8}"
            r"(?:[^\W\d_]{2,24}|xn--[a-z0-9-]{1,59})(?![\w-])",
        ),
        score=0.9,
        prune=False,
        needs_digit=False,
        requires=("@",),
    ),
    Recognizer(
        "CREDIT_CARD",
        (
            rf"{_D}\d{{3}}(?:{_CARD_SEP}\d{{4}}){{2}}{_CARD_SEP}\d{{1,7}}{_END}",
            rf"{_D}\d{{3}}{_CARD_SEP}\d{{6}}{_CARD_SEP}\d{{4,5}}{_END}",
        ),
        weak_patterns=(rf"{_D}\d{{3}}{_CARD_SEP}\d{{4}}{_CARD_SEP}\d{{4}}{_END}",),
        validator="luhn",
        context=("card", "credit", "visa", "mastercard", "amex", "cc"),
        min_digits=12,
        min_run=12,
    ),
    Recognizer(
        "IBAN_CODE",
        (r"(?<![\w-])[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]{4}){2,7}(?:[ -]?[A-Z0-9]{1,4})?(?![\w-])",),
        validator="iban",
        flags=re.IGNORECASE,
        score=0.7,
        min_digits=2,
        gate=_iban_gate,
    ),
    Recognizer(
        "IP_ADDRESS",
        (
            rf"{_IPV4_LEAD}\d{{0,2}}\.(?:\d{{1,3}}\.){{2}}\d{{1,3}}(?![\w]|\.\d)",
            r"(?<![\w:])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f]*:)[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
            r"(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])",
        ),
        validator="ip",
        min_digits=1,
        gate=_ip_gate,
        pattern_requires=((".",), (":",)),
    ),
    Recognizer(
        "CRYPTO",
        (
            rf"{_B58_LEAD}[1-9A-HJ-NP-Za-km-z]{{25,34}}\b",
            r"\b(?:bc1|BC1)[02-9ac-hj-np-zAC-HJ-NP-Z]{11,71}\b",
        ),
        validator="btc",
        prune=False,
        min_digits=1,
        gate=_crypto_gate,
        pattern_requires=((), ("bc1", "BC1")),
    ),
    Recognizer(
        "BANK_ACCOUNT",
        # A domestic account number right after its words ("account number 31926819",
        # "Kontonummer 1234567890", "conta 12345-6"); never on its own.
        (rf"{_D}\d{{5,11}}(?:-[0-9Xx])?{_END}",),
        context=("account number",),
        context_required=True,
        score=0.55,
        min_digits=6,
        min_run=6,
    ),
    Recognizer(
        "CARD_CVV",
        (rf"{_D}\d{{2,3}}{_END}",),
        context=("cvv", "cvc", "security code"),
        context_required=True,
        score=0.6,
        prune=False,  # its words are required; "code" would prune it
        min_digits=3,
        min_run=3,
    ),
    Recognizer(
        "CARD_EXPIRY",
        (rf"{_START}(?:0?[1-9]|1[0-2]) ?[/-] ?(?:20)?\d{{2}}{_END}",),
        context=("expiry", "exp", "valid thru"),
        context_required=True,
        score=0.6,
        prune=False,
        min_digits=3,
    ),
)

# Types that exist only where their region is configured (`detection.locales`).
REGION_TYPES: Final[dict[str, tuple[Recognizer, ...]]] = {
    "US": (
        Recognizer(
            "US_SSN",
            # Written with separators, a 9xx area is still taken: it is an ITIN (issued to
            # taxpayers without an SSN, the same shape and as personal) or a test value
            # standing in for an SSN; only the bare 9-digit form needs the issued ranges.
            # (`_D`: led by its first digit; "not 000 or 666" read from that digit on)
            (rf"{_D}{_NOT_000_666}\d{{2}}([- .])(?!00)\d{{2}}\1(?!0000)\d{{4}}{_END}",),
            weak_patterns=(
                rf"{_D}{_NOT_000_666}(?!(?<=9)\d\d)\d{{2}}(?!00)\d{{2}}(?!0000)\d{{4}}{_END}",
            ),
            context=("ssn", "social security"),
            score=0.5,
            min_digits=9,
            min_run=9,
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
    ),
    "GB": (
        Recognizer(
            "UK_NHS",
            (rf"{_D}\d{{2}}([ -]?)\d{{3}}\1\d{{4}}{_END}",),
            validator="nhs",
            context=("nhs",),
            context_required=True,
            min_digits=10,
            min_run=10,
        ),
        Recognizer(
            "UK_NINO",
            (r"(?<![\w-])[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![\w-])",),
            validator="nino",
            flags=re.IGNORECASE,
            score=0.7,
            prune=False,
            min_digits=6,
            min_run=6,
            max_run=6,  # the two letters and the suffix letter end the run on both sides
        ),
        Recognizer(
            "UK_SORT_CODE",
            (rf"{_D}\d([- ]?)\d{{2}}\1\d{{2}}{_END}",),
            context=("sort code",),
            context_required=True,
            score=0.6,
            prune=False,  # "20-00-00" has the shape of a date; its words decide
            min_digits=6,
        ),
    ),
    "FR": (
        Recognizer(
            "FR_NIR",
            (
                rf"{_NIR_LEAD} ?\d{{2}} ?\d{{2}} ?(?:\d{{2}}|2[AB]) ?\d{{3}}"
                rf" ?\d{{3}} ?\d{{2}}{_END}",
            ),
            validator="fr_nir",
            flags=re.IGNORECASE,
            score=0.7,
            min_digits=13,
            gate=_nir_gate,
        ),
    ),
    "ES": (
        Recognizer(
            "ES_NIF",
            (rf"{_NIF_LEAD}\d{{7}}[ -]?[A-Z](?![\w-])",),
            validator="es_dni",
            flags=re.IGNORECASE,
            score=0.7,
            prune=False,
            min_digits=8,
            min_run=8,
            gate=_nif_gate,
        ),
        Recognizer(
            "ES_NIE",
            (r"(?<![\w-])[XYZ][ -]?\d{7}[ -]?[A-Z](?![\w-])",),
            validator="es_nie",
            flags=re.IGNORECASE,
            score=0.7,
            prune=False,
            min_digits=7,
            min_run=7,
            max_run=7,
            gate=_nie_gate,
        ),
        Recognizer(
            "BANK_ACCOUNT",
            # The CCC (código cuenta cliente): bank, branch, two check digits, account, 20
            # digits as 4-4-2-10. Older statements and forms print it and people still type it
            # for "número de cuenta"; the check digits decide, so no context word is needed
            # (the look-alike words still prune: "seguimiento", "pedido"...).
            (rf"{_D}\d{{3}}([ -]?)\d{{4}}\1\d{{2}}\1\d{{10}}{_END}",),  # `_D`: the first digit
            validator="es_ccc",
            score=0.7,
            min_digits=20,
            min_run=20,
        ),
    ),
    "IT": (
        Recognizer(
            "IT_FISCAL_CODE",
            # Omocodia (a homonym's digits replaced by letters L-V) included.
            (
                r"(?<![\w-])[A-Z]{6}[\dLMNP-V]{2}[A-EHLMPR-T][\dLMNP-V]{2}[A-Z][\dLMNP-V]{3}[A-Z]"
                r"(?![\w-])",
            ),
            validator="it_fiscal_code",
            flags=re.IGNORECASE,
            score=0.7,
            prune=False,
            needs_digit=False,
            gate=_fiscal_code_gate,
        ),
    ),
    "NL": (
        Recognizer(
            "NL_BSN",
            # 9 digits pass the 11-test one time in eleven: only after its words.
            (
                rf"{_D}\d{{3}}\.?\d{{2}}\.?\d{{3}}{_END}",
                rf"{_D}\d{{2}} \d{{3}} \d{{3}}{_END}",
            ),
            validator="nl_bsn",
            context=("bsn",),
            context_required=True,
            score=0.6,
            min_digits=9,
        ),
    ),
    "BR": (
        Recognizer(
            "BR_CPF",
            (rf"{_D}\d{{2}}\.\d{{3}}\.\d{{3}}-\d{{2}}{_END}",),
            weak_patterns=(rf"{_D}\d{{8}}-?\d{{2}}{_END}",),
            validator="br_cpf",
            context=("cpf",),
            score=0.7,
            min_digits=11,
            min_run=11,
        ),
        Recognizer(
            "BR_CNPJ",
            (rf"{_D}\d\.\d{{3}}\.\d{{3}}/\d{{4}}-\d{{2}}{_END}",),
            weak_patterns=(rf"{_D}\d{{13}}{_END}",),
            validator="br_cnpj",
            context=("cnpj",),
            score=0.7,
            min_digits=14,
            min_run=14,
        ),
    ),
    "DE": (
        Recognizer(
            "DE_TAX_ID",
            # 11 digits with a check digit: only after its words ("Steuer-ID").
            (rf"{_D}\d ?\d{{3}} ?\d{{3}} ?\d{{3}}{_END}",),
            validator="de_idnr",
            context=("steuer-id",),
            context_required=True,
            score=0.6,
            min_digits=11,
        ),
    ),
}


def _date_of_birth(lexicon: Lexicon) -> Recognizer:
    """Dates after birth words, numeric (checked to be a calendar date, so an SSN is not
    one) or with a month name in any configured language."""
    months = words_regex(lexicon.months)
    ordinal = rf"(?:{words_regex(lexicon.ordinals)}|\.)?" if lexicon.ordinals else r"\.?"
    return Recognizer(
        "DATE_OF_BIRTH",
        (
            rf"{_DATE_LEAD}\d{{0,3}}[/.-]\d{{1,2}}[/.-]\d{{1,4}}(?![\w]|[/.-]\d)",
            rf"\b\d{{1,2}}{ordinal}\s+(?:(?:of|de)\s+)?(?:{months})\.?,?\s+(?:de\s+)?\d{{4}}\b",
            rf"\b(?:{months})\.?\s+\d{{1,2}}{ordinal},?\s+\d{{4}}\b",
        ),
        validator="date",
        context=("born", "birth", "dob"),
        context_required=True,
        flags=re.IGNORECASE,
        prune=False,
        min_digits=3,
    )


def _spelled_email(lexicon: Lexicon) -> Recognizer:
    """ "jane [at] example [dot] com", "jane(at)example.com", "jane at example dot com",
    "juan arroba ejemplo punto es": the at/dot words of every configured language. A bare
    " at " needs a spelled dot too ("look at example.com" is no address)."""
    at = words_regex(lexicon.email_at)
    dot = words_regex(lexicon.email_dot)
    label = r"[^\W_][\w-]{0,62}"
    at_sep = rf"[ \t]*[\[({{<][ \t]*(?:{at}|@)[ \t]*[\])}}>][ \t]*|[ \t]+(?:{at})[ \t]+"
    dot_sep = rf"[ \t]*[\[({{<][ \t]*(?:{dot}|\.)[ \t]*[\])}}>][ \t]*|[ \t]+(?:{dot})[ \t]+|\."
    # Every match holds a whole at-word (or "@"), a domain label and at least one dot: most
    # texts have no at-word, most with one ("look at the map") no such tail, and the tail
    # is far cheaper to look for than the whole pattern (which tries a local part at every
    # word).
    # (it starts with a blank or a bracket: only those positions are tried)
    tail = leading(r"[ \t\[({<]", rf"(?i:{at_sep}){label}(?:(?i:{dot_sep}){label}){{1,6}}(?![\w-])")
    return Recognizer(
        "EMAIL_ADDRESS",
        (
            rf"(?<![\w.%+'-])[^\W_][\w.%+'-]{{0,63}}(?i:{at_sep})"
            rf"{label}(?:(?i:{dot_sep}){label}){{1,6}}(?![\w-])",
        ),
        validator="spelled_email",
        score=0.6,
        prune=False,
        needs_digit=False,
        # an at-word (from the word index) or "@", then the tail
        gate=lambda scan: _has_tail(scan, tail),
    )


def _has_tail(scan: Scan, tail: re.Pattern[str]) -> bool:
    """A spelled address's tail, looked for from its first possible start: before the first
    whole at-word (the word index) or "@", the blanks and bracket that may lead it."""
    text = scan.text
    start = scan.first_word(EMAIL_AT_WORDS)
    at_sign = text.find("@")
    if start < 0 or 0 <= at_sign < start:
        start = at_sign
    if start < 0:
        return False
    while start and text[start - 1] in " \t[({<":
        start -= 1
    return tail.search(text, start) is not None


def build_recognizers(lexicon: Lexicon) -> tuple[Recognizer, ...]:
    """The built-in recognizers for these locales: the global ones, the national ones of
    each configured region, each with the locales' context words and prunes."""
    from coatcheck.middleware.detect.credentials import SECRET_RECOGNIZERS

    pruner = Pruner(lexicon)
    regional = tuple(r for region in lexicon.regions for r in REGION_TYPES.get(region, ()))
    chosen = (*_GLOBAL, *regional, _date_of_birth(lexicon), _spelled_email(lexicon))
    return tuple(r.localised(lexicon, pruner) for r in chosen) + SECRET_RECOGNIZERS


BUILTIN_RECOGNIZERS: Final[tuple[Recognizer, ...]] = build_recognizers(lexicon_for())
