"""Numbering plans as `phonenumbers` reads them, without parsing every candidate.

`phonenumbers.parse` + `is_valid_number` cost 20-50 us per call (pure Python, a dozen
regexes, objects), and the phone finder asks about every number-like run in every
configured region. Two things from the plan data make most of those calls unnecessary:

- `Plan.could_be_valid` rules a number out: `parse` reads a national number by taking off
  the country code and the national prefix at most twice, so a number none of whose few
  readings matches the general description and a number type cannot be valid;
- `decide` gives the answer itself in the common cases, by the same steps `parse` takes
  (digits, international prefix, country code, national prefix with its length test, the
  number type, and the national format for the typed-trunk rule), and says None (ask
  `parse`) for anything else: letters, a number dialled abroad to the region's own country
  code, a national number that starts with its own country code, a prefix the plan
  transforms, an unknown plan.

Both are property-tested against `parse` on plans of every kind (tests/detect/test_gates.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import phonenumbers

__all__ = ["AnyPlan", "Plan", "decide", "plan_for"]

# What a number may hold for `decide`: digits and the separators `parse` drops without
# looking (anything else, letters above all, is left to `parse`).
_PLAIN: Final = re.compile(r"[0-9 ./()-]+")
_PLAIN_INTERNATIONAL: Final = re.compile(r"\+[0-9 ./()-]+")
_MAX_NSN: Final = 17  # `parse` refuses longer national numbers
# `phonenumbers`' own pattern for the first group in a format ("\1").
_FIRST_GROUP: Final = re.compile(r"(\\\d)")
# A format's rule: leading digits, pattern, and what `re.sub` writes in the national format.
_Format = tuple[re.Pattern[str] | None, re.Pattern[str], str]


@dataclass(frozen=True, slots=True)
class Plan:
    """What `phonenumbers` reads of a region's plan to parse and validate a number."""

    country_code: str
    idd: re.Pattern[str]  # the international prefix ("00", "011"), at the start of the digits
    prefix: re.Pattern[str] | None  # national (trunk, carrier) prefix for parsing
    transform: str | None  # what replaces the prefix, when the plan says so
    lengths: frozenset[int]  # national significant number lengths (general description)
    sorted_lengths: tuple[int, ...]  # the same, in order (`_test_number_length`)
    local_lengths: frozenset[int]  # lengths dialable only locally
    national: re.Pattern[str]  # the general national-number pattern
    types: tuple[tuple[frozenset[int], re.Pattern[str]], ...]  # fixed line, mobile, toll free...
    trunk: str  # the national prefix the national format writes ("0"), or ""
    # The national formats in the plan's order: leading digits, pattern, and whether the
    # formatted number surely starts with the trunk prefix ("0\\1" before "\\1 \\2").
    formats: tuple[tuple[re.Pattern[str] | None, re.Pattern[str], bool], ...]
    # The same formats with the rule `format_number` applies (national prefix rule in).
    rules: tuple[_Format, ...]
    leading_digits: re.Pattern[str] | None  # which numbers of a shared country code it has
    # Country code, national prefix twice, a general number, as one pattern: every reading
    # below fits it, so a number that does not is ruled out in one call (None: the plan
    # transforms its prefix, or anchors it, and gets no such shortcut).
    quick: re.Pattern[str] | None
    # Per national number length of the plan: the patterns of the number types that admit
    # it, as one alternation (`matches`: one call instead of one per type; None: no type).
    typed: dict[int, re.Pattern[str] | None]

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
            for number in dict.fromkeys((base, once, self.strip(once))):
                if self.matches(number) and (trunk_typed or not self._shows_trunk(number)):
                    return True
        return False

    def _shows_trunk(self, number: str) -> bool:
        """The national format of `number` surely starts with the trunk prefix: the first
        format whose leading digits and pattern fit (what `format_number` picks) writes it;
        with no format the digits are shown as they are."""
        for lead, pattern, trunk_first in self.formats:
            if (lead is None or lead.match(number)) and pattern.fullmatch(number):
                return trunk_first
        return bool(self.trunk) and number.startswith(self.trunk)

    def matches(self, number: str) -> bool:
        """The general description and one number type: what `is_valid_number_for_region`
        asks of a national significant number (`_number_type_helper` is not UNKNOWN)."""
        size = len(number)
        if size not in self.lengths or self.national.fullmatch(number) is None:
            return False
        typed = self.typed[size]  # (an alternation fullmatches when one of its branches does)
        return typed is not None and typed.fullmatch(number) is not None

    def national_number(self, digits: str) -> str | None:
        """The national significant number `parse` makes of these digits once any country
        code is off: the national prefix is taken off when the rest still fits the general
        pattern (or the whole did not) and has a possible length. None: the plan
        transforms its prefix (left to `parse`)."""
        match = self.prefix.match(digits) if self.prefix is not None else None
        if match is None:
            return digits
        if self.transform:
            return None
        rest = digits[match.end() :]
        if self.national.fullmatch(digits) is not None and self.national.fullmatch(rest) is None:
            return digits
        return rest if self._possible_length(len(rest)) else digits

    def _possible_length(self, size: int) -> bool:
        """`_test_number_length` says IS_POSSIBLE or TOO_LONG (what parse keeps)."""
        if size in self.local_lengths:
            return False
        shortest = self.sorted_lengths[0]
        if size == shortest:
            return True
        if size < shortest:
            return False
        return size > self.sorted_lengths[-1] or size in self.lengths

    def national_format(self, number: str) -> str:
        """`format_number(..., NATIONAL)` of a national significant number of this plan's
        main region."""
        for lead, pattern, rule in self.rules:
            if (lead is None or lead.match(number)) and pattern.fullmatch(number):
                return pattern.sub(rule, number)
        return number


