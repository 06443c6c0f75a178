"""`/openai/v1` end to end: the real app on uvicorn (loopback), a fake provider on loopback.

What goes up is read back from the provider's own record (no value may be in it); what
comes down is read as an OpenAI client reads it; history is read through the API.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.llm import SseDecoder
from tests.harness import threaded
from tests.llm.fake_upstream import Answer, FakeUpstream, echo, last_user_text
from tests.llm.served import Served, free_port, served, settings_for

EMAIL, CARD, PHONE = "jane.doe@example.com", "4111 1111 1111 1111", "212-555-0187"
PROMPT = f"Synthetic record: contact {EMAIL}, card {CARD}, phone {PHONE}."
VALUES = (EMAIL, CARD, PHONE, "4111111111111111", "2125550187")
INJECTED = ("mallory@evil.example", "415-555-0134")


@pytest.fixture(scope="module")
def fake() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake: FakeUpstream) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("llm-endpoint")
    with threaded(fake.app()) as upstream:
        settings = settings_for(
            f"sqlite:///{tmp / 'llm.db'}",
            tmp,
            upstream + "/v1",
            llm_upstream_api_key="upstream-key",
            rate_limit=10_000,
        )
        with served(settings) as gw:
            yield gw


@pytest.fixture(autouse=True)
def _reset(fake: FakeUpstream) -> None:
    fake.answer, fake.piece, fake.splits, fake.error = echo, 1, None, None
    fake.cut_after, fake.usage = None, True
    fake.received.clear()


def _body(stream: bool = True, content: str = PROMPT, **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-test",
        "stream": stream,
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


def _post(gw: Served, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"{gw.base}/chat/completions",
        json=body,
        headers={**gw.auth(), **(headers or {})},
        timeout=60,
    )


def _chunks(response: httpx.Response) -> list[dict[str, Any]]:
    """The stream's JSON events; checks the framing as a client would."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    decoder = SseDecoder()
    events = decoder.feed(response.content) + decoder.finish()
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1, events[-3:]
    chunks = [json.loads(data) for data in events[:-1]]
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk" and chunk["id"].startswith("chatcmpl-")
    return chunks


def _content(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"]
    )


def _arguments(chunks: list[dict[str, Any]]) -> dict[int, str]:
    out: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls") or ():
                arguments = (call.get("function") or {}).get("arguments") or ""
                out[call["index"]] = out.get(call["index"], "") + arguments
    return out


def _nothing_went_up(fake: FakeUpstream, values: tuple[str, ...] = VALUES) -> None:
    assert fake.received
    for request in fake.received:
        seen = request.everything()
        for value in values:
            assert value not in seen
        assert request.headers.get("Authorization") == "Bearer upstream-key"
        assert "cck_" not in seen  # the client's coatcheck key never goes up


def _history(gw: Served, conversation: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{gw.url}/v1/conversations/{gw.cid(conversation)}/history",
        headers=gw.auth(Role.VIEWER),
    )
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


# -- the stream ---------------------------------------------------------------------------


def test_a_streamed_echo_restores_every_value_and_sends_none_up(
    gw: Served, fake: FakeUpstream
) -> None:
    response = _post(gw, _body())
    assert _content(_chunks(response)) == PROMPT
    _nothing_went_up(fake)
    assert last_user_text(fake.received[0].body) == (
        "Synthetic record: contact [EMAIL_1], card [CARD_1], phone [PHONE_1]."
    )
    assert response.headers["x-coatcheck-conversation"].startswith("llm-")


def _stream_bytes(fake: FakeUpstream, gw: Served) -> bytes:
    """The provider's stream for PROMPT, as it writes it (one probe request)."""
    fake.splits = None
    _post(gw, _body())
    from tests.llm.fake_upstream import _frames

    return b"".join(_frames(echo(fake.received[-1].body), fake.piece, fake.usage))


def test_a_stream_cut_at_every_byte_is_restored_whole(gw: Served, fake: FakeUpstream) -> None:
    fake.piece = 64  # whole placeholders in one event, so the cuts fall inside them
    stream = _stream_bytes(fake, gw)
    fake.splits = list(range(1, len(stream)))  # every byte written on its own
    assert _content(_chunks(_post(gw, _body()))) == PROMPT
    placeholder = stream.index(b"[EMAIL_1]")
    for cut in range(placeholder - 2, placeholder + len(b"[EMAIL_1]") + 2):
        fake.splits = [cut]
        assert _content(_chunks(_post(gw, _body()))) == PROMPT, cut
    _nothing_went_up(fake)


