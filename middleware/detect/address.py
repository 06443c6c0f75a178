"""Street addresses (type ADDRESS) by pattern, so they are not left to a statistical model.

The small spaCy model tags a street line as a date, a number or an organisation far more
often than as a place; a house number next to a street word is a much stronger signal.
Three shapes, words as data:

- number first, a street-type word last (US, UK, Australia): "221B Baker Street, Apt 4";
- a street-type word first, the number last (French, Italian, Spanish, Portuguese, Polish):
  "Via Tasso 129", "ul. Słowicza 10", "Avenue d'Ouchy 5";
- one word ending in a street suffix, then the number (German, Dutch, Nordic, Finnish,
  Hungarian): "Heirstraat 58", "Östbygatan 36", "Tawastintie 44";
- an apartment, suite or post-office box on its own: "Apt. 482", "Suite 12", "P.O. Box 149".

City, region and country are left out (NER's LOCATION); so is "a name and a number" with no
street word ("Palackého 496"), which cannot be told apart from "Windows 10" by pattern.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Final

from coatcheck.middleware.detect.locales import Lexicon, lexicon_for, words_regex
from coatcheck.middleware.detect.recognizers import Candidate
from coatcheck.middleware.detect.scan import Scan, ascii_twin_or_self

__all__ = ["ADDRESS_TYPE", "AddressFinder", "absorb_places", "find_addresses"]

ADDRESS_TYPE: Final = "ADDRESS"
_SCORE: Final = 0.6

# Street words shipped in code (beyond the locale files): English suffixes for any English
# locale, and the Nordic, Finnish, Hungarian and Slavic forms the NER bench data carries.
_BASE_PREFIXES: Final = ("ul.", "Ul.", "ulica", "al.", "Al.", "Aleja", "Os.")
_BASE_ENDINGS: Final = (
    "gatan",
    "vägen",
    "gränd",
    "torget",
    "gata",
    "gate",
    "gaten",
    "veien",
    "vegen",
    "vej",
    "gade",
    "stræde",
    "stræti",
    "katu",
    "tie",
    "kuja",
    "polku",
    "väylä",
    "tér",
    "utca",
    "körút",
)
_NAME: Final = r"[^\W\d_][\w'\u2019.-]*"  # a word that starts with a letter
_CAP: Final = r"[^\W\d_a-z][\w'\u2019.-]*"  # ... with a capital (any script)
_PARTICLE: Final = (
    r"(?:(?:de|del|della|delle|di|da|do|dos|das|du|des|la|le|los|las|van|der|den)\s+"
    r"|d['\u2019])"
)
_NUMBER: Final = r"\d{1,6}[A-Za-z]?(?:[-/]\d{1,4}[A-Za-z]?)?"
# A house number that starts a shape: `(?<![\w.,/-]){_NUMBER}` written so that the regex
# engine skips to digits (the lookbehind after the first digit; see `recognizers._lead`).
_LEAD_NUMBER: Final = r"\d(?<![\w.,/-]\d)\d{0,5}[A-Za-z]?(?:[-/]\d{1,4}[A-Za-z]?)?"
_BIS: Final = r"(?:[ \t]?(?:bis|ter|quater|[A-Da-d])(?![\w]))?"
# Postcodes of the shipped regions (one alternation: a postcode is only taken right after
# a street, where a wrong region's shape costs nothing). A Brazilian CEP is typed with its
# dash or without ("01310-200", "01310200").
_POSTCODE: Final = (
    r"(?:\d{8}|\d{5}-\d{3}|\d{5}(?:-\d{4})?|\d{4}[ \t]?[A-Z]{2}(?![\w])"
    r"|[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}|\d{4})(?![\w-])"
)
# ... the same without a bare 4-digit number (that is a house number more often).
_POSTCODE_ALONE: Final = (
    r"(?:\d{8}|\d{5}-\d{3}|\d{5}(?:-\d{4})?|\d{4}[ \t]?[A-Z]{2}(?![\w])"
    r"|[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2})(?![\w-])"
)
# A town: one to three capitalised words, no digits, no dots (a dot ends the sentence:
# "1570 KM Etten. Bestelnummer A8387438" stops at Etten), joined by a blank or a hyphen
# and at most two particles ("Hoek van Holland", "Casa Grande de da Cunha"); after a
# postcode a town may start with a particle ("39000-678 da Mota").
_TOWN_WORD: Final = r"[^\W\d_a-z][^\W\d_]*(?:['\u2019][^\W\d_]+)*"
_TOWN_PARTICLE: Final = (
    r"(?:de|da|do|dos|das|di|del|du|des|la|le|les|l\u00e8s|sur|sous|en|aux|am|an|im|ob|bei"
    r"|aan|op|den|van|het|der)"
)
_CITY: Final = (
    rf"(?:{_TOWN_PARTICLE}[ \t]+)?{_TOWN_WORD}"
    rf"(?:[ \t-](?:{_TOWN_PARTICLE}[ \t-]){{0,2}}{_TOWN_WORD}){{0,2}}"
)
# ", 10115 Berlin", ", 1012 NX Amsterdam", " - 01310-200 São Paulo", ", London SW1A 2AA",
# ", Springfield, IL 62704".
# (Every postcode holds a digit, and what stands before its first digit in a tail is
# letters, apostrophes, blanks, commas and dashes: the lookahead skips, in one pass, the
# tails that cannot match, where the town words would be tried split at every letter.)
_TAIL: Final = (
    rf"(?:(?=(?:[^\W\d_]|['\u2019 \t,-])*+\d)[ \t]*[,-]?[ \t]*(?:{_POSTCODE}[ \t]+{_CITY}"
    rf"|{_CITY}[ \t]*,?[ \t]*(?:[A-Z]{{2}}[ \t]+)?{_POSTCODE}))?"
)

# The ending shapes need their word (or a word and the ending word) right before blanks and
# a digit; the endings are word characters and dashes ("str." adds a dot). Checked first,
# in one pass over the word, instead of trying the endings at each of its letters.
_ENDING_AHEAD: Final = r"(?=[\w.-]*+[ \t]+\d)"
_WORD_ENDING_AHEAD: Final = r"(?=[\w.-]*+[ \t]+\d|[\w-]*+ [\w.-]*+[ \t]+\d)"

_LETTERS: Final = re.compile(r"[^\W\d_]+")
_AFTER_ENDING: Final = -1  # `AddressFinder._starts_at`: from before the first street ending


class AddressFinder:
    """Street-address candidates for the configured languages' street words."""

    def __init__(self, lexicon: Lexicon) -> None:
        street_suffixes = lexicon.street_suffixes or ("Street", "St", "Road", "Rd")
        suffixes = words_regex(street_suffixes, casefold=False)
        prefixes = words_regex(lexicon.street_prefixes + _BASE_PREFIXES, casefold=False)
        any_case_prefixes = words_regex(lexicon.street_prefixes + _BASE_PREFIXES)
        # Prefix first: as written ("Via Roma 10") or all lower case ("via Roma 10"), never
        # other casings ("in der Hauptstraße" is no "In der ..." street).
        lower_prefixes = words_regex(
            tuple(p.lower() for p in lexicon.street_prefixes if " " not in p), casefold=False
        )
        endings = words_regex(lexicon.street_endings + _BASE_ENDINGS)
        units = words_regex(lexicon.street_units or ("Apt", "Suite"), casefold=False)
        num_tail = r"\.?[ \t]*#?[ \t]*\d{1,6}[A-Za-z]?"
        unit_tail = rf"(?:,?[ \t]+(?:{units}){num_tail})?"
        patterns = (
            # 12 Main St / 221B Baker Street, Apt 4 / 55 A. Diakou Street ("{_CAP}+": a
            # word before blanks gives back no letters, possessive)
            rf"{_LEAD_NUMBER}[ \t]+(?:{_CAP}+[ \t]+){{1,4}}(?:{suffixes})\b\.?{unit_tail}{_TAIL}",
            # 12 rue de la Paix / 214, avenue Charlotte Gilles / 3 bis boulevard Voltaire
            rf"{_LEAD_NUMBER}{_BIS},?[ \t]+(?i:{any_case_prefixes})[ \t]+{_PARTICLE}*{_CAP}"
            rf"(?:[ \t]+{_PARTICLE}*{_CAP}){{0,3}}{_TAIL}",
            # Via Tasso 129 / Calle de Alcalá, 50 / Rua das Flores, 123 / ul. Słowicza 10
            # ... or the street and its postcode and town, no house number ("boulevard de
            # Loiseau, 66632 Ramosville", "Estrada de Porto, 87831-561 Rodrigues")
            rf"(?<![\w.])(?:{prefixes}|{lower_prefixes})[ \t]+{_PARTICLE}*{_CAP}"
            rf"(?:[ \t]+{_PARTICLE}*{_NAME}){{0,4}}?"
            rf",?[ \t]+(?:{_POSTCODE_ALONE}[ \t]+{_CITY}"
            rf"|{_NUMBER}{_BIS}(?![\w]){unit_tail}{_TAIL})",
            # Hauptstraße 5 / Heirstraat 58 / Östbygatan 36 / Hauptstr. 5a, 10115 Berlin
            rf"(?<![\w-])[^\W\d_a-z]{_ENDING_AHEAD}[\w-]{{2,40}}(?i:{endings})[ \t]+"
            rf"{_NUMBER}(?![\w]){unit_tail}{_TAIL}",
            rf"(?<![\w-])[^\W\d_a-z]{_WORD_ENDING_AHEAD}[\w-]{{2,40}}[ -](?i:{endings})[ \t]+"
            rf"{_NUMBER}(?![\w]){unit_tail}{_TAIL}",
            # Flat 4, Thomas Lodge / Studio 53, Short Ranch (UK: the unit before the street)
            rf"(?<![\w.])(?:{units})[ \t]+\d{{1,5}}[A-Za-z]?,?[ \t]+(?:{_CAP}[ \t]+){{1,4}}"
            rf"(?:{suffixes})\b\.?{_TAIL}",
            # Apt. 482 / Suite 12 / P.O. Box 149
            rf"\b(?:Apt|Apartment|Suite|Ste){num_tail}\b",
            r"\bP\.?[ \t]?O\.?[ \t]?Box[ \t]+\d{1,6}\b",
        )
        self._compiled = tuple(re.compile(p) for p in patterns)
        self._compiled_ascii = tuple(map(ascii_twin_or_self, self._compiled))  # (ASCII text)
        # Each shape needs its street word right after a word start (and, for the endings,
        # blanks and a digit right after it): a message without one skips the shape. The
        # gates read the lower-cased letter runs of the message (one findall, set lookups).
        suffix_runs = _first_runs(street_suffixes)
        prefix_runs = _first_runs(lexicon.street_prefixes + _BASE_PREFIXES)
        unit_runs = _first_runs(lexicon.street_units or ("Apt", "Suite"))
        apt_runs = _first_runs(("Apt", "Apartment", "Suite", "Ste"))
        # Which word each shape needs (bits: 1 suffix, 2 prefix, 4 unit, 8 "Apt"-like,
        # 16 "box"); shapes 3 and 4 need an ending before blanks and a digit (bit 32).
        self._needs = (1, 2, 2, 32, 32, 1 | 4, 8, 16)
        # Where a shape's matches can start, when the gate knows: at a word of this bit
        # (shapes that start with their street word), or not before the first street ending
        # (the ending shapes: `_AFTER_ENDING`); 0: anywhere.
        self._starts_at = (0, 0, 2, _AFTER_ENDING, _AFTER_ENDING, 4, 8, 0)
        # (the longest ending, and what an ending shape holds before its ending)
        self._before_ending = max(map(len, lexicon.street_endings + _BASE_ENDINGS)) + 42
        self._word_bits: dict[str, int] = {}
        for bit, words in ((1, suffix_runs), (2, prefix_runs), (4, unit_runs), (8, apt_runs)):
            for word in words:
                self._word_bits[word] = self._word_bits.get(word, 0) | bit
        self._word_bits["box"] = self._word_bits.get("box", 0) | 16
        self._gate_words = frozenset(self._word_bits)
        self._endings = tuple(_lower(w) for w in lexicon.street_endings + _BASE_ENDINGS)
        # (their last two characters: a set look-up spares most runs the 64 `endswith` tests)
        if min(map(len, self._endings)) < 2:
            raise ValueError("a street ending of one character")
        self._ending_tails = frozenset(ending[-2:] for ending in self._endings)

    @property
    def gate_words(self) -> tuple[str, ...]:
        """The words whose letter runs the shapes need (for the detector's `WordIndex`)."""
        return tuple(sorted(self._gate_words))

    def find(
        self, text: str, scan: Scan | None = None, starts: list[int] | None = None
    ) -> list[Candidate]:
        """ADDRESS candidates in normalised text (`scan`: the message's, when the caller has
        it; `starts`: where its `WordIndex` found one of `gate_words`); every shape needs a
        digit and a street word, so most messages run no pattern."""
        if scan is None:
            scan = Scan(text)
        if not scan.digits:
            return []
        folded = scan.folded
        words: list[tuple[int, int]] | None = None  # (start, bits) of the street words
        ending = -1
        if folded is None:
            have = 63  # cannot fold: every shape runs
        else:
            have, words = self._words_present(folded, starts)
            ending = self._ending_before_run(folded, scan)
            if ending >= 0:
                have |= 32
            if not have:
                return []
        candidates: list[Candidate] = []  # (a list, not a generator: most calls find none)
        compiled = self._compiled_ascii if text.isascii() else self._compiled
        for regex, needs, starts_at in zip(compiled, self._needs, self._starts_at, strict=True):
            if have & needs != needs:
                continue
            if starts_at == _AFTER_ENDING and ending >= 0:
                found: Iterable[re.Match[str]] = regex.finditer(
                    text, max(0, ending - self._before_ending)
                )
            elif starts_at and words is not None:
                found = _matches_at(regex, text, [p for p, bits in words if bits & starts_at])
            else:
                found = regex.finditer(text)
            for match in found:
                start, end = match.span()
                while end > start and text[end - 1] in " \t,-":
                    end -= 1
                candidates.append(Candidate(start, end, ADDRESS_TYPE, ADDRESS_TYPE, False, _SCORE))
        return candidates

    def _words_present(
        self, folded: str, starts: list[int] | None
    ) -> tuple[int, list[tuple[int, int]] | None]:
        """The bits of the street words whose whole letter run occurs in the text, and
        (start, bits) of each: at the word starts where the index saw one (`starts`), else
        anywhere (then with no starts)."""
        bits = self._word_bits
        have = 0
        if starts is None:
            for run in self._gate_words.intersection(_LETTERS.findall(folded)):
                have |= bits[run]
            return have, None
        words = []
        for p in starts:
            match = _LETTERS.match(folded, p)
            if match is not None and (found := bits.get(match.group(), 0)):
                have |= found
                words.append((p, found))
        return have, words

    def _ending_before_run(self, folded: str, scan: Scan) -> int:
        """Where the first street ending ends that blanks and a digit follow (the shapes
        that end a word with a street ending, "Heirstraat 58", need one), or -1; a digit
        after blanks after a letter starts a digit run, so only the runs' starts are
        looked at."""
        for start, _, _ in scan.runs:
            end = start
            while end and folded[end - 1] in " \t":
                end -= 1
            if (
                end < start
                and folded[end - 2 : end] in self._ending_tails
                and folded.endswith(self._endings, 0, end)
            ):
                return end
        return -1


