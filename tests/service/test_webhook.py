"""The channel webhook: redaction before the bot, metadata, replies, directives, history."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from gateway_helpers import Service, StubBot

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.render import parse_references

EMAIL = "jane.doe@example.com"


def history(service: Service, sender: str) -> list[dict[str, Any]]:
    response = service.client.get(
        f"/v1/conversations/{service.cid(sender)}/history", headers=service.auth(Role.VIEWER)
    )
    assert response.status_code == 200
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def test_bot_sees_references_and_metadata(service: Service, stub_bot: StubBot) -> None:
    response = service.say("u1", f"mail {EMAIL} please")
    assert response.status_code == 200
    [payload] = stub_bot.received
    assert EMAIL not in json.dumps(payload)
    [ref] = parse_references(payload["message"])
    assert ref.entity_type == "EMAIL_ADDRESS"
    meta = payload["metadata"]["coatcheck"]
    assert meta["conversation_id"] == payload["sender"] == service.cid("u1")
    assert meta["entities"] == [
        {"type": "EMAIL_ADDRESS", "ref": ref.reference, "start": ref.start, "end": ref.end}
    ]
    assert meta["sender"].startswith("CC_SENDER_ID_")
    replies = response.json()
    assert replies == [{"recipient_id": "u1", "text": f"echo: {payload['message']}"}]


@pytest.mark.parametrize(
    ("message", "redacted"),
    [(f"write to {EMAIL}", True), ("no personal data here", False)],
)
def test_history_both_directions(
    service: Service, stub_bot: StubBot, message: str, redacted: bool
) -> None:
    assert service.say("u2", message).status_code == 200
    sent = stub_bot.received[0]["message"]
    rows = history(service, "u2")
    assert [(r["direction"], r["text"]) for r in rows] == [("in", sent), ("out", f"echo: {sent}")]
    assert (sent != message) is redacted
    assert EMAIL not in json.dumps(rows)


def test_same_value_same_reference(service: Service, stub_bot: StubBot) -> None:
    service.say("u3", f"a {EMAIL}")
    service.say("u3", f"b {EMAIL}")
    refs = [parse_references(p["message"])[0].reference for p in stub_bot.received]
    assert refs[0] == refs[1]


def test_typed_lookalike_is_defanged(service: Service, stub_bot: StubBot) -> None:
    service.say("u4", "my ref is CC_EMAIL_ADDRESS_0123456789")
    assert parse_references(stub_bot.received[0]["message"]) == []


def test_context_directive_applies_to_next_message_only(
    service: Service, stub_bot: StubBot
) -> None:
    def script(payload: dict[str, Any]) -> list[dict[str, Any]]:
        if payload["message"] == "start":
            return [
                {"recipient_id": "u5", "text": "Your PIN?"},
                {"custom": {"coatcheck": {"expect": "PIN", "capture": "whole"}}},
            ]
        return [{"recipient_id": "u5", "text": "ok"}]

    stub_bot.script = script
    first = service.say("u5", "start").json()
    assert first == [{"recipient_id": "u5", "text": "Your PIN?"}]  # directive dropped
    service.say("u5", "482913")
    service.say("u5", "482913")
    pin_msg, plain_msg = stub_bot.received[1]["message"], stub_bot.received[2]["message"]
    assert "482913" not in pin_msg
    assert parse_references(pin_msg)[0].entity_type == "PIN"
    assert plain_msg == "482913"  # the rule was consumed by one message


def test_context_route_sets_rule(service: Service, stub_bot: StubBot) -> None:
    response = service.client.post(
        f"/v1/conversations/{service.cid('u6')}/context",
        json={"expect": "PIN", "capture": "whole"},
        headers=service.auth(Role.BOT),
    )
    assert response.status_code == 200
    service.say("u6", "7788")
    assert parse_references(stub_bot.received[0]["message"])[0].entity_type == "PIN"
    [line] = [r for r in history(service, "u6") if r["direction"] == "in"]
    assert [(e["type"], e["rule"]) for e in line["entities"]] == [("PIN", "context")]


def test_history_records_each_entity_with_its_rule(service: Service, stub_bot: StubBot) -> None:
    service.say("u10", f"mail {EMAIL} or card 4111 1111 1111 1111")
    rows = history(service, "u10")
    sent = parse_references(stub_bot.received[0]["message"])
    assert rows[0]["entities"] == [
        {"ref": r.reference, "type": r.entity_type, "rule": r.entity_type} for r in sent
    ]
    assert rows[1]["entities"] == []  # bot lines record none: their references are the user's
    assert EMAIL not in json.dumps(rows)


def test_confirmation_revealed_on_channel_only(service: Service, stub_bot: StubBot) -> None:
    def script(payload: dict[str, Any]) -> list[dict[str, Any]]:
        refs = parse_references(payload["message"])
        if not refs:
            return []
        prompt = f"You gave {refs[0].reference}, right?"
        return [{"custom": {"coatcheck": {"confirm": True, "text": prompt}}}]

    stub_bot.script = script
    replies = service.say("u7", f"it is {EMAIL}").json()
    assert replies == [{"recipient_id": "u7", "text": f"You gave {EMAIL}, right?"}]
    stored = history(service, "u7")[-1]
    assert stored["direction"] == "out"
    assert EMAIL not in stored["text"]
    assert parse_references(stored["text"])[0].entity_type == "EMAIL_ADDRESS"


def test_confirmation_of_foreign_reference_stays_reference(
    service: Service, stub_bot: StubBot
) -> None:
    service.say("other", f"it is {EMAIL}")
    foreign = parse_references(stub_bot.received[0]["message"])[0].reference
    stub_bot.script = lambda _: [
        {"custom": {"coatcheck": {"confirm": True, "text": f"You gave {foreign}?"}}}
    ]
    replies = service.say("u8", "hello").json()
    assert replies == [{"recipient_id": "u8", "text": f"You gave {foreign}?"}]


def test_confirm_type_revealed_in_plain_text(
    service_factory: Callable[..., Service], stub_bot: StubBot, tmp_path: Any
) -> None:
    import yaml

    config = tmp_path / "confirm.yml"
    config.write_text(yaml.safe_dump({"types": {"EMAIL_ADDRESS": {"confirm": True}}}))
    service = service_factory(bot_url=stub_bot.url, config=config)
    replies = service.say("u9", f"it is {EMAIL}").json()
    assert replies[0]["text"].startswith("echo: it is ")
    assert EMAIL in replies[0]["text"]
    assert EMAIL not in json.dumps(history(service, "u9"))


def secure_script(check: str, retries: int) -> Callable[..., list[dict[str, Any]]]:
    def script(payload: dict[str, Any]) -> list[dict[str, Any]]:
        if payload["message"] == "pay":
            directive = {
                "expect": "CARD_PIN",
                "capture": "secure",
                "check": check,
                "retries": retries,
                "retry_text": "Four digits please.",
            }
            return [{"text": "PIN?"}, {"custom": {"coatcheck": directive}}]
        return [{"text": "thanks"}]

    return script


@pytest.mark.parametrize(
    ("attempts", "retries", "bot_sees_ok", "user_replies"),
    [
        (["1234"], 1, True, ["thanks"]),
        (["12!", "5678"], 1, True, ["Four digits please.", "thanks"]),
        (["12!"], 0, False, ["thanks"]),
        (["12!", "34!"], 1, False, ["Four digits please.", "thanks"]),
    ],
)
def test_secure_capture(
    service: Service,
    stub_bot: StubBot,
    attempts: list[str],
    retries: int,
    bot_sees_ok: bool,
    user_replies: list[str],
) -> None:
    stub_bot.script = secure_script("card_pin_four", retries)
    service.say("s1", "pay")
    texts = [service.say("s1", attempt).json()[0]["text"] for attempt in attempts]
    assert texts == user_replies
    assert len(stub_bot.received) == 2  # "pay" and one capture result; retries never reach it
    trigger = stub_bot.received[1]["message"]
    assert trigger.startswith("/coatcheck_capture{")
    result = json.loads(trigger[len("/coatcheck_capture") :])
    assert result["type"] == "CARD_PIN" and result["ok"] is bot_sees_ok
    assert (result["ref"] is not None) is bot_sees_ok
    for attempt in attempts:
        assert attempt not in json.dumps(stub_bot.received)
        assert all(
            attempt not in row["text"] for row in history(service, "s1") if row["direction"] == "in"
        )


@pytest.mark.parametrize("check", ["pin_four", "nope", "pin_is"])
def test_secure_capture_with_a_check_it_cannot_use_fails_closed(
    service: Service, stub_bot: StubBot, check: str
) -> None:
    """Declared for another type, not declared, or one that takes an operand: ok is false."""
    stub_bot.script = secure_script(check, 0)
    service.say("s2", "pay")
    service.say("s2", "1234")
    trigger = stub_bot.received[1]["message"]
    result = json.loads(trigger[len("/coatcheck_capture") :])
    assert (result["ok"], result["ref"]) == (False, None)
    assert "1234" not in json.dumps(stub_bot.received)


@pytest.mark.parametrize(("reply_status", "status"), [(None, 502), (500, 502), (200, 200)])
def test_bot_failures_are_502(
    service_factory: Callable[..., Service],
    stub_bot: StubBot,
    reply_status: int | None,
    status: int,
) -> None:
    import socket

    if reply_status is None:  # nothing listens on the bot's port
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks/rest/webhook"
    else:
        url = stub_bot.url
        if reply_status == 500:
            stub_bot.script = lambda _: 1 / 0  # type: ignore[assignment,return-value]
    service = service_factory(bot_url=url)
    response = service.say("b1", f"mail {EMAIL}")
    assert response.status_code == status
    if status == 502:
        assert response.json()["error"] == "bot_unavailable"
        assert EMAIL not in response.text
