"""This round's fast paths against the computations they replace (issue 16's throughput).

Each replaces a library call or a regex scan on the hot path of every message; each must
give exactly what the original gives, on generated input and on hand-picked edge cases.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import sys
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import luhn

from coatcheck.middleware.detect import Detector
from coatcheck.middleware.detect.locales import words_regex
from coatcheck.middleware.detect.names import _CAPS_RUN, _CAPS_RUN_ASCII
from coatcheck.middleware.detect.normalise import _NOT_NFKC_ONLY, _ZERO_WIDTH, DASHES
from coatcheck.middleware.detect.numbering import Plan, plan_for
from coatcheck.middleware.detect.phone import _CANDIDATE, _CANDIDATE_ASCII
from coatcheck.middleware.detect.prune import _TIME_OR_AMOUNT, _TIME_OR_AMOUNT_ASCII
from coatcheck.middleware.detect.scan import (
    _DIGIT_RUN_ASCII,
    ASCII_SPACE,
    DIGIT_RUN,
    FOLDS_TO_ASCII,
    Scan,
    WordIndex,
    ascii_twin,
    fold,
    leading,
    spans,
)
from coatcheck.middleware.detect.validators import VALIDATORS, luhn_valid
from tests.detect.test_gates import _PIECES

_ROOT = Path(__file__).resolve().parents[2]
# `../shared/data` beside the main checkout (a worktree sits one folder deeper)
PRESIDIO_DEV = (
    next(
        (
            path
            for path in (_ROOT.parent / "shared", _ROOT.parents[1] / "shared")
            if (path / "data" / "presidio_synth_dev.jsonl").exists()
        ),
        _ROOT.parent / "shared",
    )
    / "data"
    / "presidio_synth_dev.jsonl"
)
LOCALES_DEV = _ROOT / "bench" / "data" / "locales_dev.jsonl"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789", max_size=25))
def test_luhn_is_stdnums_on_digit_strings(digits: str) -> None:
    assert luhn_valid(digits) == bool(luhn.is_valid(digits))


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("378282246310005", True),
        ("0", True),
        ("", False),
        ("41111111111111\u0661\u0661", False),  # Arabic-Indic digits: stdnum refuses them
        ("4111 1111 1111 1111", False),  # separators are dropped before, never here
    ],
)
def test_luhn_rows(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid
    assert luhn_valid(digits) == bool(luhn.is_valid(digits))


def _leading_hits(index: WordIndex, folded: str) -> list[tuple[int, str]]:
    """The index's hits as one `leading` scan gives them (the construction it replaced):
    every word start where a listed word begins, with the longest one."""
    regex = _leading_regex(tuple(sorted(index.keys_of)))
    return [(match.start(), match.group(1)) for match in regex.finditer(folded)]


@functools.cache
def _leading_regex(words: tuple[str, ...]) -> re.Pattern[str]:
    first = "".join(sorted({word[0] for word in words}))
    return leading(f"[{re.escape(first)}]", rf"(?<!\w)(?:{words_regex(words)})")


@functools.cache
def _detector() -> Detector:
    return Detector.from_config(None)


def _indexes() -> tuple[WordIndex, WordIndex]:
    return _detector()._index, _detector()._plain_index


def _samples() -> list[str]:
    words = sorted(_indexes()[0].keys_of)
    short = [w for w in words if len(w) <= 3]
    return [
        *words[::7],
        *short,
        *(w[:2] for w in words[::11]),
        " ",
        "  ",
        ". ",
        "x",
        "é",
        "_",
        "1",
        "²",
    ]


_LETTER = re.compile(r"[^\W\d_]")
_WORD_START = re.compile(r"(?<!\w)\w")


def _brute_hits(index: WordIndex, folded: str) -> list[tuple[int, str]]:
    """The index's hits by brute force: at each word start, the longest listed word there
    (a word only of `whole` lists: where a non-letter or the end follows it)."""
    found = []
    for start in (m.start() for m in _WORD_START.finditer(folded)):
        there = [
            word
            for word in index.keys_of
            if folded.startswith(word, start)
            and (word not in index.whole_only or not _LETTER.match(folded, start + len(word)))
        ]
        if there:
            found.append((start, max(there, key=len)))
    return found


def _check_hits(index: WordIndex, folded: str) -> None:
    hits = index.hits(folded)
    if not index.whole_only:
        assert hits == _leading_hits(index, folded), folded
    assert hits == _brute_hits(index, folded), folded
    # each hit's lists: exactly those with a word there, a superset for `whole` lists
    for start, hit in hits:
        for key, words in index._lists.items():
            whole = key in index._whole
            there = any(
                folded.startswith(w, start)
                and not (whole and _LETTER.match(folded, start + len(w)))
                for w in words
            )
            if whole:
                assert not there or key in index.keys_of[hit], (folded, start, key)
            else:
                assert there == (key in index.keys_of[hit]), (folded, start, key)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_word_index_hits_are_the_leading_scan(data: st.DataObject) -> None:
    pieces = st.sampled_from(_samples())
    text = data.draw(st.lists(pieces, max_size=12).map("".join))
    for index in _indexes():
        _check_hits(index, text)


@pytest.mark.parametrize("path", [PRESIDIO_DEV, LOCALES_DEV])
def test_word_index_hits_on_the_dev_sets(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} not present")
    for line in path.read_text(encoding="utf-8").splitlines()[::4]:
        folded = fold(json.loads(line)["text"])
        if folded is None:
            continue
        for index in _indexes():
            _check_hits(index, folded)


def test_whole_run_lists() -> None:
    """A `whole` list's word counts only as a whole letter run; the other lists keep
    counting words as prefixes, at the same places."""
    index = WordIndex(
        {"streets": ("st", "c", "via"), "context": ("card", "cc")}, whole=frozenset(["streets"])
    )
    text = "still can card st. c/ mayor via12 cc"
    assert index.hits(text) == [(10, "card"), (15, "st"), (19, "c"), (28, "via"), (34, "cc")]
    scan = Scan(text, index)
    assert scan.starts("streets") == [15, 19, 28]
    assert scan.starts("context") == [10, 34]


def test_capital_run_lead_class_holds_every_capital_candidate() -> None:
    """`names._CAPS_RUN` skips with a range class; the category class it stands for must
    not hold a character outside it (every code point checked)."""
    lead = re.compile(r"[A-Z\xaa-\U0010ffff]")
    category = re.compile(r"[^\W\d_a-z]")
    missing = [
        code
        for code in range(0x110000)
        if category.match(chr(code)) is not None and lead.match(chr(code)) is None
    ]
    assert missing == []


_OLD_CAPS_RUN = re.compile(
    r"[^\W\d_a-z](?<![\w'\u2019-][^\W\d_a-z])[\w'\u2019-]*+(?:[ \t]+(?:(?:de|da|do|dos|das"
    r"|di|del|van|der|den|von|le|la|du|ten|ter)[ \t]+){0,2}[^\W\d_a-z][\w'\u2019-]*+){1,3}"
)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="Aaé ÉßΣ'-_1\t.xY", max_size=40))
def test_capital_runs_are_the_category_scans(text: str) -> None:
    new = [m.span() for m in _CAPS_RUN.finditer(text)]
    assert new == [m.span() for m in _OLD_CAPS_RUN.finditer(text)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from((*_PIECES, " ", "SECRET", "secret", "AKIA", "xoxb-")), max_size=8))
def test_text_gate_is_passes_text_gates(pieces: list[str]) -> None:
    """Each recognizer's specialised `text_gate` says what `passes_text_gates` says."""
    text = " ".join(pieces)
    detector = _detector()
    scan = Scan(text, detector._index, detector._plain_index)
    for recognizer in (*detector._recognizers, *detector._secrets):
        gate = recognizer.text_gate
        assert (gate is None or gate(scan)) == recognizer.passes_text_gates(scan), (
            recognizer.entity_type,
            text,
        )
        assert (gate is None) == (not recognizer.has_text_gates)


