"""Normalisation keeps offsets; defanging breaks look-alike references."""

from __future__ import annotations

import pytest

from coatcheck.middleware.detect import defang, normalise
from coatcheck.middleware.render import parse_references


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\uff14\uff11\uff11\uff11", "4111"),
        ("a\u200bb\u200dc", "abc"),
        ("plain ascii", "plain ascii"),
        ("ﬁle", "file"),
    ],
)
def test_normalise_text(text: str, expected: str) -> None:
    assert normalise(text).text == expected


def test_offsets_map_back_to_original() -> None:
    text = "x\u200b\uff14\uff12y"
    norm = normalise(text)
    start = norm.text.index("42")
    assert norm.span(start, start + 2) == (2, 4)
    assert text[2:4] == "\uff14\uff12"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CC_EMAIL_ADDRESS_7k2m9xq4cw", "CC-EMAIL_ADDRESS_7k2m9xq4cw"),
        ("cc_x and Cc_y", "cc-x and Cc-y"),
        ("CCC_A_7k2m9xq4cw", "CCC-A_7k2m9xq4cw"),
        ("no token here", "no token here"),
    ],
)
def test_defang(text: str, expected: str) -> None:
    out = defang(text)
    assert out == expected
    assert len(out) == len(text)
    assert parse_references(out) == []
