"""The speed gates skip work, never results: gated and ungated runs must agree.

Each recognizer is gated (digit count, longest digit run, required substrings, a context
word anywhere) before its regexes run, phone candidates too short for the region skip
`phonenumbers.parse`, and already-normal non-ASCII text skips the per-character pass.
These tests compare every gate with the plain computation it replaces.
"""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.middleware.detect import BUILTIN_RECOGNIZERS, Recognizer, address, normalise
from coatcheck.middleware.detect.locales import lexicon_for
from coatcheck.middleware.detect.normalise import _fold_each
from coatcheck.middleware.detect.numbering import decide
from coatcheck.middleware.detect.phone import (
    _has_trunk_prefix,
    _parse_and_validate,
    _plausible,
    _valid,
    _valid_somewhere,
)
from coatcheck.middleware.detect.recognizers import Candidate
from coatcheck.middleware.detect.scan import Scan, WordIndex

_PIECES = (
    "4111 1111 1111 1111",
    "4111-1111-1111",
    "378282246310005",
    "123-45-6789",
    "123456789",
    "943 476 5919",
    "A12345678",
    "GB82 WEST 1234 5698 7654 32",
    "192.168.0.1",
    "fe80::1",
    "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    "12/03/1990",
    "3 March 1990",
    "x@y.com",
    "AB 12 34 56 C",  # NINO: a run of exactly six digits
    "X1234567L",  # NIE: seven digits of their own
    "12345678Z",  # DNI: eight digits ending a run before a letter
    "rccmnl83s18d969h",  # codice fiscale: a word of 16
    "2 84 05 75 111 222 84",  # NIR: fifteen digits in one run
    "2A",
    " at ",
    " [at] ",
    "example",
    " dot ",
    ".com",
    "ssn",
    "card",
    "passport",
    "born",
    "nhs",
    "order #",
    "Ünïcode",
    "\u017f\u017fn",  # long s: IGNORECASE reads it as "s", lower-casing does not
    "\u0130",  # capital I with a dot: lower-cases to two characters
    " ",
    "-",
    ".",
    ":",
    "7",
    "a",
)
_texts = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)


def _ungated(recognizer: Recognizer, text: str) -> list[Candidate]:
    """Every pattern run on the whole text, as before the gates existed (only the old
    "needs a digit" skip, which predates them)."""
    found: list[Candidate] = []
    if recognizer.needs_digit and not any(c.isdecimal() for c in text):
        return found
    for regex, weak in recognizer._compiled:
        for match in regex.finditer(text):
            start, end = match.span("value") if "value" in regex.groupindex else match.span()
            candidate = recognizer._check(text, start, end, weak)
            if candidate is not None:
                found.append(candidate)
    return found


def _gated(recognizer: Recognizer, text: str) -> list[Candidate]:
    """As the detector runs it: the message's `Scan` gates, one `WordIndex` scan for the
    context words."""
    scan = Scan(text, WordIndex({0: recognizer.context}))
    if not recognizer.could_match(scan):
        return []
    anywhere = scan.has_context(0) if recognizer.needs_context else None
    if recognizer.context_required and not anywhere:
        return []
    return list(recognizer.find(text, context_anywhere=anywhere))


@settings(max_examples=300, deadline=None)
@given(_texts)
def test_gates_change_no_candidate(text: str) -> None:
    for recognizer in BUILTIN_RECOGNIZERS:
        assert sorted(_gated(recognizer, text), key=repr) == sorted(
            _ungated(recognizer, text), key=repr
        ), recognizer.entity_type


