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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import phonenumbers

from coatcheck.middleware.detect.locales import Lexicon, words_regex
from coatcheck.middleware.detect.prune import Pruner
from coatcheck.middleware.detect.recognizers import Candidate

__all__ = ["PHONE_MIN_DIGITS", "PhoneFinder"]

_CANDIDATE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ ./-]?)?(?:\(0\)\s?)?(?:\(\d{1,5}\)[ ./-]?)?\d{1,15}"
    r"(?:(?:[ ./-]|\s?\(0\)\s?)\(?\d{1,12}\)?){0,5}(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w])",
    re.IGNORECASE,
)
_WINDOW = 40
# The North American plan's written shapes: NXX-NXX-XXXX with one separator (dash or dot),
# (NXX) NXX-XXXX, either after "+1" or "1-", and +1 NXX NXX XXXX with any one separator
# or none (area code and exchange never start with 0 or 1).
_NANP_SHAPE = re.compile(
    r"(?:\+1[ .-]?|1-)?(?:[2-9]\d\d([.-])[2-9]\d\d\1|\([2-9]\d\d\) ?[2-9]\d\d[.-])\d{4}"
    r"|\+1([ .-]?)[2-9]\d\d\2[2-9]\d\d\2\d{4}"
)
_DIGIT = re.compile(r"\d")
_LETTER = re.compile(r"[^\W\d_]")
PHONE_MIN_DIGITS, _MAX_DIGITS = 7, 17


@dataclass(frozen=True, slots=True)
class _Plan:
    """What `phonenumbers` reads of a region's plan to parse a national number."""

    country_code: str
    idd: re.Pattern[str]  # the international prefix ("00", "011"), at the start of the digits
    prefix: re.Pattern[str] | None  # national (trunk, carrier) prefix for parsing
    transform: str | None  # what replaces the prefix, when the plan says so
    lengths: frozenset[int]  # national significant number lengths (general description)
    national: re.Pattern[str]  # the general national-number pattern
    types: tuple[tuple[frozenset[int], re.Pattern[str]], ...]  # fixed line, mobile, toll free...
    trunk: str  # the national prefix the national format writes ("0"), or ""
    # The national formats in the plan's order: leading digits, pattern, and whether the
    # formatted number surely starts with the trunk prefix ("0\\1" before "\\1 \\2").
    formats: tuple[tuple[re.Pattern[str] | None, re.Pattern[str], bool], ...]
    # Country code, national prefix twice, a general number, as one pattern: every reading
    # below fits it, so a number that does not is ruled out in one call (None: the plan
    # transforms its prefix, or anchors it, and gets no such shortcut).
    quick: re.Pattern[str] | None

    def strip(self, number: str) -> str:
        """`number` without its national prefix, as `phonenumbers` may take it off."""
        match = self.prefix.match(number) if self.prefix is not None else None
        if match is None:
            return number
        if self.transform and match.groups() and match.groups()[-1] is not None:
            return match.expand(self.transform) + number[match.end() :]
        return number[match.end() :]

    def could_be_valid(self, digits: str, trunk_typed: bool) -> bool:
        """False when no national number `phonenumbers.parse` can make of `digits` (no
        international prefix) matches the plan's general description and a number type,
        or, when the trunk prefix was not typed (`trunk_typed`), when each one that does
        is written with it in the national format (`_has_trunk_prefix` refuses those)."""
        if self.quick is not None and self.quick.fullmatch(digits) is None:
            return False
        bases = [digits]
        if digits.startswith(self.country_code):
            bases.append(digits[len(self.country_code) :])
        for base in bases:
            once = self.strip(base)
            for number in (base, once, self.strip(once)):
                if self._matches(number) and (trunk_typed or not self._shows_trunk(number)):
                    return True
        return False

    def _shows_trunk(self, number: str) -> bool:
        """The national format of `number` surely starts with the trunk prefix: the first
        format whose leading digits and pattern fit (what `format_number` picks) writes it;
        with no format the digits are shown as they are."""
        for leading, pattern, trunk_first in self.formats:
            if (leading is None or leading.match(number)) and pattern.fullmatch(number):
                return trunk_first
        return bool(self.trunk) and number.startswith(self.trunk)

    def _matches(self, number: str) -> bool:
        """The general description and one number type (what `is_valid_number` asks)."""
        size = len(number)
        if size not in self.lengths or self.national.fullmatch(number) is None:
            return False
        return any(
            (not lengths or size in lengths) and pattern.fullmatch(number) is not None
            for lengths, pattern in self.types
        )


