"""What every finder asks of a message, worked out once per message.

Detection runs ~40 recognizers, the phone, name and address finders on every chat message,
and most messages hold none of their values: the cost is in ruling them out, and in CPython
it is counted in regex calls and Python steps. A `Scan` holds the cheap facts the gates need
(digit runs, long tokens and words, a lower-cased copy, and where the words of every list
the finders ask about occur: one `WordIndex` scan), each computed at most once and only
when a gate asks for it.

The gates of the digit-led recognizers read the digit runs: a pattern whose digits are joined
by at most one separator lies inside one run, and most such patterns say how many digits
that run holds (a National Insurance number's run holds exactly six), so the runs' digit
counts pick the recognizers worth running (`Detector._eligible`).

`fold` gives the lower-cased copy on which a pattern of lower-cased words, compiled without
IGNORECASE, matches exactly where the IGNORECASE pattern matches the original (several times
faster: the engine compares characters instead of case-folding each one). It is refused
(None) for the few characters where `str.lower` and the regex engine's case folding part
ways: those whose lower case is longer (U+0130) or depends on the context (final sigma),
and those IGNORECASE also matches with another letter (`re._compiler._EXTRA_CASES`: long s,
dotless i, micro sign, some Greek and Cyrillic letters, two ligatures).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "ASCII_SPACE",
    "DIGIT_RUN",
    "FOLDS_TO_ASCII",
    "LONG_TOKEN",
    "LONG_WORD",
    "Key",
    "Scan",
    "WordIndex",
    "ascii_twin",
    "ascii_twin_or_self",
    "digit_count",
    "fold",
    "leading",
    "spans",
]

# Digits joined by at most one separator: every digit-group pattern (cards, SSNs, NHS and
# passport numbers...) lies inside one such run, so its digit count is a safe gate.
DIGIT_RUN: Final = re.compile(r"\d(?:[ ./_-]?\d)*")
_SEPARATORS: Final = " ./_-"
_DROP_SEPARATORS: Final = str.maketrans("", "", _SEPARATORS)
# Words at least this long are kept (`Scan.long_words`): the shortest word pattern (a
# bech32 address) needs 14 word characters; the shortest token secret (a Slack token) 13
# characters without white space (`Scan.long_tokens`).
LONG_WORD: Final = 14
LONG_TOKEN: Final = 13
_LONG_WORD: Final = re.compile(rf"\w{{{LONG_WORD},}}")
# Characters on which lower-casing and IGNORECASE disagree (see the module docstring).
_FOLD_UNSAFE: Final = re.compile(
    "[\u0130\u03a3\u00b5\u0131\u017f\u0345\u0390\u03b0\u03b2\u03b5\u03b8\u03b9\u03ba\u03bc"
    "\u03c0\u03c1\u03c2\u03c3\u03c6\u03d0\u03d1\u03d5\u03d6\u03f0\u03f1\u03f5\u0432\u0434"
    "\u043e\u0441\u0442\u044a\u0463\u1c80-\u1c88\u1e61\u1e9b\u1fbe\u1fd3\u1fe3\ua64b"
    "\ufb05\ufb06]"
)


def ascii_twin(regex: re.Pattern[str]) -> re.Pattern[str]:
    """`regex` compiled with `re.ASCII`, for ASCII text (`str.isascii`, a flag look-up):
    there it matches exactly what `regex` matches, and faster where it has `\\w`, `\\b` or
    `\\d` (a table look-up per character instead of several Unicode property look-ups).

    On ASCII text the two differ only through `\\s`/`\\S` (Unicode `\\s` also matches the
    separators \\x1c-\\x1f: the twin spells it out as `ASCII_SPACE`) and, where the
    pattern ignores case, through the four non-ASCII letters Unicode case folding pairs
    with ASCII ones (U+0130, U+0131, U+017F, U+212A: `tests/detect/test_fast_paths.py`
    finds them, and the spaces, by trying every code point).
    Refused (ValueError): `\\S` inside a class, a verbose pattern; a case-insensitive one
    (the flag, or `(?i` inline) that holds one of the four (written, or as a `\\u`/`\\U`/
    `\\x` escape), a named or octal escape, or a class range with a non-ASCII end (it may
    span one)."""
    source = regex.pattern
    if regex.flags & re.VERBOSE or "(?x" in source:
        raise ValueError("a verbose pattern is not read for its twin")
    insensitive = regex.flags & re.IGNORECASE or "(?i" in source
    if insensitive and _MAY_FOLD_TO_ASCII.search(_ESCAPE.sub(_unescape, source)):
        raise ValueError("a case-insensitive pattern that may pair a letter with ASCII")
    if _CLASS_S.search(source):
        source = _spell_spaces(source)
    try:
        return re.compile(source, regex.flags & ~re.UNICODE | re.ASCII)
    except re.error as exc:  # (a class the spelling could not read)
        raise ValueError("no ASCII twin") from exc


# The ASCII characters Unicode `\s` matches (the test tries all 128).
ASCII_SPACE: Final = r"\t-\r\x1c-\x20"


def _spell_spaces(source: str) -> str:
    """`source` with each `\\s` written as `ASCII_SPACE` (a class, or inside its class) and
    each `\\S` outside a class as its negation; `\\S` inside a class is refused."""
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(source):
        char = source[index]
        if char == "\\":
            escape = source[index : index + 2]
            if escape == "\\s":
                out.append(ASCII_SPACE if in_class else f"[{ASCII_SPACE}]")
            elif escape == "\\S":
                if in_class:
                    raise ValueError("\\S inside a class has no ASCII twin")
                out.append(f"[^{ASCII_SPACE}]")
            else:
                out.append(escape)
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
            out.append(char)
            index += 1
            # a "]" first in a class (after any "^") is a literal
            for lead in ("^", "]"):
                if source.startswith(lead, index):
                    out.append(lead)
                    index += 1
            continue
        if char == "]" and in_class:
            in_class = False
        out.append(char)
        index += 1
    return "".join(out)


def ascii_twin_or_self(regex: re.Pattern[str]) -> re.Pattern[str]:
    """`ascii_twin`, or `regex` itself where it has none."""
    try:
        return ascii_twin(regex)
    except ValueError:
        return regex


_CLASS_S: Final = re.compile(r"(?<!\\)(?:\\\\)*\\[sS]")  # an unescaped \s or \S
# The letters that Unicode IGNORECASE pairs with ASCII ones.
FOLDS_TO_ASCII: Final = "\u0130\u0131\u017f\u212a"
# Code point escapes, read as their characters before the test below.
_ESCAPE: Final = re.compile(
    r"(?<!\\)((?:\\\\)*)\\(?:u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|x([0-9a-fA-F]{2}))"
)
# One of the four; an escape that may name one (a named character, an octal escape); a
# range with a non-ASCII end (it may span one; a dash right before "]" is a literal).
_MAY_FOLD_TO_ASCII: Final = re.compile(
    rf"[{FOLDS_TO_ASCII}]|(?<!\\)(?:\\\\)*\\(?:N|0|[0-7]{{3}})"
    r"|[^\x00-\x7f]-[^\]]|[^\[^]-[^\x00-\x7f]"
)


def _unescape(match: re.Match[str]) -> str:
    point = match.group(2) or match.group(3) or match.group(4)
    return match.group(1) + chr(int(point, 16))


_DIGIT_RUN_ASCII: Final = ascii_twin(DIGIT_RUN)


def leading(first: str, pattern: str, flags: int = 0) -> re.Pattern[str]:
    """`pattern`, tried only where the text has a character of the class `first` (which
    must admit every character a match of `pattern` can start with); read its matches
    with `spans`.

    The regex engine skips ahead to a candidate first character only when the pattern
    itself starts with a character class; a pattern that starts with a lookbehind or an
    optional part is tried at every position of the text. Here each match is that first
    character alone, and `pattern` (lookbehind included) is tested from it inside a
    lookahead whose group 1 holds its match. `pattern` must have no numbered
    backreferences (its groups move up by one).
    """
    return re.compile(rf"{first}(?<=(?=({pattern})).)", flags)


def spans(regex: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    """The spans `finditer` of the original pattern gives, from a `leading` regex: the
    non-overlapping, left-to-right matches. A `leading` regex matches at every position
    where the pattern does (inside a number, at each group after a separator), so each
    search starts where the last match ended (lookbehinds still see the text before it)."""
    found = []
    match = regex.search(text)
    while match is not None:
        start, end = match.span(1)
        found.append((start, end))
        match = regex.search(text, end if end > start else start + 1)
    return found


def digit_count(run: str) -> int:
    """Digits in a `DIGIT_RUN` match (its length minus its separators)."""
    return len(run.translate(_DROP_SEPARATORS))


def fold(text: str) -> str | None:
    """`text` lower-cased with the same offsets, or None where that would not match what
    IGNORECASE matches (see the module docstring)."""
    lowered = text.lower()
    if text.isascii():
        return lowered
    if len(lowered) != len(text) or _FOLD_UNSAFE.search(text) is not None:
        return None
    return lowered


Key = int | str  # a word list's key: a recognizer's position, or a finder's name


class WordIndex:
    """Where the words of several lists occur, in one scan of the lower-cased text.

    A word counts at a word start, in any case, as a prefix ("card" in "cardholder"): what
    `(?<!\\w)(?:words)` with IGNORECASE finds. The scan looks at every word start once and
    takes the longest listed word there; every listed word that is a prefix of it occurs
    there too, so each longest word maps to all the lists that one of its prefixes is in.
    The detector gives it every list it asks about (each recognizer's context words, the
    name cues, the street words, the phone words and their rivals, the secrets' key words,
    the spelled e-mail at-words): one scan serves all the finders.

    The lists keyed in `whole` count a word only as a whole letter run (not followed by a
    letter: "st" in "st." but not in "still"). The street words are such a list: the
    address finder reads the whole letter run at each of their starts, and as prefixes
    their one- and two-letter words ("c", "p", "st") made most word starts a hit. For
    these lists `starts` and `has_context` may still report a word that a longer word of
    another list hides (a superset: the caller checks the letter run), and `lengths`,
    `first_word`, `last_word` are not for them.
    """

    def __init__(
        self, lists: Mapping[Key, tuple[str, ...]], whole: frozenset[Key] = frozenset()
    ) -> None:
        self._lists = {key: {_lower(w) for w in ws if w} for key, ws in lists.items()}
        self._whole = frozenset(whole)
        prefixes = set().union(*(ws for key, ws in self._lists.items() if key not in whole))
        words = prefixes.union(*(ws for key, ws in self._lists.items() if key in whole))
        self.keys_of: dict[str, frozenset[Key]] = {
            word: frozenset(
                key
                for key, ws in self._lists.items()
                if any(_occurs(word, w, key in whole, w in prefixes) for w in ws)
            )
            for word in words
        }
        self._all = frozenset(lists)
        # the lists keyed by numbers (a detector's recognizers), as one bit each
        self.bits_of: dict[str, int] = {
            word: sum(1 << key for key in keys if isinstance(key, int))
            for word, keys in self.keys_of.items()
        }
        self._lengths: dict[Key, dict[str, tuple[int, ...]]] = {}
        self.whole_only = frozenset(words - prefixes)  # (words that end before a non-letter)
        alternation = _alternation(prefixes, words - prefixes)
        # Hits are read word start to word start, one anchored match per hit (`hits`):
        # each match skips the words where no listed word starts (whole runs of word and
        # non-word characters, possessive: nothing is tried twice) and stops at the next
        # word start that holds one, group 1 the longest (the trie's preference). Every
        # listed word starts with a word character, so its start is such a word start.
        # `_first` is tried at the text's start, `_next` from inside the last hit's word.
        if any(not re.match(r"\w", word) for word in words):
            raise ValueError("a listed word must start with a word character")
        skip = rf"(?:(?!{alternation})\w++\W++)*+(?=({alternation}))"
        self._first = re.compile(rf"\W*+{skip}") if alternation else None
        self._next = re.compile(rf"\w*+\W++{skip}") if alternation else None
        # (their ASCII twins for ASCII text: `ascii_twin`)
        self._first_ascii = ascii_twin(self._first) if self._first else None
        self._next_ascii = ascii_twin(self._next) if self._next else None

    @property
    def keys(self) -> frozenset[Key]:
        """Every list's key."""
        return self._all

    def hits(self, folded: str) -> list[tuple[int, str]]:
        """(start, longest listed word there) for each word start of the text (`fold` of
        it) where a listed word occurs, in order; `keys_of` maps the word to its lists."""
        if folded.isascii():
            first, after = self._first_ascii, self._next_ascii
        else:
            first, after = self._first, self._next
        if first is None or after is None:
            return []
        found = []
        match = first.match(folded)
        while match is not None:
            at, end = match.span(1)
            found.append((at, folded[at:end]))
            match = after.match(folded, at + 1)
        return found

    def keys_in(self, folded: str | None) -> frozenset[Key]:
        """The keys of the lists with a word in the text (`fold` of it); every key when the
        text could not be folded (the callers' own patterns then decide)."""
        if folded is None:
            return self._all
        found: set[Key] = set()
        for _, word in self.hits(folded):
            found |= self.keys_of[word]
        return frozenset(found)

    def lengths(self, key: Key) -> dict[str, tuple[int, ...]]:
        """For each hit word, the lengths of list `key`'s words it starts with, longest
        first (what that list's own regex could match there)."""
        found = self._lengths.get(key)
        if found is None:
            own = self._lists[key]
            found = {
                word: tuple(sorted((len(w) for w in own if word.startswith(w)), reverse=True))
                for word, keys in self.keys_of.items()
                if key in keys
            }
            self._lengths[key] = found
        return found


