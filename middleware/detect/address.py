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

import re
from collections.abc import Iterator
from dataclasses import replace

from coatcheck.middleware.detect.recognizers import Candidate

__all__ = ["ADDRESS_TYPE", "absorb_places", "find_addresses"]

ADDRESS_TYPE = "ADDRESS"
_SCORE = 0.6

# English street types and their common abbreviations (USPS suffix list, the usual ones).
_SUFFIXES = (
    "Street|St|Avenue|Ave|Av|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl"
    "|Terrace|Ter|Circle|Cir|Square|Sq|Parkway|Pkwy|Highway|Hwy|Crescent|Cres|Close|Row"
    "|Trail|Trl|Alley|Plaza|Grove|Mews|Pike|Turnpike|Expressway|Freeway|Causeway"
)
# Street words that come before the name (Romance and Slavic languages).
_PREFIXES = (
    r"Rue|Route|Avenue|Boulevard|Bd|Chemin|Allée|Impasse|Quai|Via|Viale|Piazza|Piazzale"
    r"|Corso|Largo|Vicolo|Strada|Calle|Carrer|Avenida|Av\.|Avda\.|Paseo|Plaza|Ctra\.|Camino"
    r"|Rua|R\.|Travessa|Praça|ul\.|Ul\.|ulica|al\.|Al\.|Aleja|Os\."
)
# Endings of one-word street names (German, Dutch, Nordic, Finnish, Hungarian, Icelandic).
_ENDINGS = (
    "straße|strasse|str\\.|gasse|weg|allee|platz|damm|ufer|straat|laan|gracht|plein|dijk"
    "|kade|gatan|vägen|gränd|torget|gata|gate|gaten|veien|vegen|vej|gade|stræde|stræti|katu"
    "|tie|kuja|polku|väylä|tér|utca|körút"
)
_NAME = r"[^\W\d_][\w'\u2019.-]*"  # a word that starts with a letter
_CAP = r"[^\W\d_a-z][\w'\u2019.-]*"  # ... with a capital (any script)
_PARTICLE = r"(?:(?:de|del|della|delle|di|da|do|dos|das|du|des|la|le|los|las)\s+|d['\u2019])"
_NUMBER = r"\d{1,6}[A-Za-z]?(?:[-/]\d{1,4}[A-Za-z]?)?"
_NUM_TAIL = r"\.?[ \t]*#?[ \t]*\d{1,6}[A-Za-z]?"
_UNIT = rf"(?:Apt|Apartment|Suite|Ste){_NUM_TAIL}"  # on its own: an apartment or suite
_UNIT_TAIL = rf"(?:,?[ \t]+(?:Apt|Apartment|Suite|Ste|Unit|Flat|Room|Fl|Floor){_NUM_TAIL})?"

_PATTERNS = (
    # 12 Main St / 221B Baker Street, Apt 4 / 55 A. Diakou Street
    rf"(?<![\w.,/-]){_NUMBER}[ \t]+(?:{_CAP}[ \t]+){{1,4}}(?:{_SUFFIXES})\b\.?{_UNIT_TAIL}",
    # Via Tasso 129 / Avenue d'Ouchy 5 / ul. Słowicza 10
    rf"(?<![\w.])(?:{_PREFIXES})[ \t]+{_PARTICLE}*{_CAP}(?:[ \t]+{_PARTICLE}*{_NAME}){{0,4}}?"
    rf"[ \t]+{_NUMBER}\b{_UNIT_TAIL}",
    # Heirstraat 58 / Östbygatan 36 / Berings gate 210
    rf"\b[^\W\d_a-z][^\W\d_]{{2,}}(?:{_ENDINGS})[ \t]+{_NUMBER}\b{_UNIT_TAIL}",
    rf"\b{_CAP}[ \t]+(?:{_ENDINGS})[ \t]+{_NUMBER}\b{_UNIT_TAIL}",
    # Apt. 482 / Suite 12 / P.O. Box 149
    rf"\b{_UNIT}\b",
    r"\bP\.?[ \t]?O\.?[ \t]?Box[ \t]+\d{1,6}\b",
)
_COMPILED = tuple(re.compile(p) for p in _PATTERNS)


def find_addresses(text: str) -> Iterator[Candidate]:
    """ADDRESS candidates in normalised text; every shape needs a digit, so digit-free
    messages are skipped without running a pattern."""
    if not any(ch.isdigit() for ch in text):
        return
    for regex in _COMPILED:
        for match in regex.finditer(text):
            start, end = match.span()
            while end > start and text[end - 1] in " \t,":
                end -= 1
            yield Candidate(start, end, ADDRESS_TYPE, ADDRESS_TYPE, False, _SCORE)


# Between a street line and the place that follows it on the same line: commas, spaces and
# at most three more capitalised words or postcodes ("12 Main St, Springfield, IL 62704 USA").
_PLACE_GAP = re.compile(rf"[ \t]*,?[ \t]*(?:(?:{_CAP}|\d{{3,6}})[ \t]*,?[ \t]*){{0,3}}")


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
            out[-1] = replace(out[-1], end=candidate.end)
            continue
        out.append(candidate)
    return out