def _matches_per_type(plan: Plan, number: str) -> bool:
    """`Plan.matches` as it was: the general description, then each number type in turn."""
    size = len(number)
    if size not in plan.lengths or plan.national.fullmatch(number) is None:
        return False
    return any(
        (not lengths or size in lengths) and pattern.fullmatch(number) is not None
        for lengths, pattern in plan.types
    )


_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "CH", "AR", "IN", "JP")


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_REGIONS), st.text(alphabet="0123456789", min_size=2, max_size=17))
def test_plan_matches_is_the_per_type_search(region: str, number: str) -> None:
    plan = plan_for(region)
    assert plan is not None
    assert plan.matches(number) == _matches_per_type(plan, number)


def test_plan_matches_every_example_number() -> None:
    """Every region's example numbers of every type: the per-length alternation agrees."""
    kinds = [getattr(phonenumbers.PhoneNumberType, name) for name in _TYPE_NAMES]
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        plan = plan_for(region)
        if plan is None:
            continue
        for kind in kinds:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            number = phonenumbers.national_significant_number(example)
            for variant in (number, number[:-1], number + "0", "9" + number[1:]):
                assert plan.matches(variant) == _matches_per_type(plan, variant), (region, variant)
                checked += 1
    assert checked > 1000


_TYPE_NAMES = (
    "FIXED_LINE",
    "MOBILE",
    "TOLL_FREE",
    "PREMIUM_RATE",
    "SHARED_COST",
    "VOIP",
    "PERSONAL_NUMBER",
    "PAGER",
    "UAN",
    "VOICEMAIL",
)