def _lower(word: str) -> str:
    return "".join(low if len(low := char.lower()) == 1 else char for char in word)


_NOT_LETTER: Final = r"(?![^\W\d_])"
_LETTER: Final = re.compile(r"[^\W\d_]")


def _occurs(hit: str, word: str, whole: bool, also_prefix: bool) -> bool:
    """Whether listed `word` occurs where the index reports `hit` (the longest word there):
    as a prefix of it; a word of a `whole` list only where a non-letter follows it in the
    hit, or when it is the hit itself (then the scan checked what follows, unless the word
    is in a prefix list too: it is kept, a superset)."""
    if not hit.startswith(word):
        return False
    if not whole or len(hit) == len(word):
        return True
    return _LETTER.match(hit, len(word)) is None


def _alternation(prefixes: set[str], whole: set[str]) -> str:
    """`words_regex` of both sets (a trie: the same matches and preference), where a word
    only in `whole` ends only before a non-letter."""
    root: dict[str, dict[str, Any]] = {}
    for words, end in ((prefixes, ""), (whole, "!")):
        for word in words:
            node = root
            for char in word:
                node = node.setdefault(char, {})
            if node is not root and "" not in node:
                node[end] = {}
    return _trie(root, top=True)


def _trie(node: dict[str, dict[str, Any]], top: bool = False) -> str:
    """`locales._trie_regex`, with whole-run ends ("!")."""
    branches = [
        re.escape(ch) + _trie(child) for ch, child in sorted(node.items()) if ch not in ("", "!")
    ]
    if not branches:
        return _NOT_LETTER if "!" in node else ""
    body = "|".join(branches)
    if "" in node:
        return f"(?:{body})?"
    if "!" in node:
        return f"(?:{body}|{_NOT_LETTER})"
    return body if top or len(branches) == 1 else f"(?:{body})"