def _matches_at(regex: re.Pattern[str], text: str, starts: list[int]) -> Iterator[re.Match[str]]:
    """What `regex.finditer(text)` finds when every match starts at one of `starts` (in
    order): the match at each start, skipping starts inside the previous match."""
    last = 0
    for start in starts:
        if start >= last and (match := regex.match(text, start)) is not None:
            yield match
            last = match.end()


def _lower(word: str) -> str:
    """Lower case, one character for one (what the gate's folded text holds)."""
    return "".join(low if len(low := char.lower()) == 1 else char for char in word)


def _first_runs(words: tuple[str, ...]) -> frozenset[str]:
    """The first letter run of each word, lower case ("ul." -> "ul", "An der" -> "an")."""
    return frozenset(m.group() for w in words if (m := _LETTERS.search(w.lower())) is not None)


def find_addresses(text: str) -> Iterator[Candidate]:
    """ADDRESS candidates with the default locales' street words."""
    yield from _default_finder().find(text)


@functools.cache
def _default_finder() -> AddressFinder:
    return AddressFinder(lexicon_for())


# Between a street line and the place that follows it on the same line: commas, spaces and
# at most three more capitalised words or postcodes ("12 Main St, Springfield, IL 62704 USA").
_PLACE_GAP: Final = re.compile(rf"[ \t]*,?[ \t]*(?:(?:{_CAP}|\d{{3,6}})[ \t]*,?[ \t]*){{0,3}}")


def absorb_places(text: str, kept: list[Candidate]) -> list[Candidate]:
    """A LOCATION right after a street address on the same line is the rest of that postal
    address (town, region, country): one ADDRESS from the street to the place.

    `kept` is resolved (sorted, no overlaps); the result is too.
    """
    out: list[Candidate] = []
    for candidate in kept:
        if (
            out
            and candidate.entity_type == "LOCATION"
            and out[-1].entity_type == ADDRESS_TYPE
            and out[-1].rule == ADDRESS_TYPE
            and _PLACE_GAP.fullmatch(text, out[-1].end, candidate.start)
        ):
            out[-1] = out[-1].with_end(candidate.end)
            continue
        out.append(candidate)
    return out