# ASCII twins (`scan.ascii_twin`): on ASCII text the detector runs its patterns compiled
# with re.ASCII, which must match exactly what the Unicode patterns match there.


@pytest.mark.parametrize(
    ("pattern", "flags", "has_twin"),
    [
        (r"\w+\d", 0, True),
        (r"a\\s", 0, True),  # an escaped backslash, then "s"
        ("é", re.IGNORECASE, True),  # no ASCII letter matches it
        ("ß", re.IGNORECASE, True),
        ("\u0131", 0, True),  # dotless i, case-sensitive: only itself
        (r"[^\S]", 0, False),  # \S in a class
        (r"(?x) a \s", 0, False),  # verbose: not read
        ("\u0131", re.IGNORECASE, False),  # dotless i matches I and i
        ("\u017f", re.IGNORECASE, False),  # long s matches s
        ("\u212a", re.IGNORECASE, False),  # the Kelvin sign matches k
        ("\u0130", re.IGNORECASE, False),  # the engine matches it with i (str.lower does not)
        (r"(?i:\u0131)", 0, False),  # inline, and escaped
        ("[\u00c0-\u017f]", re.IGNORECASE, False),  # a range that spans one
        (r"(?i:caf[\xe9e])", 0, True),  # an escape, read as the letter it names
        ("(?i:café)", 0, True),
        (r"(?i:[\w'\u2019-])", 0, True),  # an escaped letter no ASCII one pairs with
        (r"(?i:[a-\u0131])", 0, False),
        (r"(?i:\N{LATIN SMALL LETTER DOTLESS I})", 0, False),
        (r"(?i:\\u0131)", 0, True),  # an escaped backslash, then "u0131"
    ],
)
def test_ascii_twin_rows(pattern: str, flags: int, has_twin: bool) -> None:
    regex = re.compile(pattern, flags)
    if has_twin:
        twin = ascii_twin(regex)
        assert twin.flags & re.ASCII and twin.pattern == pattern
    else:
        with pytest.raises(ValueError):
            ascii_twin(regex)


