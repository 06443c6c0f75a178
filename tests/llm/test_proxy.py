"""The core end to end over real HTTP: a fake provider on loopback, aiohttp in between.

The provider records what it received (no value may be in it) and answers as scripted:
echoing, rewriting placeholders, adding PII of its own, calling tools, failing.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from typing import Any

import aiohttp
import pytest

from coatcheck.middleware.llm import (
    ChatCompletions,
    Exchange,
    LlmError,
    RedactionUnavailable,
    SseDecoder,
    Upstream,
    UpstreamError,
    UpstreamUnavailable,
)
from tests.harness import threaded
from tests.llm.fake_upstream import Answer, FakeUpstream, last_user_text
from tests.llm.helpers import MemoryVault, redactor, response_detector

EMAIL, CARD, PHONE = "jane.doe@example.com", "4111 1111 1111 1111", "+44 20 7946 0958"
PROMPT = f"Synthetic record: contact {EMAIL}, card {CARD}, phone {PHONE}."
VALUES = (EMAIL, CARD, PHONE, "4111111111111111")


def _body(stream: bool = True, content: str = PROMPT, **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-test",
        "stream": stream,
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


def _call(
    fake: FakeUpstream,
    body: dict[str, Any],
    *,
    vault: MemoryVault | None = None,
    base: str | None = None,
    exchanges: list[Exchange] | None = None,
) -> Any:
    async def go(url: str) -> Any:
        async def keep(exchange: Exchange) -> None:
            if exchanges is not None:
                exchanges.append(exchange)

        async with aiohttp.ClientSession() as session:
            core = ChatCompletions(
                redactor(vault),
                Upstream(session, url + "/v1", "upstream-key"),
                response_detector(),
                on_exchange=keep,
            )
            prepared = await core.prepare("conv-1", body)
            if not prepared.stream:
                return await core.complete(prepared)
            frames = await core.open_stream(prepared)
            return b"".join([frame async for frame in frames])

    if base is not None:
        return asyncio.run(go(base))
    with threaded(fake.app()) as url:
        return asyncio.run(go(url))


def _events(raw: bytes) -> list[str]:
    decoder = SseDecoder()
    return decoder.feed(raw) + decoder.finish()


def _text(raw: bytes) -> str:
    """What an OpenAI client reconstructs from our stream; also checks the framing."""
    events = _events(raw)
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    out = []
    for data in events[:-1]:
        chunk = json.loads(data)
        assert chunk["object"] == "chat.completion.chunk" and chunk["id"].startswith("chatcmpl-")
        for choice in chunk["choices"]:
            out.append(choice["delta"].get("content") or "")
    return "".join(out)


def _nothing_went_up(fake: FakeUpstream) -> None:
    assert fake.received
    for request in fake.received:
        seen = request.everything()
        for value in VALUES:
            assert value not in seen
        assert request.headers.get("Authorization") == "Bearer upstream-key"


def test_streamed_echo_restores_every_value_and_sends_none_up() -> None:
    fake = FakeUpstream(piece=1)
    assert _text(_call(fake, _body())) == PROMPT
    _nothing_went_up(fake)
    assert last_user_text(fake.received[0].body) == (
        "Synthetic record: contact [EMAIL_1], card [CARD_1], phone [PHONE_1]."
    )


def _rewritten(body: dict[str, Any]) -> Answer:
    seen = last_user_text(body)
    text = (
        seen.replace("[EMAIL_1]", "(email 1)")
        .replace("[CARD_1]", "'Card_1'")
        .replace("[PHONE_1]", "PHONE_1")
    )
    return Answer(content=f"{text} Also write to leak@evil.example or call +1 415 555 0123.")


def test_rewritten_placeholders_restore_and_injected_pii_is_redacted() -> None:
    fake = FakeUpstream(answer=_rewritten, piece=3)
    text = _text(_call(fake, _body()))
    assert text == (
        f"Synthetic record: contact {EMAIL}, card '{CARD}', phone {PHONE}."
        " Also write to [REDACTED_EMAIL] or call [REDACTED_PHONE]."
    )


def _short(body: dict[str, Any]) -> Answer:
    return Answer(content="Hi (email 1), [CARD_1]; not leak@evil.example.")


def test_every_byte_offset_of_the_stream() -> None:
    fake = FakeUpstream(answer=_short, piece=16, usage=False)
    expected = _text(_call(fake, _body()))
    size = len(b"".join(_frames_of(fake)))
    for offset in range(1, size):
        fake.splits = [offset]
        assert _text(_call(fake, _body())) == expected
    assert expected == f"Hi {EMAIL}, {CARD}; not [REDACTED_EMAIL]."
    _nothing_went_up(fake)


def _frames_of(fake: FakeUpstream) -> list[bytes]:
    from tests.llm.fake_upstream import _frames

    body = json.loads(fake.received[0].raw)
    return _frames(fake.answer(body), fake.piece, fake.usage)


def test_tool_calls_get_the_clients_values_in_valid_json() -> None:
    def tools(body: dict[str, Any]) -> Answer:
        return Answer(
            content="Sending.",
            tool_calls=[
                ("send_mail", '{"to": "[EMAIL_1]", "card": "card 1", "bcc": "spy@evil.example"}')
            ],
            finish_reason="tool_calls",
        )

    fake = FakeUpstream(answer=tools, piece=2)
    raw = _call(fake, _body())
    arguments, names = "", []
    for data in _events(raw)[:-1]:
        for choice in json.loads(data)["choices"]:
            for call in choice["delta"].get("tool_calls", []):
                names.append(call.get("function", {}).get("name"))
                arguments += call.get("function", {}).get("arguments", "")
    assert "send_mail" in names
    # "card 1" in quotes is a tolerated variant of [CARD_1]: the client's own card
    assert json.loads(arguments) == {"to": EMAIL, "card": CARD, "bcc": "[REDACTED_EMAIL]"}

    fake_whole = FakeUpstream(answer=tools)
    body = _call(fake_whole, _body(stream=False))
    call = body["choices"][0]["message"]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"])["to"] == EMAIL
    assert body["choices"][0]["finish_reason"] == "tool_calls"


def test_non_streamed_answer() -> None:
    fake = FakeUpstream(answer=_rewritten)
    body = _call(fake, _body(stream=False))
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"].startswith(f"Synthetic record: contact {EMAIL}")
    assert "[REDACTED_EMAIL]" in body["choices"][0]["message"]["content"]
    assert body["usage"] == {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
    _nothing_went_up(fake)


def test_vendor_fields_are_filtered_as_streams_too() -> None:
    fake = FakeUpstream(
        answer=lambda b: Answer(content="ok", extra={"record_field": "jrmccalx%40example.com"}),
        piece=3,
    )
    raw = _call(fake, _body())
    assert b"jrmccalx" not in raw and b"example.com" not in raw
    assert b"[REDACTED_EMAIL]" in raw


def test_history_gets_references_never_values() -> None:
    exchanges: list[Exchange] = []
    fake = FakeUpstream(answer=_rewritten, piece=5)
    _call(fake, _body(), exchanges=exchanges)
    [exchange] = exchanges
    stored = json.dumps([exchange.prompt, list(exchange.answer.values())])
    for value in (*VALUES, "leak@evil.example"):
        assert value not in stored
    assert re.search(r"CC_EMAIL_ADDRESS_[0-9a-z]{10}", exchange.answer[(0, ("content",))])
    assert exchange.complete


def test_provider_errors_keep_status_and_names_not_text() -> None:
    fake = FakeUpstream(
        error=(
            401,
            {
                "error": {
                    "message": f"bad key near {EMAIL}",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
        )
    )
    with pytest.raises(UpstreamError) as caught:
        _call(fake, _body())
    assert caught.value.status == 401
    assert caught.value.body()["error"]["code"] == "invalid_api_key"
    assert EMAIL not in json.dumps(caught.value.body())


def test_provider_down_is_a_502_and_vault_down_sends_nothing() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    with pytest.raises(UpstreamUnavailable) as caught:
        _call(FakeUpstream(), _body(), base=f"http://127.0.0.1:{port}")
    assert caught.value.status == 502

    vault = MemoryVault()
    vault.down = True
    fake = FakeUpstream()
    with pytest.raises(RedactionUnavailable):
        _call(fake, _body(), vault=vault)
    assert fake.received == []


def test_a_stream_cut_short_ends_with_an_error_event_and_nothing_raw() -> None:
    fake = FakeUpstream(answer=_rewritten, piece=4, usage=False)
    full = _call(fake, _body())
    fake.cut_after = len(b"".join(_frames_of(fake))) // 2
    raw = _call(fake, _body())
    events = _events(raw)
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["type"] == "upstream_error"
    assert b"leak@evil" not in raw and b"415 555" not in raw
    assert full.endswith(b"data: [DONE]\n\n")


def test_models_pass_through() -> None:
    fake = FakeUpstream()

    async def go(url: str) -> Any:
        async with aiohttp.ClientSession() as session:
            return await Upstream(session, url + "/v1", None).models()

    with threaded(fake.app()) as url:
        assert asyncio.run(go(url))["data"][0]["id"] == "fake-model"


def test_errors_are_openai_shaped() -> None:
    with pytest.raises(LlmError) as caught:
        _call(
            FakeUpstream(),
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        )
    body = caught.value.body()
    assert set(body["error"]) == {"message", "type", "param", "code"}


def _frames_list(
    fake: FakeUpstream, requests: int, seconds: list[float] | None = None
) -> list[list[bytes]]:
    """The frames `open_stream` yields, per request, `requests` requests on one session
    (and how long each stream took, into `seconds`)."""

    async def go(url: str) -> list[list[bytes]]:
        async with aiohttp.ClientSession() as session:
            core = ChatCompletions(
                redactor(), Upstream(session, url + "/v1", "upstream-key"), response_detector()
            )
            out = []
            for _ in range(requests):
                started = time.monotonic()
                frames = await core.open_stream(await core.prepare("conv-1", _body()))
                out.append([frame async for frame in frames])
                if seconds is not None:
                    seconds.append(time.monotonic() - started)
            return out

    with threaded(fake.app()) as url:
        return asyncio.run(go(url))


def test_the_first_text_leaves_before_the_rest_of_its_read_is_filtered() -> None:
    fake = FakeUpstream(piece=2, usage=False)  # the whole answer in one write
    [frames] = _frames_list(fake, 1)
    texts = [_text(frame + b"data: [DONE]\n\n") for frame in frames[:-1]]
    first = next(text for text in texts if text)
    assert first == "Synthetic "  # held back until the space: it could have been a value
    assert _text(b"".join(frames)) == PROMPT


def test_the_provider_connection_is_kept_after_done() -> None:
    fake = FakeUpstream(piece=8, eof_delay=0.01)  # [DONE], then the end of the body
    for frames in _frames_list(fake, 3):
        assert _text(b"".join(frames)) == PROMPT
    assert len(fake.peers) == 3 and len(set(fake.peers)) == 1


def test_a_provider_that_holds_its_body_open_after_done_does_not_hold_the_client() -> None:
    fake = FakeUpstream(piece=8, eof_delay=1.0)
    seconds: list[float] = []
    frames = _frames_list(fake, 2, seconds)
    assert max(seconds) < 0.5  # DRAIN_SECONDS (0.05), then the connection is dropped
    assert [_text(b"".join(f)) for f in frames] == [PROMPT, PROMPT]
    assert len(set(fake.peers)) == 2
