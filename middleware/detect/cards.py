"""A card's security code and expiry date typed right next to the card number.

"4111 1111 1111 1111 123 12/27", "card 4111... exp 12/27 cvv 123": right after a
CREDIT_CARD candidate (up to 40 characters on, only separators and the two types' own words
in any configured language between) a MM/YY or MM/YYYY is a CARD_EXPIRY and a lone 3 or 4
digit number a CARD_CVV. On their own, both types need their words (`context_required`
recognizers in `recognizers.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final

from coatcheck.middleware.detect.locales import Lexicon, words_regex
from coatcheck.middleware.detect.recognizers import Candidate

__all__ = ["NearCard"]

_WINDOW: Final = 40
_EXPIRY: Final = re.compile(r"(?:0[1-9]|1[0-2]) ?[/-] ?(?:20)?\d{2}(?![\w]|[/.-]\d)")
_CVV: Final = re.compile(r"\d{3,4}(?![\w]|[/.,-]\d| ?\d{3})")


class NearCard:
    """Finds the expiry and security code typed after a card number."""

    def __init__(self, lexicon: Lexicon) -> None:
        words = words_regex(
            lexicon.context_for("CARD_CVV") + lexicon.context_for("CARD_EXPIRY") + ("exp",)
        )
        # Separators and the types' own words; single characters or whole words, so the
        # repetition is unambiguous (linear).
        self._filler = re.compile(rf"(?:[\s,;:/|()-]|(?i:{words})\.?)*")

    def find(self, text: str, candidates: Iterable[Candidate]) -> Iterator[Candidate]:
        """CARD_EXPIRY / CARD_CVV candidates in the stretch right after each card."""
        for card in candidates:
            if card.entity_type != "CREDIT_CARD":
                continue
            yield from self._after(text, card.end, min(len(text), card.end + _WINDOW))

    def _after(self, text: str, pos: int, limit: int) -> Iterator[Candidate]:
        wanted = {"CARD_EXPIRY": _EXPIRY, "CARD_CVV": _CVV}
        while pos < limit and wanted:
            gap = self._filler.match(text, pos, limit)
            if gap is None or (gap.end() == pos and pos > 0 and text[pos - 1].isdigit()):
                return  # the card must be followed by a separator first
            pos = gap.end()
            for name, regex in list(wanted.items()):
                hit = regex.match(text, pos)
                if hit is not None:
                    yield Candidate(*hit.span(), name, name, False, 0.7)
                    del wanted[name]
                    pos = hit.end()
                    break
            else:
                return