def _variants(body: dict[str, Any]) -> Answer:
    seen = last_user_text(body)
    assert "[EMAIL_1]" in seen and "[PHONE_1]" in seen
    return Answer(
        content="A (email 1) B {Email-1} C `EMAIL_1` D EMAIL_1 E [[EMAIL_1]] "
        'F "phone_1" G <PHONE1>. Not mine: [EMAIL_7] [NOTE_1] EMAILS_1'
    )


@pytest.mark.parametrize("stream", [True, False])
def test_placeholders_the_model_rewrote_are_restored(
    gw: Served, fake: FakeUpstream, stream: bool
) -> None:
    fake.answer = _variants
    response = _post(gw, _body(stream))
    if stream:
        text = _content(_chunks(response))
    else:
        assert response.status_code == 200, response.text
        text = response.json()["choices"][0]["message"]["content"]
    assert text == (
        f"A {EMAIL} B {EMAIL} C `{EMAIL}` D {EMAIL} E {EMAIL} "
        f'F "{PHONE}" G {PHONE}. Not mine: [EMAIL_7] [NOTE_1] EMAILS_1'
    )


@pytest.mark.parametrize("stream", [True, False])
def test_pii_the_model_adds_is_redacted_and_history_keeps_references(
    gw: Served, fake: FakeUpstream, stream: bool
) -> None:
    fake.answer = lambda body: Answer(
        content=f"Noted {last_user_text(body)[26:35]}. Also write to {INJECTED[0]} "
        f"or call {INJECTED[1]}."
    )
    conversation = f"inject-{stream}"
    response = _post(gw, _body(stream), {"X-Coatcheck-Conversation": conversation})
    if stream:
        text = _content(_chunks(response))
    else:
        text = response.json()["choices"][0]["message"]["content"]
    assert text == (f"Noted {EMAIL}. Also write to [REDACTED_EMAIL] or call [REDACTED_PHONE]."), (
        text
    )
    lines = _history(gw, conversation)
    assert [line["direction"] for line in lines] == ["in", "out"]
    dump = json.dumps(lines)
    for value in (*VALUES, *INJECTED):
        assert value not in dump
    assert "CC_EMAIL_ADDRESS_" in lines[0]["text"] and "CC_CREDIT_CARD_" in lines[0]["text"]
    assert {e["type"] for e in lines[0]["entities"]} >= {"EMAIL_ADDRESS", "CREDIT_CARD"}
    assert lines[1]["text"].startswith("Noted CC_EMAIL_ADDRESS_")
    assert "[REDACTED_EMAIL]" in lines[1]["text"]


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "send_mail",
            "description": f"Sends mail; the default sender is {EMAIL}",
            "parameters": {"type": "object", "properties": {"to": {"type": "string"}}},
        },
    }
]


def _tool_body(stream: bool) -> dict[str, Any]:
    messages = [
        {"role": "system", "content": f"The operator's phone is {PHONE}."},
        {"role": "user", "content": f"Mail the invoice to {EMAIL}."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": json.dumps({"card": CARD})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": f"card {CARD} belongs to {EMAIL}"},
    ]
    return {"model": "gpt-test", "stream": stream, "messages": messages, "tools": TOOLS}


@pytest.mark.parametrize("stream", [True, False])
def test_tool_calls_are_redacted_up_and_restored_down(
    gw: Served, fake: FakeUpstream, stream: bool
) -> None:
    def call(body: dict[str, Any]) -> Answer:
        up = json.dumps(body)
        assert "[EMAIL_1]" in up and "[CARD_1]" in up and "[PHONE_1]" in up
        return Answer(
            tool_calls=[("send_mail", '{"to": "[EMAIL_1]", "note": "card EMAIL_1 CARD_1"}')],
            finish_reason="tool_calls",
        )

    fake.answer = call
    response = _post(gw, _tool_body(stream))
    if stream:
        arguments = _arguments(_chunks(response))[0]
    else:
        assert response.status_code == 200, response.text
        message = response.json()["choices"][0]["message"]
        arguments = message["tool_calls"][0]["function"]["arguments"]
        assert message["tool_calls"][0]["function"]["name"] == "send_mail"
    assert json.loads(arguments) == {"to": EMAIL, "note": f"card {EMAIL} {CARD}"}
    _nothing_went_up(fake)


