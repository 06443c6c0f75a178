"""Locales as data: one YAML file per language (`locales/<lang>.yaml`), merged per config.

A locale is `<language>-<REGION>` (`de-DE`, `pt-BR`). The language picks the word lists
(context words per type, the look-alike prunes, month names, name intro phrases, street
words); the region picks the phone numbering plan, postcode shape and national ids. Adding a
language is adding a file: nothing in the code names a word of it.

The merged `Lexicon` is what the recognizers compile their patterns from; it is built once
per distinct locale list (`lexicon_for`, cached) and is immutable.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import phonenumbers
import yaml

from coatcheck.middleware.detect.errors import ConfigError

__all__ = [
    "DEFAULT_LOCALES",
    "Lexicon",
    "Locale",
    "available_languages",
    "lexicon_for",
    "parse_locale",
    "words_regex",
]

DEFAULT_LOCALES = ("en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "it-IT", "nl-NL", "pt-BR")
_LOCALE = re.compile(r"([a-z]{2})-([A-Z]{2})")


@dataclass(frozen=True, slots=True)
class Locale:
    """A language (word lists) and a region (numbering plan, ids, postcodes)."""

    language: str
    region: str

    @property
    def code(self) -> str:
        """The `ll-RR` form."""
        return f"{self.language}-{self.region}"


@functools.cache
def available_languages() -> frozenset[str]:
    """Languages that have a data file shipped with the package."""
    folder = resources.files("coatcheck.middleware.detect") / "locales"
    return frozenset(
        item.name.removesuffix(".yaml") for item in folder.iterdir() if item.name.endswith(".yaml")
    )


def parse_locale(code: str) -> Locale:
    """`de-DE` -> Locale; a ValueError names what is wrong, not the input."""
    match = _LOCALE.fullmatch(code)
    if match is None:
        raise ValueError("a locale is <language>-<REGION>, e.g. de-DE")
    language, region = match.groups()
    if language not in available_languages():
        known = ", ".join(sorted(available_languages()))
        raise ValueError(f"no data file for this language; shipped: {known}")
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("unknown region (ISO 3166 alpha-2, as phone numbering plans know it)")
    return Locale(language, region)


@functools.cache
def _language_file(language: str) -> dict[str, Any]:
    path = resources.files("coatcheck.middleware.detect") / "locales" / f"{language}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ConfigError(f"locales/{language}.yaml", "not a mapping")
    return data


def _words(data: dict[str, Any], *path: str) -> tuple[str, ...]:
    node: Any = data
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    if node is None:
        return ()
    if not isinstance(node, list) or not all(isinstance(w, str) for w in node):
        raise ConfigError(".".join(path), "must be a list of strings")
    return tuple(node)


def _merge(*lists: tuple[str, ...]) -> tuple[str, ...]:
    """Union in first-seen order (deterministic patterns), case kept."""
    seen: dict[str, None] = {}
    for words in lists:
        for word in words:
            seen.setdefault(word, None)
    return tuple(seen)


@dataclass(frozen=True)
class Lexicon:
    """The word lists of the configured locales, merged (union) per key."""

    locales: tuple[Locale, ...]
    context: dict[str, tuple[str, ...]]
    prune: tuple[str, ...]
    fillers: tuple[str, ...]
    units: tuple[str, ...]
    months: tuple[str, ...]
    ordinals: tuple[str, ...]
    email_at: tuple[str, ...]
    email_dot: tuple[str, ...]
    name_intro: tuple[str, ...]
    name_weak_intro: tuple[str, ...]
    name_after: tuple[str, ...]
    sign_off: tuple[str, ...]
    titles: tuple[str, ...]
    not_names: frozenset[str]
    street_suffixes: tuple[str, ...]
    street_prefixes: tuple[str, ...]
    street_endings: tuple[str, ...]
    street_units: tuple[str, ...]
    stopwords: dict[str, frozenset[str]]  # language -> its function words

    @property
    def languages(self) -> tuple[str, ...]:
        """The configured languages, in config order, once each."""
        return tuple(dict.fromkeys(locale.language for locale in self.locales))

    @property
    def regions(self) -> tuple[str, ...]:
        """The configured regions, in config order, once each."""
        return tuple(dict.fromkeys(locale.region for locale in self.locales))

    def context_for(self, entity_type: str) -> tuple[str, ...]:
        """Context words of a type across the configured languages (empty if none)."""
        return self.context.get(entity_type, ())

    @property
    def all_stopwords(self) -> frozenset[str]:
        """Every configured language's function words (lower case)."""
        return frozenset().union(*self.stopwords.values())


