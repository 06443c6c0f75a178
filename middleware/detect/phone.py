"""Phone numbers: a cheap candidate regex, then `phonenumbers` decides, for every region.

A candidate is a validated PHONE_NUMBER when it is valid in a numbering plan: any plan with
`+` or an international prefix, else the plan of any configured region ("0171 94028383" is
German, "06 12 34 56 78" French, "(11) 91234-5678" Brazilian), the conversation's region
first. Where a North American region is configured, a number written in the plan's own
shapes ("415-555-0199", "(415) 555-0199", "+1 415 555 0199") is a phone number even when
the plan data rejects it (an unassigned area code, the fictional 555-01xx lines): nothing
else is written that way, and a number that is not dialable is still personal-looking
data. Any other 7-17 digit candidate counts only right after phone words in a configured
language ("Handynummer", "portable", "celular"), as a weaker, unvalidated match. A
candidate whose nearest preceding words belong to another type ("account number",
"CPF", "Kontonummer") is left to that type. Scanning with our regex first and validating
only candidates is several times faster than PhoneNumberMatcher on chat text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Final

import phonenumbers

from coatcheck.middleware.detect.locales import Lexicon, words_regex
from coatcheck.middleware.detect.numbering import AnyPlan, decide, plan_for
from coatcheck.middleware.detect.prune import Pruner
from coatcheck.middleware.detect.recognizers import Candidate
from coatcheck.middleware.detect.scan import Scan, ascii_twin, leading, spans

__all__ = [
    "ID_NUMBER_TYPE",
    "PHONE_MIN_DIGITS",
    "PHONE_RIVALS",
    "PHONE_TYPE",
    "PHONE_WORDS",
    "PhoneFinder",
]

PHONE_TYPE: Final = "PHONE_NUMBER"
# A number the words call some other identifier ("passport number", "CCC", "driver's
# licence"): that type's recognizer should claim it; where none does, it is still vaulted,
# under this type, rather than passed to the bot because it was not a phone.
ID_NUMBER_TYPE: Final = "ID_NUMBER"

# (a candidate starts with "+", "(" or a digit: only those positions are tried; a digit
# group never gives back digits, possessive: what may follow it never starts with one)
_CANDIDATE: Final = leading(
    r"[+(\d]",
    r"(?<![\w+])(?:\+\d{1,3}[ ./-]?)?(?:\(0\)\s?)?(?:\(\d{1,5}\)[ ./-]?)?\d{1,15}+"
    r"(?:(?:[ ./-]|\s?\(0\)\s?)\(?\d{1,12}+\)?){0,5}(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w])",
    re.IGNORECASE,
)
_CANDIDATE_ASCII: Final = ascii_twin(_CANDIDATE)
_WINDOW: Final = 40
# The North American plan's written shapes: NXX-NXX-XXXX with one separator (dash or dot),
# (NXX) NXX-XXXX, either after "+1" or "1-", and +1 NXX NXX XXXX with any one separator
# or none (area code and exchange never start with 0 or 1).
_NANP_SHAPE: Final = re.compile(
    r"(?:\+1[ .-]?|1-)?(?:[2-9]\d\d([.-])[2-9]\d\d\1|\([2-9]\d\d\) ?[2-9]\d\d[.-])\d{4}"
    r"|\+1([ .-]?)[2-9]\d\d\2[2-9]\d\d\2\d{4}"
)
_DIGIT: Final = re.compile(r"\d")
_EXTENSION: Final = re.compile(r"[ \t]*(?:[xX]|[eE][xX][tT]\.?)[ \t]*\d{1,7}\Z")
_LETTER: Final = re.compile(r"[^\W\d_]")
PHONE_MIN_DIGITS: Final = 7
_MAX_DIGITS: Final = 17
# The finder's lists in the detector's word index.
PHONE_WORDS: Final = "phone words"
PHONE_RIVALS: Final = "phone rivals"


def _plausible(value: str, region: str, digits: str) -> bool:
    """False when `value` (no `+`) cannot be a valid number of `region`: no `phonenumbers.parse`.

    Without `+` or the region's international prefix, `parse` reads the digits as a
    national number: it may take off the region's own country code and the national
    (trunk, carrier) prefix, at most twice, and a valid result matches the plan's general
    description and one number type (a length and a pattern of each). `could_be_valid`
    tries each of those few readings; when none matches, the number is invalid for the
    region. `parse` is left to decide everything else (an international prefix, letters
    such as an extension).
    `digits` are the ASCII digits of `value`. Eight plans at ~10-50 us per parse made
    validation the costliest step of detection; most candidates now skip it.
    """
    plan = plan_for(region)
    if plan is None or _LETTER.search(value) is not None or plan.idd.match(digits):
        return True
    return plan.could_be_valid(digits, value.lstrip("( ").startswith(plan.trunk))


def _valid_somewhere(
    value: str, digits: str, regions: tuple[str, ...], any_plan: AnyPlan | None = None
) -> bool:
    """`_valid` in one of `regions` (tried in order), the per-value work done once
    (`any_plan`: the quick patterns of most of `regions`, tried at once)."""
    value, digits = _without_extension(value, digits)
    if value.startswith("+"):
        return _valid(value, regions[0], digits)  # the number names its own plan
    gated = _LETTER.search(value) is None
    lead = value.lstrip("( ")
    ruled_out = any_plan.rules_out(digits) if gated and any_plan is not None else frozenset()
    for region in regions:
        plan = plan_for(region)
        if (
            gated
            and plan is not None
            and plan.idd.match(digits) is None
            and (
                region in ruled_out or not plan.could_be_valid(digits, lead.startswith(plan.trunk))
            )
        ):
            continue
        if _parsed_valid(value, region, digits):
            return True
    return False


def _without_extension(value: str, digits: str) -> tuple[str, str]:
    """`value` and its digits without an extension typed after the number ("x123",
    "ext. 55"): `parse` strips it and decides on the number before it, which the plan
    checks can then decide too (a value with letters goes to `parse` in every region)."""
    if "x" not in value and "X" not in value:  # (both forms have one: most values)
        return value, digits
    extension = _EXTENSION.search(value)
    if extension is None or extension.start() == 0:
        return value, digits
    tail = len(_DIGIT.findall(extension.group()))
    return value[: extension.start()], digits[: len(digits) - tail]


def _valid(value: str, region: str, digits: str) -> bool:
    """Valid in the numbering plan: any region with `+`, else `region`'s plan (which also
    reads its international prefix, "0049 ..."). `digits` are the digits of `value`."""
    if not value.startswith("+") and not _plausible(value, region, digits):
        return False
    return _parsed_valid(value, region, digits)


def _parsed_valid(value: str, region: str, digits: str) -> bool:
    """`parse` and validate (with `+`: in the number's own plan; else in `region`'s, and
    the typed-trunk rule); the plan data decides the common cases (`numbering.decide`)."""
    decided = decide(value, digits, region)
    if decided is not None:
        return decided
    return _parse_and_validate(value, region)


def _parse_and_validate(value: str, region: str) -> bool:
    """What `_parsed_valid` decides, by `phonenumbers.parse` (the reference)."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return False
    if value.startswith("+"):
        return bool(phonenumbers.is_valid_number(number))
    if number.country_code != phonenumbers.country_code_for_region(region):
        return bool(phonenumbers.is_valid_number(number))  # dialled with an IDD prefix
    if not phonenumbers.is_valid_number_for_region(number, region):
        return False
    return _has_trunk_prefix(value, number, region)