def test_one_conversation_keeps_its_placeholders_and_references(
    gw: Served, fake: FakeUpstream
) -> None:
    headers = {"X-Coatcheck-Conversation": "stable-1"}
    first = _post(gw, _body(False, f"I am {EMAIL}"), headers)
    second = _post(gw, _body(False, f"Call {PHONE}, mail {EMAIL}"), headers)
    by_user = _post(gw, _body(False, f"mail {EMAIL}", user="u-42"))
    alone = [_post(gw, _body(False, f"mail {EMAIL}")) for _ in range(2)]
    assert all(r.status_code == 200 for r in (first, second, by_user, *alone))
    ups = [last_user_text(r.body) for r in fake.received]
    assert ups == [
        "I am [EMAIL_1]",
        "Call [PHONE_1], mail [EMAIL_1]",
        "mail [EMAIL_1]",
        "mail [EMAIL_1]",
        "mail [EMAIL_1]",
    ]
    assert by_user.headers["x-coatcheck-conversation"] == "user:u-42"
    assert second.headers["x-coatcheck-conversation"] == "stable-1"
    ids = {r.headers["x-coatcheck-conversation"] for r in alone}
    assert len(ids) == 2 and all(i.startswith("llm-") for i in ids)
    lines = _history(gw, "stable-1")
    refs = [re.findall(r"CC_EMAIL_ADDRESS_\w{10}", line["text"]) for line in lines]
    assert refs[0] and refs[0][0] == refs[2][0]  # the same reference across turns
    per_request = [_history(gw, i)[0]["text"] for i in ids]
    assert per_request[0] != per_request[1]  # a conversation per request: new references


def test_a_client_cannot_fish_for_another_requests_value(gw: Served, fake: FakeUpstream) -> None:
    headers = {"X-Coatcheck-Conversation": "shared"}
    assert _post(gw, _body(False, f"mine: {EMAIL}"), headers).status_code == 200
    fake.answer = lambda body: Answer(content="[EMAIL_1] EMAIL_1")
    other = _post(gw, _body(False, "what is [EMAIL_1]? and EMAIL_1"), headers)
    assert other.json()["choices"][0]["message"]["content"] == "[EMAIL_1] EMAIL_1"
    assert last_user_text(fake.received[-1].body) == "what is [EMAIL#1]? and EMAIL#1"


def test_models_are_passed_through(gw: Served) -> None:
    response = httpx.get(f"{gw.base}/models", headers=gw.auth())
    assert response.status_code == 200
    assert response.json()["data"][0]["id"] == "fake-model"


# -- refusals, failures: OpenAI's error shape, no values ---------------------------------


def _openai_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    for value in VALUES:
        assert value not in response.text
    return error


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthorized"),
        ({"Authorization": "Bearer sk-openai-style"}, 401, "unauthorized"),
        ("viewer", 403, "forbidden"),
        ("bot", 403, "forbidden"),
        ("action-server", 403, "forbidden"),
    ],
)
def test_only_a_channel_key_may_call(
    gw: Served, fake: FakeUpstream, headers: Any, status: int, code: str
) -> None:
    if isinstance(headers, str):
        headers = gw.auth(Role(headers))
    for method, path, body in (
        ("POST", "/chat/completions", _body()),
        ("GET", "/models", None),
    ):
        response = httpx.request(method, gw.base + path, json=body, headers=headers)
        error = _openai_error(response, status, code)
        assert error["type"] == "invalid_request_error"
    assert fake.received == []


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ("{not json", None, "invalid_json"),
        ({"model": "m"}, "messages", None),
        ({"model": "m", "messages": [{"role": "wizard", "content": EMAIL}]}, None, None),
        (_body(user=7), "user", "invalid_type"),
    ],
)
def test_bad_requests_are_refused_before_anything_goes_up(
    gw: Served, fake: FakeUpstream, body: Any, param: str | None, code: str | None
) -> None:
    raw = body if isinstance(body, str) else json.dumps(body)
    response = httpx.post(
        f"{gw.base}/chat/completions",
        content=raw,
        headers={**gw.auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert EMAIL not in response.text and fake.received == []


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (json.dumps(_body(content=EMAIL + " " + "x" * 70_000)), 413, "too_large"),
        ('{"model": "m", "messages": ' + "[" * 40 + "]" * 40 + "}", 400, "too_deep"),
    ],
)
def test_body_limits_answer_in_openai_shape(
    gw: Served, fake: FakeUpstream, raw: str, status: int, code: str
) -> None:
    """The limits refuse before routing (no exception handler runs): an SDK client still
    reads `error.message`, and the webhook keeps coatcheck's own shape."""
    response = httpx.post(
        f"{gw.base}/chat/completions",
        content=raw,
        headers={**gw.auth(), "Content-Type": "application/json"},
    )
    assert _openai_error(response, status, code)["type"] == "invalid_request_error"
    assert fake.received == []
    ours = httpx.post(f"{gw.url}/webhooks/rest/webhook", content=raw, headers=gw.auth())
    assert ours.status_code == status and ours.json()["error"] == code


