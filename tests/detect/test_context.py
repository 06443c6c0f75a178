"""Context rules win over global patterns while active; custom types; overlaps."""

from __future__ import annotations

import pytest

from coatcheck.middleware.detect import Context, Detector, UnknownTypeError

DETECTOR = Detector.from_config(
    {
        "custom_types": [
            {"name": "ACCOUNT_ID", "regex": r"\bACC-\d{6}\b", "context": ["account"]},
            {"name": "CARD_REF", "regex": r"\b\d{16}\b", "validator": "luhn"},
        ],
        "types": {"PIN": {"pattern": r"(?<!\d)\d{4}(?!\d)"}},
    }
)


@pytest.mark.parametrize(
    ("text", "context", "expected"),
    [
        # a 7-digit password vs nothing global; a phone-looking password wins as PASSWORD
        ("2125550199", Context("PASSWORD"), [("PASSWORD", "2125550199")]),
        ("  s3cr3t pass!  ", Context("PASSWORD"), [("PASSWORD", "s3cr3t pass!")]),
        ("it is 4821", Context("PIN"), [("PIN", "4821")]),
        ("it is 48219", Context("PIN"), []),  # YAML pattern overrides the 4-8 default
        ("code 123456", Context("OTP"), [("OTP", "123456")]),
        ("the last four are 6789", Context("SSN_LAST4"), [("SSN_LAST4", "6789")]),
        ("My name is Ada Lovelace.", Context("PERSON"), [("PERSON", "Ada Lovelace")]),
        (
            "I live at 1 Main St, Springfield",
            Context("ADDRESS"),
            [("ADDRESS", "1 Main St, Springfield")],
        ),
        ("call 2125550199 now", Context("PHONE_NUMBER"), [("PHONE_NUMBER", "2125550199")]),
        ("my account ACC-123456", Context("ACCOUNT_ID"), [("ACCOUNT_ID", "ACC-123456")]),
        # outside the context the global patterns apply
        ("2125550199", None, [("PHONE_NUMBER", "2125550199")]),
        ("it is 4821", None, []),
        ("ACC-123456 here", None, [("ACCOUNT_ID", "ACC-123456")]),
        ("card 4111111111111111", None, [("CREDIT_CARD", "4111111111111111")]),
        # context rule wins an overlap with a validated global pattern
        ("4111 1111 1111 1111", Context("PASSWORD"), [("PASSWORD", "4111 1111 1111 1111")]),
    ],
)
def test_context_rows(text: str, context: Context | None, expected: list[tuple[str, str]]) -> None:
    found = [(s.entity_type, text[s.start : s.end]) for s in DETECTOR.detect(text, context)]
    assert found == expected


def test_whole_capture_override_from_caller() -> None:
    [span] = DETECTOR.detect("pin is 4821", Context("PIN", "whole"))
    assert (span.start, span.end, span.rule) == (0, 11, "context")


def test_unknown_expect_type_is_an_error_naming_it() -> None:
    with pytest.raises(UnknownTypeError) as info:
        DETECTOR.detect("x", Context("NO_SUCH_TYPE"))
    assert info.value.name == "NO_SUCH_TYPE"


def test_invalid_expect_name_is_not_echoed() -> None:
    with pytest.raises(UnknownTypeError) as info:
        DETECTOR.detect("x", Context("a.b@example.com"))
    assert info.value.name == "expect"
    assert "example" not in str(info.value)


# `capture: pattern` with no `pattern` of its own: the type's global recognizer is the rule,
# and the expectation stands in for its context words (a bare 9-digit SSN counts).
FALLBACK = Detector.from_config(
    {
        "types": {
            "EMAIL_ADDRESS": {"capture": "pattern"},
            "US_SSN": {"capture": "pattern", "display": "mask"},
            "IP_ADDRESS": {"pattern": r"\b10\.\d+\.\d+\.\d+\b"},  # own pattern still wins
        }
    }
)


@pytest.mark.parametrize(
    ("text", "context", "expected"),
    [
        (
            "it's ada@example.com, thanks",
            Context("EMAIL_ADDRESS"),
            [("EMAIL_ADDRESS", "ada@example.com", "context")],
        ),
        (
            "ada@example.com",
            Context("EMAIL_ADDRESS", "pattern"),
            [("EMAIL_ADDRESS", "ada@example.com", "context")],
        ),
        ("I don't have one", Context("EMAIL_ADDRESS"), []),  # no match: nothing vaulted
        # spelled out: not the plain pattern the rule falls back to, but the global one
        (
            "ada at example dot com",
            Context("EMAIL_ADDRESS"),
            [("EMAIL_ADDRESS", "ada at example dot com", "EMAIL_ADDRESS")],
        ),
        ("178051120", Context("US_SSN"), [("US_SSN", "178051120", "context")]),
        ("178051120", None, []),  # a bare 9-digit number needs a context word globally
        ("000123456", Context("US_SSN"), []),  # an impossible SSN stays impossible
        # types with no YAML entry fall back the same way (capture defaults to pattern)
        (
            "card 4111 1111 1111 1111",
            Context("CREDIT_CARD"),
            [("CREDIT_CARD", "4111 1111 1111 1111", "context")],
        ),
        ("4111 1111 1111 1112", Context("CREDIT_CARD"), []),  # the Luhn check still applies
        ("A123456789", Context("US_PASSPORT"), [("US_PASSPORT", "A123456789", "context")]),
        (
            "GB82 WEST 1234 5698 7654 32",
            Context("IBAN_CODE"),
            [("IBAN_CODE", "GB82 WEST 1234 5698 7654 32", "context")],
        ),
        ("born 12/03/1990", Context("DATE_OF_BIRTH"), [("DATE_OF_BIRTH", "12/03/1990", "context")]),
        ("12/03/1990", Context("DATE_OF_BIRTH"), [("DATE_OF_BIRTH", "12/03/1990", "context")]),
        # a configured pattern is used instead of the global recognizer
        (
            "10.1.2.3 or 192.168.0.1",
            Context("IP_ADDRESS"),
            [("IP_ADDRESS", "10.1.2.3", "context"), ("IP_ADDRESS", "192.168.0.1", "IP_ADDRESS")],
        ),
    ],
)
def test_pattern_capture_falls_back_to_the_global_recognizer(
    text: str, context: Context | None, expected: list[tuple[str, str, str]]
) -> None:
    found = [(s.entity_type, text[s.start : s.end], s.rule) for s in FALLBACK.detect(text, context)]
    assert found == expected


@pytest.mark.parametrize("expect", ["NO_SUCH_TYPE", "PERSON_X"])
def test_pattern_capture_without_pattern_or_recognizer_is_an_error(expect: str) -> None:
    with pytest.raises(UnknownTypeError) as info:
        FALLBACK.detect("x", Context(expect, "pattern"))
    assert info.value.name == expect
