"""The per-message scan: folding agrees with IGNORECASE, and one `WordIndex` scan finds
what each list's own IGNORECASE regex finds."""

from __future__ import annotations

import re
import re._compiler as sre_compiler

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.middleware.detect.locales import words_regex
from coatcheck.middleware.detect.scan import Scan, WordIndex, fold


def test_fold_refuses_every_character_ignorecase_reads_otherwise() -> None:
    """Every non-ASCII character the regex engine case-folds onto another letter (its
    extra cases table), the dotted capital I and the capital sigma make `fold` refuse."""
    extras = {
        chr(code) for key, values in sre_compiler._EXTRA_CASES.items() for code in (key, *values)
    }
    for char in [*sorted(c for c in extras if not c.isascii()), "\u0130", "\u03a3"]:
        assert fold(f"card {char} number") is None, hex(ord(char))


@pytest.mark.parametrize("text", ["Straße 5", "ÉMILIE", "Ünïcode", "plain ascii"])
def test_fold_is_lower_case_with_the_same_offsets(text: str) -> None:
    assert fold(text) == text.lower()


_LISTS = {0: ("card", "card code", "cvv"), 1: ("social security", "ssn"), 2: ("geb.", "born")}
_WORDS = [w for ws in _LISTS.values() for w in ws]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([*_WORDS, *(w.upper() for w in _WORDS), " ", "x", "é", ".", "Cardholder"]),
        max_size=10,
    ).map("".join)
)
def test_word_index_finds_what_each_list_regex_finds(text: str) -> None:
    index = WordIndex(_LISTS)
    scan = Scan(text, index)
    for key, words in _LISTS.items():
        own = re.compile(rf"(?<!\w)(?:{words_regex(words)})", re.IGNORECASE)
        assert scan.has_context(key) == (own.search(text) is not None), (key, text)


def test_letters_before_run_and_long_words() -> None:
    scan = Scan("iban DE89 3704 0044 and a-very-long-token, bc1qar0srrr7xfkvy5l643l.")
    assert scan.letters_before_run(2)
    assert scan.long_words == ["bc1qar0srrr7xfkvy5l643l"]  # a run of word characters
    assert not Scan("call 0171 1234567").letters_before_run(2)
    assert Scan("ab 12 34-5 x").runs == [(3, 10, 5)]  # (start, end, digits)