@pytest.mark.parametrize(
    ("headers", "user", "param"),
    [
        ({"X-Coatcheck-Conversation": "x" * 256}, None, "X-Coatcheck-Conversation"),
        ({"X-Coatcheck-Conversation": ""}, None, "X-Coatcheck-Conversation"),
        ({}, "u\r\nX-Injected: 1", "user"),
        ({}, "u\x00", "user"),
        ({}, "x" * 251, "user"),
    ],
)
def test_a_bad_conversation_id_is_refused(
    gw: Served, fake: FakeUpstream, headers: dict[str, str], user: str | None, param: str
) -> None:
    body = _body() if user is None else _body(user=user)
    response = _post(gw, body, headers)
    assert _openai_error(response, 400, "invalid_value")["param"] == param
    assert "X-Injected" not in response.headers and fake.received == []


def test_a_conversation_id_that_is_no_header_value_is_not_echoed(
    gw: Served, fake: FakeUpstream
) -> None:
    response = _post(gw, _body(False, "hi", user="漢字"))
    assert response.status_code == 200, response.text
    assert "x-coatcheck-conversation" not in response.headers
    assert [line["direction"] for line in _history(gw, "user:漢字")] == ["in", "out"]


@pytest.mark.parametrize("stream", [True, False])
def test_provider_errors_come_back_in_openai_shape_without_text(
    gw: Served, fake: FakeUpstream, stream: bool
) -> None:
    fake.error = (
        429,
        {"error": {"message": f"quota for {EMAIL}", "type": "rate_limit", "code": "quota"}},
    )
    response = _post(gw, _body(stream))
    error = _openai_error(response, 429, "quota")
    assert error["type"] == "rate_limit"


def test_a_stream_that_breaks_ends_with_an_error_event_and_no_done(
    gw: Served, fake: FakeUpstream
) -> None:
    fake.piece = 4
    stream = _stream_bytes(fake, gw)
    fake.cut_after = stream.index(b'"ARD_"')
    response = _post(gw, _body())
    assert response.status_code == 200
    decoder = SseDecoder()
    events = decoder.feed(response.content) + decoder.finish()
    assert "[DONE]" not in events
    last = json.loads(events[-1])
    assert last["error"]["type"] == "upstream_error"
    text = "".join(
        c["delta"].get("content") or "" for e in events[:-1] for c in json.loads(e)["choices"]
    )
    assert text.startswith(f"Synthetic record: contact {EMAIL}, card ")
    assert CARD not in response.text


@pytest.mark.parametrize("stream", [True, False])
def test_provider_down_is_a_502_and_nothing_leaks(tmp_path: Path, stream: bool) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    settings = settings_for(f"sqlite:///{tmp_path / 'down.db'}", tmp_path, dead)
    with served(settings) as gw:
        response = _post(gw, _body(stream))
        error = _openai_error(response, 502, None)  # type: ignore[arg-type]
        assert error["type"] == "upstream_error"
        models = httpx.get(f"{gw.base}/models", headers=gw.auth())
        assert models.status_code == 502 and models.json()["error"]["type"] == "upstream_error"