@functools.cache
def plan_for(region: str) -> Plan | None:
    """The plan of a region (None: no metadata, or none `Plan` can use)."""
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
    leads = [
        re.compile(f.leading_digits_pattern[-1]) if f.leading_digits_pattern else None
        for f in metadata.number_format
    ]
    patterns = [re.compile(f.pattern or "(?!)") for f in metadata.number_format]
    formats = tuple(
        (
            lead,
            pattern,
            bool(trunk)
            and (f.format or "").startswith("\\1")
            and (f.national_prefix_formatting_rule or "").lstrip("(").startswith(trunk),
        )
        for lead, pattern, f in zip(leads, patterns, metadata.number_format, strict=True)
    )
    rules = tuple(
        (
            lead,
            pattern,
            _FIRST_GROUP.sub(f.national_prefix_formatting_rule, f.format or "", count=1)
            if f.national_prefix_formatting_rule
            else f.format or "",
        )
        for lead, pattern, f in zip(leads, patterns, metadata.number_format, strict=True)
    )
    typed = {
        size: re.compile("|".join(f"(?:{pattern.pattern})" for pattern in admitting))
        if (admitting := [pattern for lengths, pattern in types if not lengths or size in lengths])
        else None
        for size in desc.possible_length
    }
    return Plan(
        str(metadata.country_code),
        re.compile(metadata.international_prefix),
        re.compile(prefix) if prefix else None,
        rule or None,
        frozenset(desc.possible_length),
        tuple(sorted(desc.possible_length)),
        frozenset(desc.possible_length_local_only or ()),
        re.compile(desc.national_number_pattern),
        types,
        trunk,
        formats,
        rules,
        re.compile(metadata.leading_digits) if metadata.leading_digits else None,
        quick,
        typed,
    )


class AnyPlan:
    """The `Plan.quick` patterns of several regions as one alternation: a number none of
    them fits (most candidates) is ruled out for all those regions in one call."""

    def __init__(self, regions: Sequence[str]) -> None:
        quick = {r: plan.quick for r in regions if (plan := plan_for(r)) and plan.quick}
        self.regions = frozenset(quick)
        alternation = "|".join(f"(?:{pattern.pattern})" for pattern in quick.values())
        self._regex = re.compile(alternation) if alternation else None

    def rules_out(self, digits: str) -> frozenset[str]:
        """The regions whose plan surely has no national reading of `digits`."""
        if self._regex is None or self._regex.fullmatch(digits) is not None:
            return frozenset()
        return self.regions


def decide(value: str, digits: str, region: str) -> bool | None:
    """Whether `phonenumbers` calls `value` valid (the finder's rule: with `+` in any plan,
    else in `region`'s plan with the typed-trunk rule), from the plan data; None when this
    is not one of the common cases it reads exactly (then `parse` decides). `digits` are
    the ASCII digits of `value`."""
    if value.startswith("+"):
        return _decide_international(value, digits)
    plan = plan_for(region)
    if plan is None or _PLAIN.fullmatch(value) is None:
        return None
    idd = plan.idd.match(digits)
    if idd is not None:  # dialled abroad: "00 1 733 836 6202" typed in Germany
        return _decide_country_code(digits[idd.end() :], plan.country_code)
    if digits.startswith(plan.country_code) or _main_region(plan.country_code) != region:
        return None
    number = plan.national_number(digits)
    if number is None or not 2 <= len(number) <= _MAX_NSN:
        return None
    if not plan.matches(number):
        return False
    # `_has_trunk_prefix`: a national format that starts with the trunk prefix needs it typed
    if not plan.trunk or not plan.national_format(number).lstrip("(").startswith(plan.trunk):
        return True
    return value.lstrip("( ").startswith(plan.trunk)


def _decide_international(value: str, digits: str) -> bool | None:
    """`is_valid_number(parse(value))` for "+<country code> <national number>"."""
    if _PLAIN_INTERNATIONAL.fullmatch(value) is None:
        return None
    return _decide_country_code(digits)


def _decide_country_code(digits: str, own_code: str = "") -> bool | None:
    """`is_valid_number` of the number `parse` reads from `digits`, a country code and a
    national number: what follows "+", or the region's international prefix. `parse`
    reads the prefix only where no 0 follows it, and a number of the region's own code
    (`own_code`) is validated in that region: both are left to it (None), as are the
    numbers it refuses as too short.

    One parse of a number dialled abroad costs up to ~250 regex calls where the country
    code has many regions (+1 has 25: `region_code_for_number` tries each one's number
    types), and each configured region that dials abroad with "00" parsed it again."""
    if len(digits) <= 2 or digits[0] == "0":
        return None
    for size in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:size]))
        if regions:
            break
    else:
        return None
    if digits[:size] == own_code:
        return None
    main = plan_for(regions[0])
    if main is None:
        return None
    number = main.national_number(digits[size:])
    if number is None or not 2 <= len(number) <= _MAX_NSN:
        return None
    if len(regions) == 1:
        return main.matches(number)
    # `region_code_for_number`: the first region whose leading digits start the number,
    # or (without leading digits) of whose types the number is one
    for region in regions:
        plan = plan_for(region)
        if plan is None:
            return None
        if plan.leading_digits is not None:
            if plan.leading_digits.match(number) is not None:
                return plan.matches(number)
        elif plan.matches(number):
            return True
    return False


@functools.cache
def _main_region(country_code: str) -> str:
    return str(phonenumbers.region_code_for_country_code(int(country_code)))