@pytest.mark.parametrize(
    ("pattern", "twin"),
    [
        (r"a\s", rf"a[{ASCII_SPACE}]"),  # Unicode \s also matches \x1c-\x1f
        (r"a\S+", rf"a[^{ASCII_SPACE}]+"),
        (r"[\s:.-]", rf"[{ASCII_SPACE}:.-]"),
        (r"[^\s,]", rf"[^{ASCII_SPACE},]"),
        (r"[]\s]", rf"[]{ASCII_SPACE}]"),  # a "]" first in a class is a literal
        (r"[^]\s]\s", rf"[^]{ASCII_SPACE}][{ASCII_SPACE}]"),
        (r"\\s\[\s", rf"\\s\[[{ASCII_SPACE}]"),  # escaped: a backslash, a bracket
    ],
)
def test_ascii_twin_spells_out_the_spaces(pattern: str, twin: str) -> None:
    assert ascii_twin(re.compile(pattern)).pattern == twin


def test_the_ascii_spaces_are_these() -> None:
    """`ASCII_SPACE`: every ASCII character Unicode `\\s` matches, found by trying them."""
    space = re.compile(r"\s")
    found = {chr(c) for c in range(128) if space.fullmatch(chr(c))}
    assert found == {chr(c) for c in range(128) if re.fullmatch(f"[{ASCII_SPACE}]", chr(c))}


def test_the_letters_that_fold_to_ascii_are_these() -> None:
    """`ascii_twin`'s list: every code point the engine's IGNORECASE pairs with an ASCII
    letter, found by trying them all."""
    letter = re.compile(r"[a-zA-Z]", re.IGNORECASE)
    found = {chr(c) for c in range(128, sys.maxunicode + 1) if letter.fullmatch(chr(c))}
    assert found == set(FOLDS_TO_ASCII)


def _twins() -> list[tuple[re.Pattern[str], re.Pattern[str]]]:
    """Every (pattern, ASCII twin) pair the default detector uses."""
    pairs: list[tuple[object, object]] = [
        (DIGIT_RUN, _DIGIT_RUN_ASCII),
        (_CAPS_RUN, _CAPS_RUN_ASCII),
        (_CANDIDATE, _CANDIDATE_ASCII),
    ]
    for index in _indexes():
        pairs += [(index._first, index._first_ascii), (index._next, index._next_ascii)]
    pruner = _detector()._phones._pruner
    pairs += [
        (_TIME_OR_AMOUNT, _TIME_OR_AMOUNT_ASCII),
        (pruner._prefix_reversed_folded, pruner._prefix_reversed_folded_ascii),
        (pruner._suffix, pruner._suffix_ascii),
    ]
    addresses = _detector()._addresses
    assert addresses is not None
    pairs += list(zip(addresses._compiled, addresses._compiled_ascii, strict=True))
    for recognizer in (*_detector()._recognizers, *_detector()._secrets):
        pairs += [
            (a[0], b[0]) for a, b in zip(recognizer._plans, recognizer._plans_ascii, strict=True)
        ]
        pairs.append((recognizer._context_re, recognizer._context_ascii))
    found = [(a, b) for a, b in pairs if isinstance(a, re.Pattern) and a is not b]
    assert all(isinstance(b, re.Pattern) and b.flags & re.ASCII for _, b in found)
    return found  # type: ignore[return-value]


@functools.cache
def _twins_once() -> list[tuple[re.Pattern[str], re.Pattern[str]]]:
    return _twins()


def _same_on(text: str, pairs: list[tuple[re.Pattern[str], re.Pattern[str]]]) -> None:
    for original, twin in pairs:
        want = [(m.span(), m.groups()) for m in original.finditer(text)]
        assert [(m.span(), m.groups()) for m in twin.finditer(text)] == want, (original, text)
        for pos in range(0, len(text), 3):
            one, two = original.match(text, pos), twin.match(text, pos)
            assert (one and (one.span(), one.groups())) == (two and (two.span(), two.groups()))


_ASCII_PIECES = [p for p in _PIECES if p.isascii()]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_ASCII_PIECES),
            st.text(alphabet=st.characters(max_codepoint=127), max_size=12),
        ),
        max_size=6,
    ).map(" ".join)
)
def test_ascii_twins_match_as_their_patterns_on_ascii_text(text: str) -> None:
    _same_on(text, _twins_once())