@functools.cache
def _plan(region: str) -> _Plan | None:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.general_desc is None or not metadata.international_prefix:
        return None
    desc = metadata.general_desc
    if not desc.national_number_pattern or not desc.possible_length:
        return None
    prefix = metadata.national_prefix_for_parsing
    descs = (
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
        metadata.fixed_line,
        metadata.mobile,
    )
    types = tuple(
        (frozenset(d.possible_length or ()), re.compile(d.national_number_pattern))
        for d in descs
        if d is not None and d.national_number_pattern
    )
    trunk = metadata.national_prefix or ""
    rule = metadata.national_prefix_transform_rule
    quick = None
    if not rule and "$" not in (prefix or "") and "^" not in (prefix or ""):
        parsing = rf"(?:{prefix})?(?:{prefix})?" if prefix else ""
        quick = re.compile(
            rf"(?:{metadata.country_code})?{parsing}(?:{desc.national_number_pattern})"
        )
    formats = tuple(
        (
            re.compile(f.leading_digits_pattern[-1]) if f.leading_digits_pattern else None,
            re.compile(f.pattern or "(?!)"),  # (a format always has one)
            bool(trunk)
            and (f.format or "").startswith("\\1")
            and (f.national_prefix_formatting_rule or "").lstrip("(").startswith(trunk),
        )
        for f in metadata.number_format
    )
    return _Plan(
        str(metadata.country_code),
        re.compile(metadata.international_prefix),
        re.compile(prefix) if prefix else None,
        metadata.national_prefix_transform_rule or None,
        frozenset(desc.possible_length),
        re.compile(desc.national_number_pattern),
        types,
        trunk,
        formats,
        quick,
    )


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
    plan = _plan(region)
    if plan is None or _LETTER.search(value) is not None or plan.idd.match(digits):
        return True
    return plan.could_be_valid(digits, value.lstrip("( ").startswith(plan.trunk))


def _valid_somewhere(value: str, digits: str, regions: tuple[str, ...]) -> bool:
    """`_valid` in one of `regions` (tried in order), the per-value work done once."""
    if value.startswith("+"):
        return _valid(value, regions[0], digits)  # the number names its own plan
    gated = _LETTER.search(value) is None
    lead = value.lstrip("( ")
    for region in regions:
        plan = _plan(region)
        if (
            gated
            and plan is not None
            and plan.idd.match(digits) is None
            and not plan.could_be_valid(digits, lead.startswith(plan.trunk))
        ):
            continue
        if _parsed_valid(value, region):
            return True
    return False


def _valid(value: str, region: str, digits: str) -> bool:
    """Valid in the numbering plan: any region with `+`, else `region`'s plan (which also
    reads its international prefix, "0049 ..."). `digits` are the digits of `value`."""
    if not value.startswith("+") and not _plausible(value, region, digits):
        return False
    return _parsed_valid(value, region)


def _parsed_valid(value: str, region: str) -> bool:
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
        words = words_regex(lexicon.context_for("PHONE_NUMBER"))
        self._context = re.compile(rf"(?<!\w)(?:{words})", re.IGNORECASE)
        # Words of the other digit-bearing types ("account number", "cpf", "iban"): when
        # one of them is the last thing said before the number, the number is not a phone.
        rival = words_regex(tuple(rivals))
        self._rival = re.compile(rf"(?<!\w)(?:{rival})", re.IGNORECASE) if rival else None
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

    def find(
        self, text: str, region: str | None = None, extra: str | None = None
    ) -> Iterator[Candidate]:
        """Phone candidates in normalised `text`; `region` (the conversation's) is tried
        first, then `extra` (`detection.default_region`), then the locales' regions."""
        first = tuple(r for r in (region, extra) if r is not None)
        regions = tuple(dict.fromkeys((*first, *self.regions)))
        for match in _CANDIDATE.finditer(text):
            start, end = match.span()
            if end - start < PHONE_MIN_DIGITS:
                continue  # most hits are short numbers ("2 items", "at 5"): too few characters
            value = match.group()
            digits = "".join(_DIGIT.findall(value))
            if not PHONE_MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
                continue
            if self._pruner.invalid(text, start, end):
                continue
            phone_start, phone_end = self._last(self._context, text, start)
            rival_start, rival_end = self._last(self._rival, text, start)
            # The other type's word is the last said, or runs into the phone word
            # ("passport number", "account number"): the number is that type's. A rival
            # word that is the start of a longer phone word is part of it ("conta" in
            # "contact", "contato").
            inside = phone_start <= rival_start and rival_end < phone_end
            if rival_end >= max(0, phone_start - 1) and not inside and not value.startswith("+"):
                continue
            has_context = phone_end >= 0 or (
                self._label is not None and self._label.match(text, end) is not None
            )
            if _valid_somewhere(value, digits, regions):
                score = 0.8 + 0.1 * has_context
                yield Candidate(start, end, "PHONE_NUMBER", "PHONE_NUMBER", True, score)
            elif self._nanp and _NANP_SHAPE.fullmatch(value) is not None:
                yield Candidate(
                    start, end, "PHONE_NUMBER", "PHONE_NUMBER", False, 0.6 + 0.1 * has_context
                )
            elif has_context:  # a foreign national format: the words say it is a phone
                yield Candidate(start, end, "PHONE_NUMBER", "PHONE_NUMBER", False, 0.5)

    @staticmethod
    def _last(regex: re.Pattern[str] | None, text: str, start: int) -> tuple[int, int]:
        """Span of the last match of `regex` in the window before `start` ((-1, -1): none)."""
        last = (-1, -1)
        if regex is not None:
            for match in regex.finditer(text, max(0, start - _WINDOW), start):
                last = match.span()
        return last
