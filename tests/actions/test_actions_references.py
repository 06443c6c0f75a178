"""The reference grammar on the action side: table-driven, matches and non-matches."""

import pytest

from coatcheck.actions import find_references, is_reference, parse_reference


@pytest.mark.parametrize(
    ("value", "entity_type", "expected"),
    [
        ("CC_EMAIL_ADDRESS_7k2m9xq4cw", None, True),
        ("CC_EMAIL_ADDRESS_7k2m9xq4cw", "EMAIL_ADDRESS", True),
        ("CC_EMAIL_ADDRESS_7k2m9xq4cw(++docs@kor++)", "EMAIL_ADDRESS", True),
        (" CC_CREDIT_CARD_0123456789 ", "CREDIT_CARD", True),
        ("CC_EMAIL_ADDRESS_7k2m9xq4cw", "CREDIT_CARD", False),
        ("CC-EMAIL_ADDRESS_7k2m9xq4cw", None, False),  # defanged look-alike
        ("CC_EMAIL_ADDRESS_7k2m9xq4cu", None, False),  # 'u' is not Crockford
        ("CC_EMAIL_ADDRESS_7k2m9xq4c", None, False),  # 9 characters
        ("CC_email_7k2m9xq4cw", None, False),  # lower-case type
        ("mail me at CC_EMAIL_ADDRESS_7k2m9xq4cw", None, False),  # not the whole value
        ("docs@example.com", None, False),
        (None, None, False),
        (42, None, False),
    ],
)
def test_is_reference(value: object, entity_type: str | None, expected: bool) -> None:
    assert is_reference(value, entity_type) is expected


def test_parse_reference_splits_type_with_underscores() -> None:
    ref = parse_reference("CC_US_SSN_ab12cd34ef(###-##-1234)")
    assert ref is not None
    assert (ref.token, ref.entity_type) == ("CC_US_SSN_ab12cd34ef", "US_SSN")


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        (
            "a CC_PHONE_NUMBER_0123456789(+1###) and CC_EMAIL_ADDRESS_abcdefghjk.",
            ["CC_PHONE_NUMBER_0123456789", "CC_EMAIL_ADDRESS_abcdefghjk"],
        ),
        ("no references here, CC_ alone", []),
    ],
)
def test_find_references(text: str, tokens: list[str]) -> None:
    found = find_references(text)
    assert [r.token for r in found] == tokens
    for ref in found:
        assert text[ref.start : ref.end].startswith(ref.token)