@pytest.mark.parametrize(
    ("text", "entity_type", "expected"),
    [
        ("card 4111 1111 1111 1111", "CREDIT_CARD", 1),
        ("4111 1111 1109", "CREDIT_CARD", 0),  # weak pattern, no context word anywhere
        ("card 4111 1111 1109", "CREDIT_CARD", 1),
        ("ssn 123456789", "US_SSN", 1),
        ("passport A123456789", "US_PASSPORT", 1),
        ("A123456789", "US_PASSPORT", 0),
        ("send to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "CRYPTO", 1),
        ("host fe80::1 is down", "IP_ADDRESS", 1),
        ("no digits here at all", "IP_ADDRESS", 0),
    ],
)
def test_gated_recognizer_rows(text: str, entity_type: str, expected: int) -> None:
    recognizer = next(r for r in BUILTIN_RECOGNIZERS if r.entity_type == entity_type)
    assert len(_gated(recognizer, text)) == expected


@pytest.mark.parametrize("region", ["US", "GB", "FR", "DE", "BR"])
@pytest.mark.parametrize(
    "value",
    ["2125550199", "212-555-0199", "020 7946 0958", "01 23 45 67 89", "555 0199", "1234567"],
)
def test_phone_length_gate_matches_phonenumbers(region: str, value: str) -> None:
    digits = "".join(c for c in value if c.isdigit())
    number = phonenumbers.parse(value, region)
    expected = phonenumbers.is_valid_number_for_region(number, region) and _has_trunk_prefix(
        value, number, region
    )
    assert _valid(value, region, digits) == expected


def _valid_by_parse(value: str, region: str) -> bool:
    """`_valid` without the gate: parse, validate, and the typed trunk prefix."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return False
    if number.country_code != phonenumbers.country_code_for_region(region):
        return bool(phonenumbers.is_valid_number(number))
    if not phonenumbers.is_valid_number_for_region(number, region):
        return False
    return _has_trunk_prefix(value, number, region)


# The default regions, and plans whose national-prefix rules transform the number (Brazil's
# carrier codes, Argentina's inserted 9, Japan, Gabon, the NANP islands' area codes).
_PLAN_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "AR", "JP", "GA", "AG", "GG")
_national = st.tuples(
    st.sampled_from(["", "0", "00", "011", "0015", "90", "15", "1", "44", "49", "55", "(0"]),
    st.text("0123456789", min_size=4, max_size=14),
).map("".join)


@settings(max_examples=400, deadline=None)
@given(_national, st.sampled_from(_PLAN_REGIONS))
def test_plan_gate_never_rules_out_a_valid_number(value: str, region: str) -> None:
    if _valid_by_parse(value, region):
        assert _plausible(value, region, "".join(c for c in value if c.isdigit()))


@pytest.mark.parametrize("region", _PLAN_REGIONS)
def test_plan_gate_passes_every_example_number(region: str) -> None:
    """Each plan's own example numbers (every type), typed nationally, pass the gate."""
    for kind in phonenumbers.PhoneNumberType.values():
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None:
            continue
        value = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
        digits = "".join(c for c in value if c.isdigit())
        assert _valid_by_parse(value, region)
        assert _plausible(value, region, digits), (region, kind)


@pytest.mark.parametrize(
    ("value", "region"),
    [("4111111111111111", "DE"), ("2024118553", "FR"), ("1234567", "US"), ("99999999", "BR")],
)
def test_plan_gate_rules_out(value: str, region: str) -> None:
    assert not _valid_by_parse(value, region)
    assert not _plausible(value, region, value)


@pytest.mark.parametrize(
    ("text", "identity"),
    [
        ("Kíra Schmidt, Dunajska 113", True),
        ("Zoë lives in Łódź", True),
        ("\uff14\uff11\uff11\uff11", False),  # full-width digits fold
        ("Zoë\u200b 555", False),  # zero-width character dropped
        ("e\u0301", False),  # combining accent composes: not already normal
    ],
)
def test_normalise_identity_fast_path(text: str, identity: bool) -> None:
    norm = normalise(text)
    assert (norm.origin is None) == identity
    if identity:
        assert norm.text == text


_WINDOW_PIECES = (
    "order",
    "Bestellnummer",
    "commande",
    "n°",
    "nº",
    "n.",
    "d'",
    "number",
    "no",
    "is",
    "#",
    " ",
    "  ",
    "\n",
    ":",
    ".",
    "-",
    "'",
    "\u2019",
    "°",
    "v",
    "V",
    "R$",
    "$",
    "€",
    "ab",
    "x",
    "12",
    "é",
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_WINDOW_PIECES), max_size=10).map("".join))
def test_reversed_prune_prefix_is_the_window_search(window: str) -> None:
    """The pruner reads its prefix backwards from the candidate: one anchored match of the
    reversed window, exactly where the forward pattern matches at the window's end."""
    pruner = BUILTIN_RECOGNIZERS[1].pruner
    assert pruner is not None
    forward = pruner._prefix.search(window) is not None
    assert (pruner._prefix_reversed.match(window[::-1]) is not None) == forward, window