@pytest.mark.parametrize("path", [PRESIDIO_DEV, LOCALES_DEV])
def test_ascii_twins_on_the_dev_sets(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} not present")
    pairs = _twins_once()
    for line in path.read_text(encoding="utf-8").splitlines()[::8]:
        text = json.loads(line)["text"]
        if text.isascii():
            _same_on(text, pairs)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["order", "Order", "ORDER", "nº", "no.", "#", "R$", "v", "€", "ticket"])
        | st.text(alphabet="aAoOrRdDeEnN #:.-\n1", max_size=6),
        max_size=6,
    ).map(" ".join)
)
def test_prune_reads_the_folded_window_as_the_case_insensitive_one(window: str) -> None:
    """`Pruner.invalid` matches the lower-cased reversed window without IGNORECASE where
    `fold` allows it: the same answer as the IGNORECASE pattern on the window."""
    pruner = _detector()._phones._pruner
    backwards = window[::-1]
    folded = fold(backwards)
    if folded is not None:
        want = pruner._prefix_reversed.match(backwards)
        got = pruner._prefix_reversed_folded.match(folded)
        assert (want and want.span()) == (got and got.span()), window


_PHONE_SOURCE = (
    r"(?<![\w+])(?:\+\d{1,3}[ ./-]?)?(?:\(0\)\s?)?(?:\(\d{1,5}\)[ ./-]?)?\d{1,15}"
    r"(?:(?:[ ./-]|\s?\(0\)\s?)\(?\d{1,12}\)?){0,5}(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w])"
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([*_ASCII_PIECES, "+", "(", ")", "(0)", " x12", "ext.", "a", "\u0663"])
        | st.text(alphabet="0123456789 .-/+()x", max_size=10),
        max_size=8,
    ).map("".join)
)
def test_spans_of_a_leading_regex_are_finditers(text: str) -> None:
    """`spans` (one search from the end of each match) gives the matches `finditer` of the
    plain pattern gives: the phone finder's candidate pattern as written here (its digit
    groups not possessive), and as the finder runs it (possessive, and its ASCII twin)."""
    want = [m.span() for m in re.compile(_PHONE_SOURCE, re.IGNORECASE).finditer(text)]
    assert spans(leading(r"[+(\d]", _PHONE_SOURCE, re.IGNORECASE), text) == want, text
    assert spans(_CANDIDATE, text) == want, text
    if text.isascii():
        assert spans(_CANDIDATE_ASCII, text) == want, text


def test_spans_move_past_empty_matches() -> None:
    assert spans(leading("a", ""), "aaba") == [(0, 0), (1, 1), (3, 3)]


def test_phone_candidates_use_this_pattern() -> None:
    """The finder's pattern is this one with its two long digit groups possessive (the
    property test above: the same spans)."""
    possessive = _PHONE_SOURCE.replace(r"\d{1,15}", r"\d{1,15}+").replace(r"\d{1,12}", r"\d{1,12}+")
    assert _CANDIDATE.pattern == leading(r"[+(\d]", possessive, re.IGNORECASE).pattern


def _ipaddress_says(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.text(alphabet="0123456789", min_size=0, max_size=4) | st.sampled_from(["\u0663", "a"]),
        min_size=1,
        max_size=5,
    ).map(".".join)
)
def test_ip_validator_is_ipaddress_on_dotted_quads(value: str) -> None:
    assert VALIDATORS["ip"](value) == _ipaddress_says(value), value


@pytest.mark.parametrize(
    "value", ["0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "::1", "fe80::1"]
)
def test_ip_validator_rows(value: str) -> None:
    assert VALIDATORS["ip"](value) == _ipaddress_says(value)


def test_what_nfkc_alone_leaves_is_found_at_every_code_point() -> None:
    """`normalise`'s look for what the per-character pass changes in NFKC text (skipping
    to non-ASCII characters first) finds exactly the digits of other scripts, the dashes
    and the zero-width characters: every code point tried."""
    digit = re.compile(r"\d")
    special = set(_ZERO_WIDTH | DASHES)
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        want = char in special or (digit.match(char) is not None and not "0" <= char <= "9")
        assert (_NOT_NFKC_ONLY.match(char) is not None) == want, hex(code)
