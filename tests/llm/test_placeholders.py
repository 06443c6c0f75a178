"""The placeholder grammar: issued form, tolerated variants, what is not one, defang, bounds."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.middleware.llm import (
    MAX_VARIANT_LEN,
    PlaceholderGrammar,
    format_placeholder,
    label_for,
)

G = PlaceholderGrammar(["EMAIL", "PHONE", "CARD", "SSN", "SECRET"])


@pytest.mark.parametrize(
    ("text", "span", "key"),
    [
        ("[EMAIL_1]", (0, 9), ("EMAIL", 1)),
        ("see [email_2].", (4, 13), ("EMAIL", 2)),
        ("(Email 3)", (0, 9), ("EMAIL", 3)),
        ("{EMAIL-4}", (0, 9), ("EMAIL", 4)),
        ("<EMAIL5>", (0, 8), ("EMAIL", 5)),
        ("{{EMAIL_6}}", (0, 11), ("EMAIL", 6)),
        ("[[PHONE_7]]", (0, 11), ("PHONE", 7)),
        ("[ EMAIL_8 ]", (0, 11), ("EMAIL", 8)),
        ('{"to": "email_9"}', (8, 15), ("EMAIL", 9)),  # quotes kept: JSON stays JSON
        ("'Card 10'", (1, 8), ("CARD", 10)),
        ("`SSN_11`", (1, 7), ("SSN", 11)),
        ("mail EMAIL_12 now", (5, 13), ("EMAIL", 12)),
        ("**EMAIL_13**", (2, 10), ("EMAIL", 13)),
        ("[EMAIL_999999]", (0, 14), ("EMAIL", 999999)),
    ],
)
def test_tolerated_variants_resolve_to_one_key(
    text: str, span: tuple[int, int], key: tuple[str, int]
) -> None:
    [match] = G.scan(text)
    assert (match.start, match.end) == span
    assert match.key == key


@pytest.mark.parametrize(
    "text",
    [
        "[EMAILS_1]",  # another word
        "[MYEMAIL_1]",
        "[EMAIL_0]",  # no leading zero / zero
        "[EMAIL_01]",
        "[EMAIL_1234567]",  # too many digits
        "email 1",  # bare form needs capitals and "_"
        "Email_1",
        "EMAIL-1",
        "xEMAIL_1",
        "EMAIL_1x",
        "EMAIL_1@example.com",
        "[EMAIL#1]",  # defanged
        "[REDACTED_EMAIL]",
        "[NOTE_1]",  # not a label
    ],
)
def test_what_is_not_a_placeholder(text: str) -> None:
    assert G.scan(text) == []


def test_issued_form_and_labels() -> None:
    assert format_placeholder("EMAIL", 1) == "[EMAIL_1]"
    assert label_for("EMAIL_ADDRESS") == "EMAIL"
    assert label_for("CREDIT_CARD") == "CARD"
    assert label_for("SECRET_AWS_KEY") == "SECRET"
    assert label_for("MY_CUSTOM_TYPE") == "MYCUSTOMTYPE"
    assert label_for("EMAIL_ADDRESS", {"EMAIL_ADDRESS": "MAIL"}) == "MAIL"
    with pytest.raises(ValueError):
        format_placeholder("EMAIL", 0)
    with pytest.raises(ValueError):
        label_for("X", {"X": "bad_label"})
    assert len(format_placeholder("PASSWORD", 999999)) <= MAX_VARIANT_LEN


def test_defang_keeps_text_readable_and_unparseable() -> None:
    typed = 'ask for [EMAIL_1], (phone 2), "card_3" and SSN_4'
    defanged = G.defang(typed)
    assert defanged == 'ask for [EMAIL#1], (phone#2), "card#3" and SSN#4'
    assert G.scan(defanged) == []


_NOISE = st.text(alphabet="[](){}<>\"'` _-EMAILPHONECARDSSNemailphone0123456789xyz.@", max_size=60)


@settings(max_examples=300, deadline=None)
@given(_NOISE)
def test_defang_leaves_no_variant(text: str) -> None:
    assert G.scan(G.defang(text)) == []


@settings(max_examples=300, deadline=None)
@given(_NOISE)
def test_hold_covers_every_match_that_more_text_could_change(text: str) -> None:
    """Whatever is appended, a match that ends before the hold point stays the same match."""
    hold = G.hold_from(text)
    assert len(text) - hold <= MAX_VARIANT_LEN
    before = [m for m in G.scan(text) if m.end <= hold]
    for more in ("", "]", "]]", "1]", " ", "x", '"', "0", "_2]", ")"):
        after = [m for m in G.scan(text + more) if m.end <= hold]
        assert after == before


def test_scanning_is_linear_on_hostile_text() -> None:
    """A denial-of-service bound, asserted generously: no backtracking blow-up."""
    hostile = ["[" * 200_000, "EMAIL" * 50_000, "[EMAIL_" * 30_000, "[[ EMAIL " * 30_000]
    for text in hostile:
        started = time.perf_counter()
        G.scan(text)
        G.defang(text)
        G.hold_from(text)
        assert time.perf_counter() - started < 5.0