# Numbers as people type them: a national or international start, digit groups and the
# separators `decide` reads itself (and some it leaves to `parse`).
_typed = st.tuples(
    st.sampled_from(
        [
            "",
            "0",
            "00",
            "+",
            "+1 ",
            "+44 ",
            "+49 ",
            "+33 ",
            "+55 ",
            "+7 ",
            "+41 (0)",
            "(0",
            "1-",
            "011 ",
            "+800 ",
        ]
    ),
    st.lists(st.text("0123456789", min_size=1, max_size=5), min_size=1, max_size=5),
    st.sampled_from([" ", "-", ".", "/", "", ") ", "\t"]),
).map(lambda t: t[0] + t[2].join(t[1]))


@settings(max_examples=1500, deadline=None)
@given(_typed, st.sampled_from(_PLAN_REGIONS))
def test_plan_decision_is_what_parse_says(value: str, region: str) -> None:
    """Where the plan data decides a number (most candidates), it says what `parse` and
    `is_valid_number` say; elsewhere it defers (None)."""
    digits = "".join(c for c in value if c.isdigit())
    decided = decide(value, digits, region)
    if decided is not None:
        assert decided == _parse_and_validate(value, region), (value, region)


_EXTENSIONS = ("x123", "x4567", " x12", "X9", " ext 55", "ext.9", " EXT. 1234567")


@pytest.mark.parametrize("region", _PLAN_REGIONS)
def test_a_number_with_an_extension_is_valid_as_parse_says(region: str) -> None:
    """The extension is taken off before the plan checks (`_without_extension`): every
    example number of the region, national and international, with each extension form,
    is valid exactly where `parse` (which strips it itself) says it is, in that region
    and across the default regions; numbers `parse` refuses stay refused."""
    regions = (region, *(r for r in _PLAN_REGIONS if r != region))
    values = ["12345", "0000000", "1234567890123456"]
    for kind in phonenumbers.PhoneNumberType.values():
        example = phonenumbers.example_number_for_type(region, kind)
        if example is not None:
            values += [
                phonenumbers.format_number(example, form)
                for form in (
                    phonenumbers.PhoneNumberFormat.NATIONAL,
                    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                )
            ]
    for number in values:
        for extension in _EXTENSIONS:
            value = number + extension
            digits = "".join(c for c in value if c.isdigit())
            somewhere = any(_parse_and_validate(value, r) for r in regions)
            assert _valid_somewhere(value, digits, regions) == somewhere, (value, region)


@pytest.mark.parametrize("region", [*_PLAN_REGIONS, "CH", "SE", "RU", "KZ", "CA", "IM", "AU"])
def test_plan_decision_on_every_example_number(region: str) -> None:
    """Each plan's example numbers of every type, typed nationally and internationally,
    decided as `parse` decides them (and decided at all in the default regions)."""
    for kind in phonenumbers.PhoneNumberType.values():
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None:
            continue
        for form in (
            phonenumbers.PhoneNumberFormat.NATIONAL,
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        ):
            value = phonenumbers.format_number(example, form)
            digits = "".join(c for c in value if c.isdigit())
            decided = decide(value, digits, region)
            if decided is not None:
                assert decided == _parse_and_validate(value, region), (value, region)
            elif (
                region in ("US", "GB", "DE", "FR", "ES", "IT", "NL")
                and form == phonenumbers.PhoneNumberFormat.INTERNATIONAL
            ):
                raise AssertionError((value, region, "not decided"))


# Country codes of one region and of many (+1: 25 regions, +7, +44, +47, +61, +262, +590).
_ABROAD = ("US", "CA", "JM", "PR", "RU", "KZ", "GB", "IM", "NO", "SJ", "AU", "CX", "RE", "GP")


def _dialling_prefix(region: str) -> str:
    """What a caller in `region` types before a country code: the first of the common
    international prefixes that its plan's prefix pattern takes ("00", "011", Japan's
    "010", Australia's "0011", Brazil's carrier-selecting "0014")."""
    idd = phonenumbers.PhoneMetadata.metadata_for_region(region).international_prefix
    return next(p for p in ("00", "011", "010", "0011", "0014") if re.fullmatch(idd, p))