@functools.cache
def lexicon_for(codes: tuple[str, ...] = DEFAULT_LOCALES) -> Lexicon:
    """The merged lexicon of these locales (cached: one per distinct config)."""
    locales = tuple(parse_locale(code) for code in codes)
    files = [_language_file(lang) for lang in dict.fromkeys(loc.language for loc in locales)]
    context: dict[str, tuple[str, ...]] = {}
    for data in files:
        section = data.get("context") or {}
        if not isinstance(section, dict):
            raise ConfigError("context", "must be a mapping of TYPE -> words")
        for entity_type in section:
            context[entity_type] = _merge(
                context.get(entity_type, ()), _words(data, "context", entity_type)
            )

    def merged(*path: str) -> tuple[str, ...]:
        return _merge(*(_words(data, *path) for data in files))

    return Lexicon(
        locales=locales,
        context=context,
        prune=merged("prune"),
        fillers=merged("fillers"),
        units=merged("units"),
        months=merged("months"),
        ordinals=merged("ordinals"),
        email_at=merged("email", "at"),
        email_dot=merged("email", "dot"),
        name_intro=merged("names", "intro"),
        name_weak_intro=merged("names", "weak_intro"),
        name_after=merged("names", "after_name"),
        sign_off=merged("names", "sign_off"),
        titles=merged("names", "titles"),
        not_names=frozenset(w.lower() for w in merged("names", "not_names")),
        street_suffixes=merged("address", "suffixes"),
        street_prefixes=merged("address", "prefixes"),
        street_endings=merged("address", "endings"),
        street_units=merged("address", "units"),
        stopwords={
            str(data["language"]): frozenset(w.lower() for w in _words(data, "stopwords"))
            for data in files
        },
    )


def words_regex(words: tuple[str, ...], *, casefold: bool = True) -> str:
    """An alternation of escaped words that prefers the longest ("card code" beats "card").

    Built as a trie ("card(?: code)?" rather than "card code|card"): the regex engine tries
    one branch per distinct next character instead of every word at every position, several
    times faster on the long multi-language lists, and it matches exactly what the flat
    longest-first alternation matches, with the same preference. `casefold=True` is for
    patterns compiled with IGNORECASE (words lower-cased first, so "Via" and "via" share a
    branch); `casefold=False` keeps the words exactly as given.
    """
    root: _Trie = {}
    for word in words:
        node = root
        for char in _fold(word) if casefold else word:
            node = node.setdefault(char, {})
        if node is not root:
            node[""] = {}  # end of a word
    return _trie_regex(root, top=True)


_Trie = dict[str, "_Trie"]


def _fold(word: str) -> str:
    """Lower case, one character for one (what IGNORECASE compares), so offsets never move."""
    return "".join(low if len(low := char.lower()) == 1 else char for char in word)


def _trie_regex(node: _Trie, top: bool = False) -> str:
    branches = [re.escape(ch) + _trie_regex(child) for ch, child in sorted(node.items()) if ch]
    if not branches:
        return ""
    body = "|".join(branches)
    if "" in node:  # a word ends here: the longer words first, then this one
        return f"(?:{body})?"
    return body if top or len(branches) == 1 else f"(?:{body})"
