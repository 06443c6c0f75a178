"""`StreamRewriter.events`: a read's text-only payloads filtered as one run give what the
payloads one by one give (the client's text, history's records, the framing), in fewer
events; refusals and `[DONE]` keep their place."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.middleware.llm import (
    RestoreEntry,
    RestoreMap,
    SseDecoder,
    StreamRewriter,
    UpstreamError,
    UpstreamProtocolError,
)
from tests.llm.fake_upstream import Answer, _frames
from tests.llm.helpers import GRAMMAR, response_detector

EMAIL, CARD = "jane.doe@example.com", "4111 1111 1111 1111"
RESTORE = RestoreMap(
    {
        ("EMAIL", 1): RestoreEntry(EMAIL, "EMAIL_ADDRESS", "CC_E_1", "CC_E_1(j…)"),
        ("CARD", 1): RestoreEntry(CARD, "CREDIT_CARD", "CC_C_1", "CC_C_1(…1111)"),
    }
)
ANSWER = Answer(
    content="Mail [EMAIL_1] about card (card 1); not leak@evil.example, call +1 415 555 0123.",
    refusal="I will not repeat [EMAIL_1].",
    tool_calls=[("send", '{"to": "[EMAIL_1]", "cc": "spy@evil.example"}')],
    extra={"reasoning_content": "the card is [CARD_1]"},
)
DETECTOR = response_detector()


def _rewriter() -> StreamRewriter:
    return StreamRewriter(GRAMMAR, RESTORE, DETECTOR, response_id="r", created=1, model="m")


def _payloads(piece: int) -> list[str]:
    return SseDecoder().feed(b"".join(_frames(ANSWER, piece, usage=True)))


def _one_by_one(datas: list[str]) -> tuple[list[bytes], StreamRewriter]:
    rw = _rewriter()
    out: list[bytes] = []
    for data in datas:
        out += rw.event(data)
    return out, rw


def _in_runs(datas: list[str], cuts: list[int]) -> tuple[list[bytes], StreamRewriter]:
    rw = _rewriter()
    out: list[bytes] = []
    bounds = sorted({0, *cuts, len(datas)})
    for a, b in itertools.pairwise(bounds):
        rw.events(datas[a:b], out)
    return out, rw


def _fields(out: list[bytes]) -> dict[str, str]:
    """What a client rebuilds per field (tool call arguments by index), and the framing."""
    events = SseDecoder().feed(b"".join(out))
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    text: dict[str, str] = {}
    for data in events[:-1]:
        for choice in json.loads(data)["choices"]:
            delta: dict[str, Any] = choice["delta"]
            for key, value in delta.items():
                if key == "tool_calls":
                    for call in value:
                        name = f"tool{call['index']}"
                        text[name] = text.get(name, "") + call["function"].get("arguments", "")
                elif isinstance(value, str) and key != "role":
                    text[key] = text.get(key, "") + value
            if choice.get("finish_reason"):
                text["finish"] = choice["finish_reason"]
    return text


@pytest.mark.parametrize("piece", [1, 3, 8])
def test_runs_give_what_payloads_one_by_one_give_in_fewer_events(piece: int) -> None:
    datas = _payloads(piece)
    single, one = _one_by_one(datas)
    runs, many = _in_runs(datas, [])
    assert _fields(runs) == _fields(single)
    assert many.record_texts() == one.record_texts()
    assert len(runs) < len(single)
    got = _fields(runs)
    assert got["content"] == (
        f"Mail {EMAIL} about card {CARD}; not [REDACTED_EMAIL], call [REDACTED_PHONE]."
    )  # "(card 1)": a tolerated variant, its brackets consumed
    assert json.loads(got["tool0"]) == {"to": EMAIL, "cc": "[REDACTED_EMAIL]"}
    assert got["reasoning_content"] == f"the card is {CARD}"
    assert EMAIL not in "".join(many.record_texts().values())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 200), max_size=8), st.integers(1, 6))
def test_any_grouping_of_the_payloads_gives_the_same_answer(cuts: list[int], piece: int) -> None:
    datas = _payloads(piece)
    single, one = _one_by_one(datas)
    runs, many = _in_runs(datas, [c % (len(datas) + 1) for c in cuts])
    assert _fields(runs) == _fields(single)
    assert many.record_texts() == one.record_texts()


def test_a_refused_payload_raises_after_what_came_before_it() -> None:
    datas = _payloads(4)[:12]  # the role and the first words
    expected = _content(_one_by_one(datas)[0])
    assert expected.startswith("Mail ")
    out: list[bytes] = []
    with pytest.raises(UpstreamProtocolError, match="event_not_json"):
        _rewriter().events([*datas, "{not json", *datas], out)
    assert _content(out) == expected
    error = json.dumps({"error": {"type": "server_error", "message": EMAIL}})
    out = []
    with pytest.raises(UpstreamError):
        _rewriter().events([*datas, error], out)
    assert _content(out) == expected


def _content(out: list[bytes]) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for data in SseDecoder().feed(b"".join(out))
        for choice in json.loads(data)["choices"]
    )


def test_payloads_after_done_are_ignored() -> None:
    datas = _payloads(8)
    out, _ = _in_runs([*datas, *datas[1:4]], [])
    assert b"".join(out).endswith(b"data: [DONE]\n\n")
    assert _fields(out) == _fields(_one_by_one(datas)[0])
