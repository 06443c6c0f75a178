"""The response filter against an independent oracle, split at every position and at random.

The upstream text is built from known parts: plain words, placeholders of this request in
their tolerated variants, unknown placeholders, and values the model injected. What the
client must see is built from the same parts (values restored, injected values replaced by
their marker), so the filter is checked against the meaning, not against itself.
"""

from __future__ import annotations

import itertools
import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.middleware.llm import (
    FieldFilter,
    NoResponseDetector,
    RestoreEntry,
    RestoreMap,
    redaction_marker,
)
from tests.llm.helpers import GRAMMAR, response_detector

CLIENT = {
    ("EMAIL", 1): "alice@example.org",
    ("PHONE", 2): "+44 20 7946 0958",
    ("CARD", 1): "4012 8888 8888 1881",
    ("PERSON", 1): 'Ann "Nan" O\\Brien',
}
RESTORE = RestoreMap(
    {
        key: RestoreEntry(value, "T", f"CC_{key[0]}_ref{key[1]}", f"CC_{key[0]}_ref{key[1]}")
        for key, value in CLIENT.items()
    }
)
DETECTOR = response_detector()
INJECTED = [
    ("jane.doe@example.com", "EMAIL_ADDRESS"),
    ("4111 1111 1111 1111", "CREDIT_CARD"),
    ("+1 415 555 0123", "PHONE_NUMBER"),
    ("jrmccalx%40example.com", "EMAIL_ADDRESS"),
    ("192.168.10.23", "IP_ADDRESS"),
    ("536-22-1985", "US_SSN"),
]
VARIANTS = [
    "[EMAIL_1]",
    "[email_1]",
    "(Email 1)",
    "{{EMAIL_1}}",
    "<EMAIL-1>",
    "'email_1'",
    "EMAIL_1",
    "[ PHONE_2 ]",
    "[[phone2]]",
    "[CARD_1]",
    "`card 1`",
    "[PERSON_1]",
]
WORDS = [
    "the",
    "model",
    "said",
    "hello",
    "email",
    "card",
    "call",
    "me",
    "at",
    "ok",
    "x",
    "thanks,",
    "now.",
    "\n",
]

Part = tuple[str, str, str]  # (kind, upstream text, client text)


def _variant(text: str) -> Part:
    [match] = GRAMMAR.scan(text)
    value = CLIENT[match.key]
    return ("ph", text, text[: match.start] + value + text[match.end :])


PARTS = st.one_of(
    st.sampled_from(WORDS).map(lambda w: ("plain", w, w)),
    st.sampled_from(VARIANTS).map(_variant),
    st.sampled_from(["[EMAIL_9]", "(card 7)"]).map(lambda p: ("plain", p, p)),
    st.sampled_from(INJECTED).map(lambda v: ("pii", v[0], redaction_marker(v[1]))),
)


def _compose(parts: list[Part]) -> tuple[str, str]:
    # "; " between parts: two numbers with only a space between them read as one number to
    # any detector (a detection question, not a streaming one).
    return "; ".join(p[1] for p in parts), "; ".join(p[2] for p in parts)


def _kindless(text: str) -> str:
    """Context may change which type a detector names ("call 078-05-1120" reads as a phone):
    the oracle checks that a value was redacted; the exact output is checked against the
    unsplit run."""
    return re.sub(r"\[REDACTED_[A-Z]+\]", "[REDACTED]", text)


def _run(text: str, cuts: list[int], *, json_string: bool = False) -> tuple[str, int]:
    one = FieldFilter(GRAMMAR, RESTORE, DETECTOR, json_string=json_string)
    out: list[str] = []
    most = 0
    bounds = [0, *sorted(set(cuts)), len(text)]
    for a, b in itertools.pairwise(bounds):
        out.append(one.feed(text[a:b]).client)
        most = max(most, one.held)
        assert one.held <= one.max_hold
    out.append(one.finish().client)
    return "".join(out), most


@settings(max_examples=60, deadline=None)
@given(st.lists(PARTS, min_size=1, max_size=8))
def test_every_two_part_split_gives_the_same_restored_text(parts: list[Part]) -> None:
    upstream, expected = _compose(parts)
    whole = _run(upstream, [])[0]
    assert _kindless(whole) == _kindless(expected)
    for cut in range(len(upstream) + 1):
        assert _run(upstream, [cut])[0] == whole