class Scan:
    """The cheap facts about one normalised message that the gates ask for."""

    __slots__ = (
        "_bits",
        "_folded",
        "_hits",
        "_index",
        "_keys",
        "_longest_token",
        "_tokens",
        "_words",
        "digits",
        "longest",
        "runs",
        "text",
    )

    def __init__(
        self, text: str, index: WordIndex | None = None, plain: WordIndex | None = None
    ) -> None:
        """`index`: the word lists the finders ask about; `plain`: those a message without
        digits can need (used for such a message when given)."""
        self.text = text
        # (start, end, digits) of each digit run; the gates need the counts and, for a few
        # patterns, what stands right before or after a run.
        # (one call on the match, `span`: its other methods are generic calls in the
        # compiled build, while slicing and `isdigit` are native)
        runs = []
        for match in (_DIGIT_RUN_ASCII if text.isascii() else DIGIT_RUN).finditer(text):
            start, end = match.span()
            run = text[start:end]
            runs.append((start, end, end - start if run.isdigit() else digit_count(run)))
        self.runs = runs
        if self.runs:
            counts = [n for _, _, n in self.runs]
            self.digits = sum(counts)
            self.longest = max(counts)
        else:  # (most messages)
            self.digits = self.longest = 0
        self._index = plain if plain is not None and not self.digits else index
        self._folded: str | bool | None = False  # False: not computed yet
        self._tokens: list[str] | None = None
        self._longest_token = -1  # -1: not computed yet
        self._words: list[str] | None = None
        self._hits: list[tuple[int, str]] | None = None
        self._keys: frozenset[Key] | set[Key] | None = None
        self._bits = 0

    @property
    def folded(self) -> str | None:
        """`fold(text)`, computed once."""
        if self._folded is False:
            self._folded = fold(self.text)
        return self._folded  # type: ignore[return-value]

    @property
    def long_tokens(self) -> list[str]:
        """The tokens (runs without white space) of at least `LONG_TOKEN` characters, in
        order (computed once: every secret but a key assignment is one of them or inside
        one)."""
        if self._tokens is None:
            self._tokens = [token for token in self.text.split() if len(token) >= LONG_TOKEN]
        return self._tokens

    @property
    def longest_token(self) -> int:
        """The length of the longest token when it is at least `LONG_TOKEN`, else 0
        (computed once)."""
        if self._longest_token < 0:
            self._longest_token = max(map(len, self.long_tokens), default=0)
        return self._longest_token

    @property
    def long_words(self) -> list[str]:
        """The maximal runs of word characters (`\\w`) of at least `LONG_WORD` characters,
        in order (computed once: a token pattern bounded by non-word characters on both
        sides, such as a fiscal code or a wallet address, is one of them)."""
        if self._words is None:
            self._words = [
                word
                for token in self.long_tokens
                if len(token) >= LONG_WORD
                for word in _LONG_WORD.findall(token)
            ]
        return self._words

    @property
    def word_hits(self) -> list[tuple[int, str]] | None:
        """The `WordIndex` hits of the message (computed once); None when the text could
        not be folded or there is no index (the callers' own patterns then decide)."""
        if self._hits is None:
            folded = self.folded
            if folded is None or self._index is None:
                return None
            self._hits = self._index.hits(folded)
        return self._hits

    def _present(self) -> frozenset[Key] | set[Key] | None:
        """The keys of the lists with a word in the message, with their numbered lists'
        bits (`_bits`), from one walk over the hits (computed once: several finders ask);
        None when the hits cannot tell."""
        if self._keys is None:
            hits = self.word_hits
            if hits is None or self._index is None:
                return None
            keys_of = self._index.keys_of
            bits_of = self._index.bits_of
            keys: set[Key] = set()
            bits = 0
            for _, word in hits:
                keys |= keys_of[word]
                bits |= bits_of[word]
            self._keys = keys
            self._bits = bits
        return self._keys

    def has_context(self, key: Key) -> bool:
        """Whether list `key` of the detector's `WordIndex` has a word in the message (True
        when the index has no such list: nothing to rule it out with)."""
        if self._index is None or key not in self._index.keys:
            return True
        present = self._present()
        return present is None or key in present  # (None: nothing to rule it out with)

    def first_word(self, key: Key) -> int:
        """Where a word of list `key` first occurs whole: at a word start (as `has_context`)
        and not followed by a word character; -1: nowhere; 0 when the index cannot tell."""
        hits = self.word_hits
        if hits is None or self._index is None or key not in self._index.keys:
            return 0
        if key not in self._present():  # type: ignore[operator]  # (hits: not None)
            return -1
        lengths = self._index.lengths(key)
        folded: str = self.folded  # type: ignore[assignment]  # (hits imply a folded text)
        size = len(folded)
        for at, word in hits:
            for length in lengths.get(word, ()):
                end = at + length
                if end == size or not (folded[end].isalnum() or folded[end] == "_"):
                    return at
        return -1

    def key_bits(self) -> int:
        """The numbered lists with a word in the message, one bit each (bit k: list k); all
        bits (-1) when the hits cannot tell."""
        if self._present() is None:
            return -1
        return self._bits

    def starts(self, key: Key) -> list[int] | None:
        """Where list `key` has a word, in order (None: see `word_hits`)."""
        present = self._present()
        if present is None or self._index is None or self._hits is None:
            return None
        if key not in present:
            return []
        keys_of = self._index.keys_of
        return [start for start, word in self._hits if key in keys_of[word]]

    def last_word(self, key: Key, start: int, end: int) -> tuple[int, int] | None:
        """The span of the last match that list `key`'s own regex (`(?<!\\w)(?:words)`,
        IGNORECASE) finds from `start` to `end` (`finditer(text, start, end)`: left to
        right, no overlaps, each the longest word that ends by `end`); (-1, -1) for none,
        None when the hits cannot tell (see `word_hits`)."""
        hits = self.word_hits
        if hits is None or self._index is None:
            return None
        lengths = self._index.lengths(key)
        last = (-1, -1)
        pos = start
        for at, word in hits:
            if at >= end:
                break
            if at < pos or word not in lengths:
                continue
            for size in lengths[word]:
                if at + size <= end:
                    last = (at, at + size)
                    pos = at + size
                    break
        return last

    def letters_before_run(self, count: int) -> bool:
        """Some digit run starts right after `count` letters ("DE89...", "GB82 ...")."""
        text = self.text
        for start, _, _ in self.runs:
            if start >= count and text[start - count : start].isalpha():
                return True
        return False