@pytest.mark.parametrize("region", [*_PLAN_REGIONS, "CH", "AU"])
def test_a_number_dialled_abroad_is_decided_as_parse_decides(region: str) -> None:
    """A number typed with the region's international prefix ("00 1 733 836 6202" in
    Germany, "011 44 ..." in the US): the plan data decides it exactly as `parse` does,
    for every example number of regions that share their country code and of regions
    that do not, valid and mangled; only a number of the region's own code (its own
    region's rules) and a 0 after the prefix are left to `parse`."""
    prefix = _dialling_prefix(region) + " "
    own = str(phonenumbers.country_code_for_region(region))
    for abroad in _ABROAD:
        for kind in phonenumbers.PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(abroad, kind)
            if example is None:
                continue
            international = phonenumbers.format_number(
                example, phonenumbers.PhoneNumberFormat.INTERNATIONAL
            )[1:]
            for body in (international, international[:-1] + "0", international + "1"):
                value = prefix + body
                digits = "".join(c for c in value if c.isdigit())
                decided = decide(value, digits, region)
                assert decided == _parse_and_validate(value, region) or (
                    decided is None and body.startswith(own)
                ), (value, region)
                if not body.startswith(own):
                    assert decided is not None, (value, region, "not decided")


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "a",
                "é",
                "Ω",
                "\u2126",
                "\u2013",
                "\u2212",
                "\u0663",
                "\uff14",
                "\u200b",
                "\ufeff",
                "e\u0301",
                "ﬁ",
                "7",
                " ",
                "  ",
                "\t",
                "-",
                "Ł",
            ]
        ),
        max_size=12,
    ).map("".join)
)
def test_normalise_fast_paths_are_the_per_character_fold(text: str) -> None:
    """The shortcuts (ASCII, NFKC text with only dashes and digits to change) give the text
    and the offsets the per-character fold gives."""
    fast, slow = normalise(text), _fold_each(text)
    assert fast.text == slow.text
    size = len(fast.text)
    for start in range(size + 1):
        for end in range(start, size + 1):
            assert fast.span(start, end) == slow.span(start, end), (text, start, end)


# Street lines as people type them: numbers, postcodes, capitalised words, street words
# of several languages, particles, apostrophes, and the punctuation between them.
_ADDRESS_PIECES = (
    "Heirstraat 3",
    "Berliner Straße 12",
    "Hauptstr. 5a",
    "Foo-Straße 7",
    "12 Main Street",
    "4 rue de la Paix",
    "Via Roma 10",
    ", 10115 Berlin",
    ", Springfield, IL 62704",
    " - 01310-200 São Paulo",
    " Apt 4",
    "12",
    "221B",
    "45-47",
    "3 bis",
    "10115",
    "01310-200",
    "SW1A 2AA",
    "62704",
    "Main",
    "Street",
    "St",
    "Rd",
    "rue",
    "Via",
    "Avenue",
    "Hauptstraße",
    "Heirstraat",
    "Berliner",
    "Straße",
    "Hauptstr.",
    "Apt",
    "Suite",
    "de",
    "la",
    "van",
    "Springfield",
    "IL",
    "NEWELL",
    "São",
    "d'Ouchy",
    "l\u2019Église",
    "Lodge",
    " ",
    "  ",
    ", ",
    ",",
    "-",
    ".",
    "\n",
    "\t",
    "'",
)


def _without_gates(pattern: str) -> str:
    """An address shape without its lookaheads and possessive words (the plain form)."""
    tail_gate = address._TAIL[: address._TAIL.index("[ \\t]*[,-]?")]
    for gate in (address._ENDING_AHEAD, address._WORD_ENDING_AHEAD):
        pattern = pattern.replace(gate, "")
    pattern = pattern.replace(tail_gate, "(?:")
    return pattern.replace(address._CAP + "+", address._CAP)


@settings(max_examples=700, deadline=None)
@given(st.lists(st.sampled_from(_ADDRESS_PIECES), min_size=1, max_size=10).map("".join))
def test_address_shapes_find_what_their_plain_forms_find(text: str) -> None:
    """The shapes' lookaheads (a tail needs a digit, an ending word blanks and a digit)
    and possessive words only skip attempts that fail: each shape, and its ASCII twin on
    ASCII text, finds exactly the spans of its form without them."""
    finder = address.AddressFinder(lexicon_for())
    twins = finder._compiled_ascii if text.isascii() else finder._compiled
    for shape, twin in zip(finder._compiled, twins, strict=True):
        plain = re.compile(_without_gates(shape.pattern), shape.flags)
        assert plain.pattern != shape.pattern or "(?=" not in shape.pattern
        expected = [m.span() for m in plain.finditer(text)]
        assert [m.span() for m in shape.finditer(text)] == expected, (shape.pattern[:60], text)
        assert [m.span() for m in twin.finditer(text)] == expected, (shape.pattern[:60], text)
