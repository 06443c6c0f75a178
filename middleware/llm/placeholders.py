"""Placeholders the model sees, `[EMAIL_1]`, and the bounded grammar of what it may write back.

Issued form: `"[" LABEL "_" N "]"`, LABEL = 1-16 ASCII capital letters (one word per entity
type, see `label_for`), N = 1-999999 without leading zeros, numbered per conversation and
label (docs/llm.md). Models keep such tokens but sometimes rewrite them; these variants of
one placeholder are tolerated and resolve to the same (label, N):

    bracket  OPEN PAD? LABEL SEP? N PAD? CLOSE   OPEN/CLOSE: [] () {} <>, single or doubled
                                                 (the same character twice: [[ ]], {{ }});
                                                 PAD: one space; the brackets are consumed
    quote    Q LABEL SEP? N Q                    Q: " ' ` (kept: only LABEL SEP? N is replaced,
                                                 so `{"to": "EMAIL_1"}` stays valid JSON)
    bare     LABEL "_" N                         capitals and "_" exactly, not touching a
                                                 letter, digit, "_" or "@"
    LABEL is matched without regard to ASCII case in the bracket and quote forms; SEP is
    one of "_", "-", " " or nothing.

A variant is at most `MAX_VARIANT_LEN` characters long, which bounds what a stream must hold
back for placeholders. Scanning is linear: one regex with an alternation of literal labels
and bounded repetitions (no nested quantifiers) finds the core, and a constant amount of
work around each core decides the form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_LABELS",
    "MAX_VARIANT_LEN",
    "PlaceholderGrammar",
    "PlaceholderMatch",
    "format_placeholder",
    "label_for",
]

# One short word per type: readable for the model and free of "_" so SEP is unambiguous.
DEFAULT_LABELS: Mapping[str, str] = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CARD",
    "US_SSN": "SSN",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP",
    "PERSON": "PERSON",
    "LOCATION": "LOCATION",
    "ADDRESS": "ADDRESS",
    "DATE_OF_BIRTH": "DOB",
    "US_PASSPORT": "PASSPORT",
    "UK_NHS": "NHS",
    "CRYPTO": "WALLET",
    "PASSWORD": "PASSWORD",
    "PIN": "PIN",
}

_LABEL_RE = re.compile(r"[A-Z]{1,16}")
MAX_LABEL = 16
MAX_DIGITS = 6
# 2 openers + pad + label + sep + digits + pad + 2 closers
MAX_VARIANT_LEN = 2 + 1 + MAX_LABEL + 1 + MAX_DIGITS + 1 + 2

_CLOSE = {"[": "]", "(": ")", "{": "}", "<": ">"}
_QUOTES = frozenset("\"'`")
_SEPS = frozenset("_- ")
_CAN_START = re.compile(r"[\[({<\"'`A-Z]")  # what `_viable` looks at: an opener, a quote, A-Z
_BARE_NEIGHBOURS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@")


def label_for(entity_type: str, overrides: Mapping[str, str] | None = None) -> str:
    """The placeholder label of a type: configured, built in, `SECRET*` -> SECRET, or the
    type's letters (at most 16)."""
    if overrides and entity_type in overrides:
        label = overrides[entity_type]
        if not _LABEL_RE.fullmatch(label):
            raise ValueError("placeholder label must be 1-16 capital letters")
        return label
    if entity_type in DEFAULT_LABELS:
        return DEFAULT_LABELS[entity_type]
    if entity_type.startswith("SECRET"):
        return "SECRET"
    letters = "".join(ch for ch in entity_type if "A" <= ch <= "Z")[:MAX_LABEL]
    return letters or "VALUE"


def format_placeholder(label: str, n: int) -> str:
    """The issued form, `[LABEL_N]`."""
    if not _LABEL_RE.fullmatch(label) or not 1 <= n < 10**MAX_DIGITS:
        raise ValueError("placeholder outside the grammar")
    return f"[{label}_{n}]"


@dataclass(frozen=True, slots=True)
class PlaceholderMatch:
    """A variant at [start, end) of the scanned text; `end - start` covers what is replaced."""

    start: int
    end: int
    label: str
    n: int
    sep_at: int  # index of the separator (or where it would be): what `defang` changes
    sep_len: int

    @property
    def key(self) -> tuple[str, int]:
        return (self.label, self.n)