@settings(max_examples=150, deadline=None)
@given(st.lists(PARTS, min_size=1, max_size=10), st.data())
def test_random_partitions_and_one_character_events(parts: list[Part], data: st.DataObject) -> None:
    upstream, expected = _compose(parts)
    cuts = data.draw(st.lists(st.integers(0, len(upstream)), max_size=12))
    whole = _run(upstream, [])[0]
    assert _kindless(whole) == _kindless(expected)
    assert _run(upstream, cuts)[0] == whole
    assert _run(upstream, list(range(len(upstream))))[0] == whole


def test_a_value_split_at_every_byte_never_reaches_the_client_in_part() -> None:
    for value, entity_type in INJECTED:
        upstream = f"Reference record: {value}\n"
        expected = f"Reference record: {redaction_marker(entity_type)}\n"
        for cut in range(1, len(upstream)):
            for cuts in ([cut], [cut, cut + 3], list(range(cut, len(upstream)))):
                client, _ = _run(upstream, cuts)
                assert client == expected
                assert value[:5] not in client


def test_text_after_a_boundary_is_released_at_once() -> None:
    one = FieldFilter(GRAMMAR, RESTORE, DETECTOR)
    assert one.feed("Hello there, how are").client == "Hello there, how "
    assert one.held == len("are")  # could still become an e-mail address
    assert one.feed(" you?\n").client == "are you?\n"
    assert one.held == 0
    assert one.feed("Your mail is [EMA").client == "Your mail is "
    assert one.feed("IL_1] ok.\n").client == "alice@example.org ok.\n"


def test_without_a_response_detector_only_placeholders_are_held() -> None:
    one = FieldFilter(GRAMMAR, RESTORE, NoResponseDetector())
    assert one.feed("Hello there").client == "Hello there"
    assert one.feed(" [EMAIL").client == " "
    assert one.feed("_1]").client == "alice@example.org"
    assert one.feed(" jane.doe@example.com").client == " jane.doe@example.com"  # response_pii: pass


def test_tool_arguments_stay_valid_json_with_restored_values() -> None:
    arguments = (
        '{"to": "[PERSON_1]", "cc": "EMAIL_1", "note": "call [phone 2] or jane.doe@example.com"}'
    )
    for cut in range(len(arguments) + 1):
        client, _ = _run(arguments, [cut], json_string=True)
        parsed = json.loads(client)
        assert parsed == {
            "to": CLIENT[("PERSON", 1)],
            "cc": CLIENT[("EMAIL", 1)],
            "note": f"call {CLIENT[('PHONE', 2)]} or [REDACTED_EMAIL]",
        }


def test_history_gets_references_and_markers_never_values() -> None:
    one = FieldFilter(GRAMMAR, RESTORE, DETECTOR)
    text = "Mail [EMAIL_1] or jane.doe@example.com, or alice@example.org.\n"
    released = [one.feed(ch) for ch in text] + [one.finish()]
    record = "".join(r.record for r in released)
    client = "".join(r.client for r in released)
    assert record == "Mail CC_EMAIL_ref1 or [REDACTED_EMAIL], or CC_EMAIL_ref1.\n"
    # the client's own value, written out by the model, is theirs to see
    assert client == "Mail alice@example.org or [REDACTED_EMAIL], or alice@example.org.\n"


def test_only_this_requests_placeholders_resolve() -> None:
    other = RestoreMap(
        {("EMAIL", 1): RestoreEntry("someone@else.example", "EMAIL_ADDRESS", "r", "r")}
    )
    one = FieldFilter(GRAMMAR, RestoreMap(), NoResponseDetector())
    assert one.feed("[EMAIL_1] [email_2]").client + one.finish().client == "[EMAIL_1] [email_2]"
    two = FieldFilter(GRAMMAR, other, NoResponseDetector())
    assert two.feed("[EMAIL_2]").client + two.finish().client == "[EMAIL_2]"


def test_long_streams_cost_linear_work() -> None:
    """The held tail stays bounded however long the stream (no O(n^2) buffer)."""
    one = FieldFilter(GRAMMAR, RESTORE, DETECTOR)
    for _ in range(20_000):
        one.feed("abc ")
        assert one.held <= 4
    token = "a" * 10_000  # one endless word: held up to the bound, then released
    for ch in token:
        one.feed(ch)
        assert one.held <= one.max_hold
