"""The SSE codec: the provider's events read back whole however the bytes are cut."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.middleware.llm import SseDecoder, UpstreamProtocolError, encode_event

STREAM = (
    ": keep-alive\r\n"
    'data: {"a": "é€😀"}\r\n\r\n'
    "event: message\n"
    "id: 7\n"
    "data: first line\n"
    "data:second line\n\n"
    'data: {"b": 1}\r\r'
    "data: [DONE]\n\n"
).encode()
EVENTS = ['{"a": "é€😀"}', "first line\nsecond line", '{"b": 1}', "[DONE]"]


def _decode(data: bytes, cuts: list[int]) -> list[str]:
    decoder = SseDecoder()
    out: list[str] = []
    bounds = sorted({0, *cuts, len(data)})
    for a, b in itertools.pairwise(bounds):
        out += decoder.feed(data[a:b])
    return out + decoder.finish()


def test_every_byte_split_gives_the_same_events() -> None:
    for cut in range(len(STREAM) + 1):
        assert _decode(STREAM, [cut]) == EVENTS
    assert _decode(STREAM, list(range(len(STREAM)))) == EVENTS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, len(STREAM)), max_size=20))
def test_random_splits(cuts: list[int]) -> None:
    assert _decode(STREAM, cuts) == EVENTS


def test_a_last_event_without_its_blank_line_still_counts() -> None:
    assert _decode(b'data: {"x": 1}', []) == ['{"x": 1}']


def test_encoded_events_read_back() -> None:
    payload = {"text": "two\nlines and \u2028 separators", "n": 1}
    [data] = _decode(encode_event(payload), [])
    assert json.loads(data) == payload


def test_refusals_never_echo_bytes() -> None:
    with pytest.raises(UpstreamProtocolError) as caught:
        SseDecoder().feed(b"data: \xff\xfe secret\n\n")
    assert "secret" not in str(caught.value)
    with pytest.raises(UpstreamProtocolError, match="event_too_large"):
        SseDecoder(max_event=100).feed(b"data: " + b"x" * 200)


LF_STREAM = (
    ": keep-alive\n"
    'data: {"a": "é€😀"}\n\n'
    "event: message\nid: 7\ndata: first line\ndata:second line\n\n"
    "data\ndata: after an empty data line\n\n"
    "data: [DONE]\n\n"
).encode()
LF_EVENTS = ['{"a": "é€😀"}', "first line\nsecond line", "\nafter an empty data line", "[DONE]"]


def test_line_feed_only_streams_at_every_split() -> None:
    """Providers end lines with LF only: those reads take the one-split path."""
    assert _decode(LF_STREAM, []) == LF_EVENTS
    for cut in range(len(LF_STREAM) + 1):
        assert _decode(LF_STREAM, [cut]) == LF_EVENTS
        assert _decode(LF_STREAM, [cut, cut + 7, cut + 40]) == LF_EVENTS


def test_a_whole_line_over_the_limit_is_refused() -> None:
    with pytest.raises(UpstreamProtocolError, match="event_too_large"):
        SseDecoder(max_event=100).feed(b"data: " + b"x" * 200 + b"\n\n")
    with pytest.raises(UpstreamProtocolError, match="event_too_large"):
        decoder = SseDecoder(max_event=100)
        for _ in range(3):
            decoder.feed(b"data: " + b"x" * 40 + b"\n")
