"""The grammar and display modes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from coatcheck.middleware.detect import KeepSettings, MaskSettings, TypeSettings
from coatcheck.middleware.render import (
    display_for,
    format_reference,
    mask,
    parse_references,
    redaction_display,
    replace_references,
)

REF = "7k2m9xq4cw"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a CC_EMAIL_ADDRESS_7k2m9xq4cw(x@y) b", [("EMAIL_ADDRESS", REF, "x@y")]),
        ("CC_PIN_7k2m9xq4cw", [("PIN", REF, None)]),
        (
            "CC_PIN_7k2m9xq4cw() and CC_SSN_LAST4_0123456789(++++)",
            [("PIN", REF, ""), ("SSN_LAST4", "0123456789", "++++")],
        ),
        ("CC_pin_7k2m9xq4cw", []),  # lower-case type
        ("CC_PIN_7k2m9xq4cu", []),  # 'u' is not Crockford
        ("CC-PIN_7k2m9xq4cw", []),  # defanged
        ("CC_PIN_7k2m9xq4c", []),  # 9 chars
    ],
)
def test_parse_rows(text: str, expected: list[tuple[str, str, str | None]]) -> None:
    assert [(r.entity_type, r.ref_id, r.display) for r in parse_references(text)] == expected


def test_replace_references() -> None:
    text = "hi CC_EMAIL_ADDRESS_7k2m9xq4cw(abc), bye"
    assert replace_references(text, lambda r: f"<{r.reference}>") == (
        "hi <CC_EMAIL_ADDRESS_7k2m9xq4cw>, bye"
    )


@pytest.mark.parametrize(
    ("entity_type", "ref_id", "display"),
    [("bad", REF, None), ("PIN", "UPPERCASE1", None), ("PIN", REF, "a b"), ("PIN", REF, "(x)")],
)
def test_format_refuses_outside_grammar(entity_type: str, ref_id: str, display: str | None) -> None:
    with pytest.raises(ValueError):
        format_reference(entity_type, ref_id, display)


@pytest.mark.parametrize(
    ("value", "first", "last", "symbol", "expected"),
    [
        ("4111111111111111", 0, 4, "#", "411111111111####"),
        ("a.b@example.com", 2, 3, "+", "++b@example.+++"),
        ("José Ñ (x)", 1, 1, "+", "+os_____x+"),
        ("12", 4, 4, "+", "++"),
        ("abc", 0, 0, "+", "abc"),
    ],
)
def test_mask_rows(value: str, first: int, last: int, symbol: str, expected: str) -> None:
    settings = MaskSettings(first=first, last=last, symbol=symbol)  # type: ignore[arg-type]
    assert mask(value, settings) == expected


@pytest.mark.parametrize(
    ("value", "first", "last", "expected"),
    [
        ("4111111111111111", 0, 4, "############1111"),
        ("4111 1111 1111 1111", 0, 4, "###############1111"),
        ("4111111111111111", 4, 4, "4111########1111"),
        ("jane@example.com", 1, 0, "j###############"),
        ("1234", 0, 4, "####"),  # no longer than what keep shows: hidden whole
        ("123", 2, 2, "###"),
        ("", 0, 4, ""),
        ("abc", 0, 0, "###"),  # keep nothing: no match, all hidden
    ],
)
def test_mask_keep_rows(value: str, first: int, last: int, expected: str) -> None:
    settings = MaskSettings(keep=KeepSettings(first=first, last=last), symbol="#")
    assert mask(value, settings) == expected


def test_mask_keep_and_counts_are_exclusive() -> None:
    with pytest.raises(ValidationError, match="keep replaces first/last"):
        MaskSettings.model_validate({"keep": {"last": 4}, "last": 4})


def test_redaction_is_deterministic_per_ref_and_alphanumeric() -> None:
    one = redaction_display(REF)
    assert one == redaction_display(REF)
    assert one != redaction_display("0123456789")
    assert one.isalnum() and len(one) == 8


def test_display_modes() -> None:
    assert display_for("x", REF, TypeSettings()) == redaction_display(REF)
    assert display_for("x", REF, TypeSettings(display="replacement", replacement="asdf1234")) == (
        "asdf1234"
    )
    masked = TypeSettings(display="mask", mask=MaskSettings(first=1, last=0, symbol="#"))
    assert display_for("secret", REF, masked) == "#ecret"