def _has_trunk_prefix(value: str, number: phonenumbers.PhoneNumber, region: str) -> bool:
    """Where the plan writes national numbers with a trunk prefix ("0171 ..." in Germany,
    "06 ..." in France), people type it: "912803456" is not a French number, "0912803456"
    is. Regions whose national format has none (US, ES, IT, BR) need none."""
    prefix = _national_prefix(region)
    if not prefix:
        return True
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    if not national.lstrip("(").startswith(prefix):
        return True
    return value.lstrip("( ").startswith(prefix)


@functools.cache
def _national_prefix(region: str) -> str:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return (metadata.national_prefix or "") if metadata is not None else ""


class PhoneFinder:
    """Phone candidates for the configured regions and phone words."""

    def __init__(self, lexicon: Lexicon, pruner: Pruner, rivals: Sequence[str]) -> None:
        self.regions = lexicon.regions
        words = words_regex(lexicon.context_for(PHONE_TYPE))
        self._context = re.compile(rf"(?<!\w)(?:{words})", re.IGNORECASE)
        # Words of the other digit-bearing types ("account number", "cpf", "iban"): when
        # one of them is the last thing said before the number, the number is not a phone.
        rival = words_regex(tuple(rivals))
        self._rival = re.compile(rf"(?<!\w)(?:{rival})", re.IGNORECASE) if rival else None
        # Both lists for the detector's word index (the same matches, from its one scan).
        self.word_lists: dict[str, tuple[str, ...]] = {
            PHONE_WORDS: lexicon.context_for(PHONE_TYPE),
            PHONE_RIVALS: tuple(rivals),
        }
        # A line label right after the number ("... 3306 office", "0171 1234567 (mobil)")
        # says it is a phone as much as a phone word before it does.
        label = words_regex(lexicon.context_for("PHONE_LABEL"))
        self._label = (
            re.compile(rf"[ \t]*[-\u2013(,/]?[ \t]*(?:{label})(?!\w)", re.IGNORECASE)
            if label
            else None
        )
        self._pruner = pruner
        self._nanp = any(phonenumbers.country_code_for_region(r) == 1 for r in self.regions)
        self._any_plan = AnyPlan(self.regions)

    def find(
        self,
        text: str,
        region: str | None = None,
        extra: str | None = None,
        scan: Scan | None = None,
    ) -> list[Candidate]:
        """Phone candidates in normalised `text`; `region` (the conversation's) is tried
        first, then `extra` (`detection.default_region`), then the locales' regions.
        `scan`: the message's, when its word index holds `word_lists`."""
        first = tuple(r for r in (region, extra) if r is not None)
        regions = tuple(dict.fromkeys((*first, *self.regions)))
        found: list[Candidate] = []  # (a list, not a generator: called on most messages)
        for start, end in spans(_CANDIDATE_ASCII if text.isascii() else _CANDIDATE, text):
            if end - start < PHONE_MIN_DIGITS:
                continue  # most hits are short numbers ("2 items", "at 5"): too few characters
            value = text[start:end]
            digits = "".join(_DIGIT.findall(value))
            if not PHONE_MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
                continue
            if self._pruner.invalid(text, start, end):
                continue
            phone_start, phone_end = self._last(self._context, PHONE_WORDS, text, start, scan)
            rival_start, rival_end = self._last(self._rival, PHONE_RIVALS, text, start, scan)
            # The other type's word is the last said, or runs into the phone word
            # ("passport number", "account number"): the number is that type's. A rival
            # word that is the start of a longer phone word is part of it ("conta" in
            # "contact", "contato").
            inside = phone_start <= rival_start and rival_end < phone_end
            if rival_end >= max(0, phone_start - 1) and not inside and not value.startswith("+"):
                # Ranked below every pattern ("fallback"): the rival type wins where it matches.
                found.append(Candidate(start, end, ID_NUMBER_TYPE, "fallback", False, 0.3))
                continue
            has_context = phone_end >= 0 or (
                self._label is not None and self._label.match(text, end) is not None
            )
            if _valid_somewhere(value, digits, regions, self._any_plan):
                score = 0.8 + 0.1 * has_context
                found.append(Candidate(start, end, PHONE_TYPE, PHONE_TYPE, True, score))
            elif self._nanp and _NANP_SHAPE.fullmatch(value) is not None:
                score = 0.6 + 0.1 * has_context
                found.append(Candidate(start, end, PHONE_TYPE, PHONE_TYPE, False, score))
            elif has_context:  # a foreign national format: the words say it is a phone
                found.append(Candidate(start, end, PHONE_TYPE, PHONE_TYPE, False, 0.5))
        return found

    @staticmethod
    def _last(
        regex: re.Pattern[str] | None, key: str, text: str, start: int, scan: Scan | None
    ) -> tuple[int, int]:
        """Span of the last match of `regex` in the window before `start` ((-1, -1): none),
        read from the scan's word index when it can tell."""
        if regex is None:
            return (-1, -1)
        lo = max(0, start - _WINDOW)
        found = scan.last_word(key, lo, start) if scan is not None else None
        if found is not None:
            return found
        last = (-1, -1)
        for match in regex.finditer(text, lo, start):
            last = match.span()
        return last