def test_vault_down_is_a_503_and_nothing_goes_up(tmp_path: Path) -> None:
    fake = FakeUpstream()
    db = tmp_path / "vault-down.db"
    with (
        threaded(fake.app()) as upstream,
        served(settings_for(f"sqlite:///{db}", tmp_path, upstream + "/v1")) as gw,
    ):
        assert _post(gw, _body(False)).status_code == 200
        fake.received.clear()
        with sqlite3.connect(db) as conn:  # the vault's table goes away under it
            conn.execute("ALTER TABLE stored_values RENAME TO stored_values_gone")
        for stream in (True, False):
            response = _post(gw, _body(stream, f"new value {CARD} for {EMAIL}"))
            error = _openai_error(response, 503, "redaction_unavailable")
            assert error["type"] == "server_error"
        assert fake.received == []


def test_not_configured_answers_503_in_openai_shape(tmp_path: Path) -> None:
    with served(settings_for(f"sqlite:///{tmp_path / 'none.db'}", tmp_path, None)) as gw:
        response = _post(gw, _body())
        assert _openai_error(response, 503, "llm_not_configured")
        anonymous = httpx.post(f"{gw.base}/chat/completions", json=_body())
        assert _openai_error(anonymous, 401, "unauthorized")


def test_erasing_the_subject_takes_its_placeholders(gw: Served, fake: FakeUpstream) -> None:
    from sqlalchemy import select

    from coatcheck.middleware.gateway.store.placeholders import PLACEHOLDERS

    def rows(conversation: str) -> list[Any]:
        query = select(PLACEHOLDERS).where(PLACEHOLDERS.c.conversation_id == gw.cid(conversation))
        return gw.services.store.db.read(query)

    assert _post(gw, _body(False, f"mail {EMAIL}", user="erase-me")).status_code == 200
    assert _post(gw, _body(False, f"mail {EMAIL}", user="keep-me")).status_code == 200
    assert len(rows("user:erase-me")) == 1
    erased = httpx.post(
        f"{gw.url}/v1/subjects/erase", json={"sender": "user:erase-me"}, headers=gw.auth(Role.ADMIN)
    )
    assert erased.status_code == 200, erased.text
    assert rows("user:erase-me") == [] and len(rows("user:keep-me")) == 1


def test_the_log_viewer_shows_the_exchange_with_references_only(
    gw: Served, fake: FakeUpstream
) -> None:
    conversation = "viewer-llm"
    fake.answer = lambda body: Answer(content=f"Mailed {last_user_text(body)[-10:-1]}.")
    headers = {"X-Coatcheck-Conversation": conversation}
    assert _post(gw, _body(False, f"Mail {EMAIL}."), headers).status_code == 200
    with httpx.Client(base_url=gw.url, timeout=30) as client:
        form = client.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        signed = client.post(
            "/ui/login", data={"api_key": gw.keys[Role.VIEWER], "csrf": csrf.group(1)}
        )
        assert signed.status_code == 303
        page = client.get(f"/ui/conversations/{gw.cid(conversation)}")
    assert page.status_code == 200
    assert EMAIL not in page.text
    assert page.text.count('data-reference="CC_EMAIL_ADDRESS_') >= 2  # the prompt and answer
    assert "Mailed" in page.text


def test_the_rate_limit_counts_requests_per_conversation(tmp_path: Path) -> None:
    fake = FakeUpstream()
    db = tmp_path / "rate.db"
    settings = settings_for(f"sqlite:///{db}", tmp_path, None, rate_limit=2)
    with threaded(fake.app()) as upstream:
        settings = settings.model_copy(update={"llm_upstream_url": upstream + "/v1"})
        with served(settings) as gw:
            headers = {"X-Coatcheck-Conversation": "chatty"}
            for _ in range(2):
                assert _post(gw, _body(False, f"mail {EMAIL}"), headers).status_code == 200
            with sqlite3.connect(db) as conn:
                (before,) = conn.execute("SELECT count(*) FROM stored_values").fetchone()
            refused = _post(gw, _body(False, f"card {CARD}"), headers)
            error = _openai_error(refused, 429, "rate_limited")
            assert error["type"] == "invalid_request_error"
            assert int(refused.headers["retry-after"]) >= 1
            with sqlite3.connect(db) as conn:  # the refused request's value was rolled back
                (after,) = conn.execute("SELECT count(*) FROM stored_values").fetchone()
            assert after == before
            assert len(fake.received) == 2
            other = _post(gw, _body(False, "hi"), {"X-Coatcheck-Conversation": "quiet"})
            assert other.status_code == 200
