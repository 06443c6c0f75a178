"""Size, depth, length, odd unicode and the per-sender rate limit: each a clear 4xx."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from gateway_helpers import Service, StubBot

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.service.limits import json_depth


def post_raw(service: Service, body: bytes) -> tuple[int, dict[str, str]]:
    response = service.client.post(
        "/webhooks/rest/webhook",
        content=body,
        headers={**service.auth(Role.CHANNEL), "Content-Type": "application/json"},
    )
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"sender": "u1", "message": "x"', 400, "malformed_json"),
        (b"not json", 400, "malformed_json"),
        (json.dumps({"sender": "u1", "message": "x" * 70_000}).encode(), 413, "too_large"),
        (
            b'{"sender": "u1", "message": "x", "metadata": ' + b"[" * 40 + b"]" * 40 + b"}",
            400,
            "too_deep",
        ),
        (b'{"sender": "u1", "message": "a\\ud800b"}', 422, "invalid_request"),
        (b'{"sender": "u1", "message": "a\\u0000b"}', 422, "invalid_request"),
        (b'{"sender": "u\\u0000", "message": "ab"}', 422, "invalid_request"),
        (json.dumps({"sender": "u1", "message": "y" * 4001}).encode(), 422, "bad_text"),
        (b'{"sender": "u1"}', 422, "invalid_request"),
        (b'{"sender": "u1", "message": "fine"}', 200, ""),
    ],
)
def test_body_limits(
    service: Service, stub_bot: StubBot, body: bytes, status: int, code: str
) -> None:
    got_status, got = post_raw(service, body)
    assert got_status == status
    if code:
        assert got["error"] == code
        assert "message" in got
        assert len(stub_bot.received) == 0
    else:
        assert len(stub_bot.received) == 1


def test_unexpected_field_name_is_not_echoed(service: Service) -> None:
    secret = "jane.canary@example.com"
    response = service.client.post(
        "/v1/redact",
        json={"text": "hi", "conversation_id": "c1", secret: 1},
        headers=service.auth(Role.BOT),
    )
    assert response.status_code == 422
    assert response.json()["message"] == "<unexpected field>: Extra inputs are not permitted"
    assert secret not in response.text


def test_validation_error_names_field_without_value(service: Service) -> None:
    secret = "jane.canary@example.com"
    status, body = post_raw(service, json.dumps({"sender": 5, "message": [secret]}).encode())
    assert status == 422
    assert "message" in body["message"] and "sender" in body["message"]
    assert secret not in json.dumps(body)


@pytest.mark.parametrize(
    ("body", "depth"),
    [(b"{}", 1), (b'{"a": [1, {"b": 2}]}', 3), (b'"[[[["', 0), (b'{"a": "\\"[["}', 1), (b"", 0)],
)
def test_json_depth(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth


def test_rate_limit_per_sender(service_factory: Callable[..., Service], stub_bot: StubBot) -> None:
    service = service_factory(bot_url=stub_bot.url, rate_limit=2, rate_window_seconds=60)
    service.clock.now = 1_800_000_010.0
    assert service.say("alice", "one").status_code == 200
    assert service.say("alice", "two").status_code == 200
    third = service.say("alice", "three")
    assert third.status_code == 429
    assert third.json()["error"] == "rate_limited"
    assert third.headers["Retry-After"] == "50"
    assert service.say("bob", "one").status_code == 200  # other senders unaffected
    assert [p["message"] for p in stub_bot.received] == ["one", "two", "one"]
    service.clock.now += 60  # next window
    assert service.say("alice", "four").status_code == 200
