"""Look-alike prunes: numbers that are ours, not the user's (order, invoice, ticket and
tracking numbers, amounts, times, dates, versions), in every configured language.

The words come from the locale files (`prune`, `fillers`, `units`), so "Bestellnummer
2024-118-553" and "commande n° 2024-118-553" are pruned exactly like "order no 2024-118-553".
"""

from __future__ import annotations

import re
from typing import Final

from coatcheck.middleware.detect.locales import Lexicon, words_regex
from coatcheck.middleware.detect.scan import ascii_twin, ascii_twin_or_self, fold

__all__ = ["Pruner"]

_WINDOW: Final = 48
_SEP: Final = r"[\s:.#°º'\u2019-]"
_TIME_OR_AMOUNT: Final = re.compile(
    r"^(?:\d{1,2}[:h]\d{2}(?::\d{2})?"  # 10:30, 10h30
    r"|\d{1,3}(?:,\d{3})+(?:\.\d+)?"  # 1,200.50
    r"|\d{1,3}(?:\.\d{3})+,\d{1,2}"  # 1.200,50
    r"|\d{1,3}(?:[.,]\d{1,2})"  # 12,50
    r"|\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})"  # 14.03.2025, 14/03/25
    r"|\d{5}-\d{3})$"  # 01310-200: a Brazilian postcode (CEP), never a phone's grouping
    r"|^\d{4}-\d{2}-\d{2}(?!\d)"  # 2024-01-02
    r"|^(?:19|20)\d{2}[/-]\d{2,}"  # 2024-118-553: a year, then a serial
)

_TIME_OR_AMOUNT_ASCII: Final = ascii_twin(_TIME_OR_AMOUNT)


class Pruner:
    """Decides whether a numeric candidate is an identifier of ours, an amount or a time."""

    def __init__(self, lexicon: Lexicon) -> None:
        words = words_regex(lexicon.prune)
        fillers = words_regex(lexicon.fillers)
        units = words_regex(lexicon.units)
        self._prefix = re.compile(
            rf"(?:\b(?:{words})\w*(?:{_SEP}+(?:{fillers})(?!\w)\.?){{0,3}}{_SEP}*"
            r"|[#$€£¥]\s*|R\$\s*|\bv)$",
            re.IGNORECASE,
        )
        # The same language read backwards, for the reversed window: a match ending at the
        # window's end (`$`: or before a final line break) is a match of this at its start,
        # tried once instead of at each of the window's positions (lookarounds mirrored:
        # `(?!\w)` after a filler is `(?<!\w)` before it; `\b` stays `\b`). It reads the
        # lower-cased window (`scan.fold`) without IGNORECASE, where that matches the same
        # (several times faster on the word tries), else the window with IGNORECASE.
        backwards = words_regex(tuple(w[::-1] for w in lexicon.prune))
        backwards_fillers = words_regex(tuple(w[::-1] for w in lexicon.fillers))
        reversed_prefix = (
            rf"\n?(?:{_SEP}*(?:\.?(?<!\w)(?:{backwards_fillers}){_SEP}+){{0,3}}"
            rf"\w*(?:{backwards})\b|\s*[#$€£¥]|\s*\$r|v\b)"
        )
        self._prefix_reversed = re.compile(reversed_prefix, re.IGNORECASE)
        self._prefix_reversed_folded = re.compile(reversed_prefix)
        self._suffix = re.compile(rf"^(?:\s*(?:{units})(?!\w)|[.,]\d)", re.IGNORECASE)
        # (their ASCII twins, for ASCII windows: `scan.ascii_twin`)
        self._prefix_reversed_folded_ascii = ascii_twin_or_self(self._prefix_reversed_folded)
        self._suffix_ascii = ascii_twin_or_self(self._suffix)

    def invalid(self, text: str, start: int, end: int) -> bool:
        """True when a candidate is an order/ticket id, amount, version, time or count."""
        window = text[max(0, start - _WINDOW) : start][::-1]
        folded = fold(window)
        if folded is not None:
            twin = folded.isascii()
            prefix = self._prefix_reversed_folded_ascii if twin else self._prefix_reversed_folded
            if prefix.match(folded) is not None:
                return True
        elif self._prefix_reversed.match(window) is not None:
            return True
        if start > 1 and text[start - 1] in "-/_" and text[start - 2].isalnum():
            return True  # INV-2024-0001: the number is a tail of an identifier
        if start > 1 and text[start - 1] == ":" and text[start - 2].isdigit():
            return True  # 00:59:01.442124: the seconds of a time, 16:9 a ratio
        after = text[end : end + 12]
        if (self._suffix_ascii if after.isascii() else self._suffix).match(after):
            return True
        value = text[start:end]
        amount = _TIME_OR_AMOUNT_ASCII if value.isascii() else _TIME_OR_AMOUNT
        return amount.match(value) is not None
