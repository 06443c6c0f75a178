"""Phone numbers: a cheap candidate regex, then `phonenumbers` decides.

A candidate valid in the numbering plan (international with `+`, or national for the
default region) is a validated PHONE_NUMBER. Any other 7-17 digit candidate counts
only next to phone words ("call me at", "Mobile:"), as a weaker, unvalidated match: foreign
national formats have no country code to check against. Scanning with our regex first and
validating only candidates is several times faster than PhoneNumberMatcher on chat text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import phonenumbers

from coatcheck.middleware.detect.recognizers import Candidate, invalidate

__all__ = ["PHONE_CONTEXT", "PHONE_MIN_DIGITS", "find_phones"]

PHONE_CONTEXT = (
    "phone",
    "call",
    "mobile",
    "cell",
    "tel",
    "telephone",
    "fax",
    "desk",
    "office",
    "reach",
    "contact",
    "number",
    "text me",
    "sms",
    "whatsapp",
    "message",
    "dial",
    "answering",
    "ring",
)
_CANDIDATE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(0\)\s?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,15}"
    r"(?:(?:[ .-]|\s?\(0\)\s?)\(?\d{1,12}\)?){0,5}(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w])",
    re.IGNORECASE,
)
_CONTEXT = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in PHONE_CONTEXT) + ")", re.I)
_WINDOW = 40
_DIGIT = re.compile(r"\d")
PHONE_MIN_DIGITS, _MAX_DIGITS = 7, 17


@functools.cache
def _min_national_digits(region: str) -> int:
    """The shortest national number the region's plan allows (0 when unknown).

    Parsing only strips digits (prefixes, country code, extension), so a candidate without
    `+` that has fewer digits than this can never be valid for the region: skipping
    `phonenumbers.parse` for it (the costliest step here) changes no result.
    """
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.general_desc is None:
        return 0
    return min(metadata.general_desc.possible_length or (0,))


def _valid(value: str, region: str, digits: int) -> bool:
    """Valid in the numbering plan: any region with `+`, else the default region."""
    if not value.startswith("+") and digits < _min_national_digits(region):
        return False
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return False
    if value.startswith("+"):
        return bool(phonenumbers.is_valid_number(number))
    return bool(phonenumbers.is_valid_number_for_region(number, region))


def find_phones(text: str, region: str) -> Iterator[Candidate]:
    """Phone candidates in `text`; `region` applies to numbers without a country code."""
    for match in _CANDIDATE.finditer(text):
        start, end = match.span()
        if end - start < PHONE_MIN_DIGITS:
            continue  # most hits are short numbers ("2 items", "at 5"): too few characters
        value = match.group()
        digits = len(_DIGIT.findall(value))
        if not PHONE_MIN_DIGITS <= digits <= _MAX_DIGITS or invalidate(text, start, end):
            continue
        has_context = _CONTEXT.search(text, max(0, start - _WINDOW), start) is not None
        valid = _valid(value, region, digits)
        if valid:
            yield Candidate(
                start, end, "PHONE_NUMBER", "PHONE_NUMBER", True, 0.8 + 0.1 * has_context
            )
        elif has_context:  # a foreign national format: the words say it is a phone
            yield Candidate(start, end, "PHONE_NUMBER", "PHONE_NUMBER", False, 0.5)