class PlaceholderGrammar:
    """Scanner, stream hold-back and defang for one set of labels (built once at start)."""

    def __init__(self, labels: Iterable[str]) -> None:
        wanted = sorted({label for label in labels}, key=lambda s: (-len(s), s))
        for label in wanted:
            if not _LABEL_RE.fullmatch(label):
                raise ValueError("placeholder label must be 1-16 capital letters")
        if not wanted:
            raise ValueError("at least one placeholder label is needed")
        self.labels = frozenset(wanted)
        self._prefixes = frozenset(label[:i] for label in wanted for i in range(1, len(label)))
        # Core: a known label not inside a longer letter run, an optional separator and N.
        # Literal alternation and bounded repetitions only: linear on untrusted text.
        alternation = "|".join(wanted)
        digits = rf"[1-9][0-9]{{0,{MAX_DIGITS - 1}}}"
        self._core = re.compile(
            rf"(?<![A-Za-z])({alternation})(?![A-Za-z])([_\- ]?)({digits})(?![0-9])",
            re.IGNORECASE | re.ASCII,
        )

    # -- complete matches -------------------------------------------------------------
    def scan(self, text: str, prev: str = "") -> list[PlaceholderMatch]:
        """Every variant in `text`, left to right, non-overlapping.

        `prev` is the character before `text` (a stream's released context), for the bare
        form's left boundary. A variant at the very end may still grow (more digits, a second
        closer): streams hold such tails back (`hold_from`) before they trust a match.
        """
        found: list[PlaceholderMatch] = []
        last_end = 0
        for core in self._core.finditer(text):
            match = self._expand(text, core, prev)
            if match is not None and match.start >= last_end:
                found.append(match)
                last_end = match.end
        return found

    def _expand(self, text: str, core: re.Match[str], prev: str) -> PlaceholderMatch | None:
        cs, ce = core.span()
        label_text, sep, digits = core.group(1), core.group(2), core.group(3)
        label, n = label_text.upper(), int(digits)
        sep_at = core.start(2)
        bracket = self._bracket(text, cs, ce)
        if bracket is not None:
            return PlaceholderMatch(bracket[0], bracket[1], label, n, sep_at, len(sep))
        before = text[cs - 1] if cs > 0 else prev[-1:]
        after = text[ce] if ce < len(text) else ""
        if before and before in _QUOTES and after == before:
            return PlaceholderMatch(cs, ce, label, n, sep_at, len(sep))
        bare = sep == "_" and label_text == label
        if bare and before not in _BARE_NEIGHBOURS and after not in _BARE_NEIGHBOURS:
            return PlaceholderMatch(cs, ce, label, n, sep_at, 1)
        return None

    @staticmethod
    def _bracket(text: str, cs: int, ce: int) -> tuple[int, int] | None:
        left = cs - 1 if cs > 0 and text[cs - 1] == " " else cs
        right = ce + 1 if ce < len(text) and text[ce] == " " else ce
        if left == 0 or text[left - 1] not in _CLOSE:
            return None
        opener = text[left - 1]
        closer = _CLOSE[opener]
        if left >= 2 and text[left - 2] == opener and text[right : right + 2] == closer * 2:
            return (left - 2, right + 2)
        if text[right : right + 1] == closer:
            return (left - 1, right + 1)
        return None

    # -- streaming ----------------------------------------------------------------------
    def hold_from(self, text: str, prev: str = "") -> int:
        """Smallest index whose suffix could still become (or grow into) a variant; len(text)
        when none can. Looks at the last `MAX_VARIANT_LEN` characters only."""
        first = max(0, len(text) - MAX_VARIANT_LEN)
        for found in _CAN_START.finditer(text, first):  # the only characters that can
            i = found.start()
            before = text[i - 1] if i > 0 else prev[-1:]
            if self._viable(text, i, before):
                return i
        return len(text)

    def _viable(self, text: str, i: int, before: str) -> bool:
        """Is text[i:] a proper prefix of a variant, or a variant that more text could change?"""
        end = len(text)
        ch = text[i]
        p = i + 1
        if ch in _CLOSE:
            mode, opener = "bracket", ch
            if p < end and text[p] == ch:
                p += 1
            count = p - i
            if p < end and text[p] == " ":
                p += 1
        elif ch in _QUOTES:
            mode, opener, count = "quote", ch, 0
        elif "A" <= ch <= "Z" and before not in _BARE_NEIGHBOURS:
            mode, opener, count, p = "bare", "", 0, i
        else:
            return False
        if p == end:
            return True
        start = p
        while p < end and p - start < MAX_LABEL and text[p].isascii() and text[p].isalpha():
            p += 1
        word = text[start:p]
        if mode == "bare" and not word.isupper():
            return False
        if p == end:
            return bool(word) and (word.upper() in self.labels or word.upper() in self._prefixes)
        if word.upper() not in self.labels:
            return False
        return self._viable_tail(text, p, mode, opener, count)

    @staticmethod
    def _viable_tail(text: str, p: int, mode: str, opener: str, count: int) -> bool:
        end = len(text)
        if text[p] in _SEPS and (mode != "bare" or text[p] == "_"):
            p += 1
            if p == end:
                return True
        elif mode == "bare":
            return False
        if text[p] not in "123456789":
            return False
        digits = p
        while p < end and p - digits < MAX_DIGITS and "0" <= text[p] <= "9":
            p += 1
        if p == end:
            return True
        if mode != "bracket":
            return False  # complete (or impossible): decided by the characters present
        if text[p] == " ":
            p += 1
            if p == end:
                return True
        closer = _CLOSE[opener]
        if text[p] != closer:
            return False
        return count == 2 and p + 1 == end  # "[[EMAIL_1]" may still get its second "]"

    # -- inbound -------------------------------------------------------------------------
    def defang(self, text: str) -> str:
        """Make every variant in client text unparseable: its separator becomes "#".

        `[EMAIL_1]` -> `[EMAIL#1]`; the model sees what the client typed, minus the power to
        be restored into a value (docs/llm.md, "Text the client types").
        """
        matches = self.scan(text)
        if not matches:
            return text
        out: list[str] = []
        last = 0
        for m in matches:
            out.append(text[last : m.sep_at])
            out.append("#")
            last = m.sep_at + m.sep_len
        out.append(text[last:])
        return "".join(out)
