"""Every Unicode decimal-digit script (category Nd) folds to ASCII digits, offsets kept."""

from __future__ import annotations

import sys
import unicodedata

from coatcheck.middleware.detect import Detector, normalise

_ND = [chr(cp) for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) == "Nd"]


def test_every_nd_character_folds_to_its_ascii_digit() -> None:
    assert len(_ND) > 600  # every script, not a sample
    wrong = [c for c in _ND if normalise(c).text != str(unicodedata.decimal(c))]
    assert wrong == []


def test_every_nd_script_block_is_found_as_a_card() -> None:
    detector = Detector.from_config({})
    zeros = [c for c in _ND if unicodedata.decimal(c) == 0]
    card = "4111 1111 1111 1111"
    for zero in zeros:
        typed = "".join(chr(ord(zero) + int(c)) if c.isdigit() else c for c in card)
        text = f"card {typed} ok"
        [span] = detector.detect(text)
        assert (span.entity_type, span.value) == ("CREDIT_CARD", card)
        assert text[span.start : span.end] == typed


def test_dashes_and_digit_gaps_fold() -> None:
    norm = normalise("123\u201345\u22126789 and 4111  1111\t1111 1111")
    assert norm.text == "123-45-6789 and 4111 1111 1111 1111"
    assert norm.span(16, 35) == (16, 36)
