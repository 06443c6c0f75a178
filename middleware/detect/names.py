"""Person names without a model (type PERSON): intro phrases, titles, sign-offs, and a
first-name gazetteer, in every configured language.

- After an intro phrase ("my name is", "ich heiße", "je m'appelle", "me llamo", "mi chiamo",
  "ik heet", "meu nome é") the next one to four words are the name: capitalised, or a known
  first name typed in lower case ("my name is jane doe").
- After a weaker phrase ("I'm", "this is", "ich bin", "je suis", "soy", "sono", "ik ben",
  "sou") only a known first name starts a name, or a capitalised word followed by
  "speaking" / "am Apparat" / "à l'appareil".
- After a title ("Mr", "Herr", "Mme", "Sra.", "Sig.ra", "Dhr.") the capitalised words.
- After a sign-off ("Best regards,", "Mit freundlichen Grüßen", "Cordialement") a known first
  name and the capitalised words that follow it.
- Anywhere: a known first name followed by one to three capitalised words ("Marie Dubois",
  "Jan de Vries").

The gazetteer is the multi-country first-name list shipped in `gender-guesser` (about 45,000
names from some 50 countries, ~4 MB in memory), minus every shipped language's function
words and the locales' `not_names` (words that are names too but mostly something else:
"Will", "May", "Mark"). Particles (de, van, der, da, dos, di, von, le...) join the words
of a name. Hits rank with the statistical tier (below patterns), like NER's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from importlib import resources
from typing import Final

from coatcheck.middleware.detect.locales import (
    Lexicon,
    available_languages,
    lexicon_for,
    words_regex,
)
from coatcheck.middleware.detect.recognizers import Candidate
from coatcheck.middleware.detect.scan import ascii_twin, fold

__all__ = ["NAME_RULE", "PERSON_TYPE", "NameFinder", "first_names"]

PERSON_TYPE: Final = "PERSON"

NAME_RULE: Final = "names"
_SCORE: Final = 0.48  # below NER's 0.5: the model wins a tie
_PARTICLES: Final = frozenset(
    [
        "de",
        "del",
        "della",
        "di",
        "da",
        "do",
        "dos",
        "das",
        "du",
        "des",
        "la",
        "le",
        "van",
        "der",
        "den",
        "von",
        "vom",
        "zu",
        "ten",
        "ter",
        "het",
        "y",
        "e",
        "i",
    ]
)
_WORD: Final = re.compile(r"[^\W\d_][\w'\u2019-]*")
_GAP: Final = re.compile(r"[ \t]+")
# Words as cue phrases start them ("i'm", "c'est", "sr.", "m'appelle"): where a cue may begin.
_TOKEN: Final = re.compile(r"(?<![\w'\u2019.])[^\W\d_][\w'\u2019]*\.?")
_NOT_BEFORE_CUE: Final = frozenset("'\u2019.")  # besides word characters ("l'Ami", "e.g.")
# A run of two or more capitalised-looking words (checked with str.isupper afterwards):
# the candidates for the gazetteer rule, found in one scan.
# (Led by its capital, the lookbehind after it, so the engine skips to capitals; a word
# never gives back characters: a blank or the end must follow it. The engine skips with
# the first class: `[A-Z\xaa-...]` holds every character `[^\W\d_a-z]` does and is two
# range tests a character, where the category class asks the Unicode tables for each;
# `(?<=[^\W\d_a-z])` then checks the one character it let through.)
_CAPS_RUN: Final = re.compile(
    r"[A-Z\xaa-\U0010ffff](?<=[^\W\d_a-z])(?<![\w'\u2019-][^\W\d_a-z])[\w'\u2019-]*+"
    r"(?:[ \t]+(?:(?:de|da|do|dos|das"
    r"|di|del|van|der|den|von|le|la|du|ten|ter)[ \t]+){0,2}[^\W\d_a-z][\w'\u2019-]*+){1,3}"
)
_CAPS_RUN_ASCII: Final = ascii_twin(_CAPS_RUN)


@functools.cache
def first_names() -> frozenset[str]:
    """Lower-case first names from gender-guesser's multi-country list, minus every shipped
    language's function words and not-names (so "will", "the", "per" are no names)."""
    folder = resources.files("gender_guesser") / "data" / "nam_dict.txt"
    every = lexicon_for(tuple(f"{lang}-US" for lang in sorted(available_languages())))
    blocked = every.all_stopwords | every.not_names | {m.lower() for m in every.months}
    names: set[str] = set()
    with folder.open(encoding="utf-8") as handle:
        for line in handle:
            if line[:1] in "#=" or len(line) < 4:
                continue
            parts = line.split()
            if len(parts) < 2 or "+" in parts[1]:
                continue
            name = parts[1].lower()
            if len(name) > 1 and name not in blocked:
                names.add(name)
    return frozenset(names)


def _variants(words: tuple[str, ...]) -> tuple[str, ...]:
    """Titles as people type them: capitalised or upper case, with or without a dot; one-
    and two-letter titles only with their dot ("M. Dupont", not "M Street")."""
    out: list[str] = []
    for word in words:
        base = word.rstrip(".")
        forms = [base[:1].upper() + base[1:], base.upper()]
        if len(base) > 3:
            forms.append(base.lower())  # "bonjour madame Dubois", "goedendag mevrouw Jansen"
        for form in forms:
            out.append(form + ".")
            if len(base) > 2 or "." in base:
                out.append(form)
    return tuple(out)


def _sentence_start(text: str, pos: int) -> bool:
    before = text[:pos].rstrip()
    return not before or before[-1] in ".!?:\n"


class NameFinder:
    """PERSON candidates for the configured languages."""

    def __init__(self, lexicon: Lexicon, names: frozenset[str] | None = None) -> None:
        self._names = first_names() if names is None else names
        self._stop = lexicon.all_stopwords
        self._not_names = lexicon.not_names
        self._months = frozenset(m.lower() for m in lexicon.months)
        strong = words_regex(lexicon.name_intro)
        weak = words_regex(lexicon.name_weak_intro)
        sign = words_regex(lexicon.sign_off)
        titles = words_regex(_variants(lexicon.titles), casefold=False)
        self._cue = re.compile(
            rf"(?P<strong>(?i:(?<!\w)(?:{strong})))[ \t]*[:,]?[ \t]+"
            rf"|(?P<weak>(?i:(?<!\w)(?:{weak})))[ \t]*,?[ \t]+"
            rf"|(?P<sign>(?i:(?<!\w)(?:{sign})))[ \t]*[,.!]?[ \t]*(?:\r?\n[ \t]*)?"
            rf"|(?P<title>(?<![\w.])(?:{titles}))[ \t]+"
        )
        cues = (
            *lexicon.name_intro,
            *lexicon.name_weak_intro,
            *lexicon.sign_off,
            *_variants(lexicon.titles),
        )
        self._first_words = frozenset(cue.split()[0].lower() for cue in cues if cue.split())
        self.cue_words: tuple[str, ...] = tuple(cues)
        # Where a cue can start: one scan of the lower-cased message for any cue word (the
        # titles lower-cased too: their case is checked by `_cue` at each hit). Most
        # messages have none, or one or two, instead of a test at each of ~20 word starts.
        any_cue = words_regex(tuple(cues))
        # (a lookahead: a cue may start inside another, "groet" in "met vriendelijke groet")
        self._cue_start = re.compile(rf"(?<![\w'\u2019.])(?=(?:{any_cue}))")
        after = words_regex(lexicon.name_after)
        self._after = re.compile(rf"[ \t]*,?[ \t]*(?i:{after})(?!\w)") if after else None

    def find(
        self, text: str, folded: str | bool | None = False, starts: list[int] | None = None
    ) -> list[Candidate]:
        """PERSON candidates in normalised text (`folded`: `scan.fold(text)` when the caller
        has it, False: not given; `starts`: where the caller's `WordIndex` found one of
        `cue_words`, None: not given)."""
        if folded is False:
            folded = fold(text)
        # Cue words found in the lower-cased copy start where a word starts (`_TOKEN`); the
        # old walk over every word start is kept for text that cannot be folded.
        if not isinstance(folded, str):
            cues: Iterable[int] = (m.start() for m in _TOKEN.finditer(text))
        elif starts is None:
            cues = (m.start() for m in self._cue_start.finditer(folded))
        else:  # the index's word starts: not after a word character; nor after these
            cues = (p for p in starts if not p or folded[p - 1] not in _NOT_BEFORE_CUE)
        found: list[Candidate] = []  # (a list, not a generator: called on every message)
        for start in cues:
            token = _TOKEN.match(text, start)
            if token is None or token.group().lower() not in self._first_words:
                continue
            cue = self._cue.match(text, start)
            if cue is None:
                continue
            kind = cue.lastgroup
            own_line = "\n" in cue.group()
            span = self._after_cue(text, cue.end(), kind or "", own_line)
            if span is not None:
                found.append(Candidate(span[0], span[1], PERSON_TYPE, NAME_RULE, False, _SCORE))
        names = self._names
        for run in (_CAPS_RUN_ASCII if text.isascii() else _CAPS_RUN).finditer(text):
            # (most runs hold no known first name before their last word: one C-level look)
            start, end = run.span()
            if names.isdisjoint(text[start:end].lower().split()[:-1]):
                continue
            span = self._gazetteer_run(text, start, end)
            if span is not None:
                found.append(
                    Candidate(span[0], span[1], PERSON_TYPE, NAME_RULE, False, _SCORE - 0.05)
                )
        return found

    def _after_cue(
        self, text: str, pos: int, kind: str, own_line: bool = False
    ) -> tuple[int, int] | None:
        words = self._words(text, pos, allow_lower=kind == "strong")
        if not words:
            return None
        first = text[words[0][0] : words[0][1]].lower()
        known = first in self._names and first not in self._not_names
        if kind == "strong" or kind == "title":
            return words[0][0], words[-1][1]
        if kind == "weak":
            after = self._after is not None and self._after.match(text, words[-1][1])
            if known or after:
                return words[0][0], words[-1][1]
            return None
        # sign-off: a known first name, or two capitalised words alone on the next line
        if known:
            return words[0][0], words[-1][1]
        rest = text[words[-1][1] :].split("\n", 1)[0]
        if own_line and len(words) >= 2 and not rest.strip():
            return words[0][0], words[-1][1]
        return None

    def _words(self, text: str, pos: int, allow_lower: bool) -> list[tuple[int, int]]:
        """Up to four name words from `pos`: capitalised (or, with `allow_lower`, a known
        first name and what follows it), particles between them; stops at a function word."""
        found: list[tuple[int, int]] = []
        lower_ok = False
        lead: int | None = None  # a particle before the first word ("van Wassenaar")
        while len(found) < 4:
            match = _WORD.match(text, pos)
            if match is None:
                break
            word = match.group()
            lowered = word.lower()
            if not found and lowered in _PARTICLES:  # "van der Avoirt": particles lead
                gap = _GAP.match(text, match.end())
                if gap is None:
                    break
                lead = match.start() if lead is None else lead
                pos = gap.end()
                continue
            if found and lowered in _PARTICLES:
                gap = _GAP.match(text, match.end())
                if gap is None:
                    break
                pos = gap.end()
                continue
            capital = word[0].isupper()
            if not found and not capital and allow_lower and lowered in self._names:
                lower_ok = True
            elif not capital and not lower_ok:
                break
            if lowered in self._stop:
                break
            if any(ch.isdigit() for ch in word):
                break
            found.append((lead, match.end()) if lead is not None and not found else match.span())
            gap = _GAP.match(text, match.end())
            if gap is None:
                break
            pos = gap.end()
        return found

    def _gazetteer_run(self, text: str, start: int, end: int) -> tuple[int, int] | None:
        """A known first name followed by capitalised words, inside a run of capitals (one
        that holds a known first name before its last word: `find` looked)."""
        words = list(_WORD.finditer(text, start, end))
        for index, match in enumerate(words[:-1]):
            word = match.group()
            lowered = word.lower()
            if not word[0].isupper() or lowered not in self._names or lowered in self._not_names:
                continue
            if _sentence_start(text, match.start()) and words[index + 1].group().lower() in (
                self._names
            ):
                continue  # "Tell Marie Dubois": a capitalised verb, then the name
            tail = [
                m
                for m in words[index + 1 :]
                if (m.group()[0].isupper() and not any(c.isdigit() for c in m.group()))
                or m.group().lower() in _PARTICLES
            ]
            last = None
            for m in tail:
                if m.group().lower() in _PARTICLES:
                    continue
                if m.group().lower() in self._stop or m.group().lower() in self._months:
                    break
                last = m
            if last is not None:
                return match.start(), last.end()
            return None
        return None
