"""The Rasa REST adapter pair: reply lists in and out, directives parsed at the edge."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from coatcheck.middleware.adapters.rasa_rest import (
    RasaMessage,
    RasaRestChannel,
    bot_message,
    parse_answer,
    render_reply,
)
from coatcheck.middleware.gateway import (
    BotTurn,
    CaptureResult,
    ContextRule,
    EntityRef,
    InboundTurn,
    Message,
    TextPart,
    ToolCall,
)
from coatcheck.middleware.gateway.errors import UnsupportedTurn

REF = "CC_EMAIL_ADDRESS_7k2m9xq4cw"

PLAIN: list[dict[str, Any]] = [
    {"recipient_id": "bot-side", "text": f"hi {REF}(x45aq4nj)"},
    {"text": "pick one", "buttons": [{"title": "Yes", "payload": "/yes"}, {"title": "No"}]},
    {"image": "https://example.org/a.png"},
    {"custom": {"card": {"kind": "receipt"}}},
    {"text": None, "attachment": {"k": 1}},
    {"buttons": [{"title": 3}]},  # not the usual shape: passed through as it is
    {"text": "odd", "buttons": [{"title": "t", "payload": "/p", "type": "postback"}]},
]


def test_plain_items_round_trip_to_the_channel() -> None:
    answer = parse_answer(PLAIN)
    assert (answer.rule, answer.end) == (None, False)
    assert [r.text for r in answer.replies] == [
        f"hi {REF}(x45aq4nj)",
        "pick one",
        None,
        None,
        None,
        None,
        "odd",
    ]
    out = [render_reply("u1", r) for r in answer.replies]
    assert out == [{**item, "recipient_id": "u1"} for item in PLAIN]


def test_directives_are_parsed_in_the_adapter(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    items: list[Any] = [
        {"text": "Your PIN?"},
        {"custom": {"coatcheck": {"expect": "PIN"}}},
        {"custom": {"coatcheck": {"expect": "bad name"}}},  # invalid: ignored, logged
        {"custom": {"coatcheck": {"confirm": True, "text": f"You gave {REF}?"}}},
        {"custom": {"coatcheck": {"end": "yes"}}},  # invalid: ignored, logged
        {"custom": {"coatcheck": {"unknown": 1}}},  # dropped
        "not an object",  # dropped
    ]
    answer = parse_answer(items)
    assert answer.rule == ContextRule("PIN")
    assert answer.end is False
    assert [(r.text, r.confirm) for r in answer.replies] == [
        ("Your PIN?", False),
        (f"You gave {REF}?", True),
    ]
    assert "bot directive ignored: BadText" in caplog.text
    assert 'end must be exactly {"end": true}' in caplog.text
    ended = parse_answer([{"custom": {"coatcheck": {"end": True}}}])
    assert ended.end is True and ended.replies == ()


def test_secure_directive_becomes_a_checked_rule() -> None:
    directive = {"expect": "CARD_PIN", "capture": "secure", "check": "pin_digits"}
    answer = parse_answer([{"custom": {"coatcheck": {**directive, "retries": 2}}}])
    assert answer.rule == ContextRule("CARD_PIN", "secure", "pin_digits", 2)
    # a predicate (the old form) is no check name: the directive is ignored
    for check in ({"op": "equals", "value": "1234"}, {"op": "digits"}, "Pin Digits"):
        assert parse_answer([{"custom": {"coatcheck": {**directive, "check": check}}}]).rule is None


def test_what_the_bot_is_sent() -> None:
    part = TextPart(f"mail {REF}(x)", (EntityRef("EMAIL_ADDRESS", REF, 5, 5 + len(REF) + 3),))
    turn = BotTurn("u1", (Message("user", (part,)),))
    message, metadata = bot_message(turn)
    assert message == part.text
    assert metadata == {
        "coatcheck": {
            "entities": [{"type": "EMAIL_ADDRESS", "ref": REF, "start": 5, "end": 35}],
            "conversation_id": "u1",
        }
    }
    capture = BotTurn("u1", capture=CaptureResult("CARD_PIN", True, "CC_CARD_PIN_0123456789"))
    message, metadata = bot_message(capture)
    assert message.startswith("/coatcheck_capture{")
    assert json.loads(message[len("/coatcheck_capture") :]) == {
        "type": "CARD_PIN",
        "ok": True,
        "ref": "CC_CARD_PIN_0123456789",
    }
    assert metadata == {"coatcheck": {"conversation_id": "u1"}}


def _pseudonym(sender: str) -> str:
    return "p_" + sender.encode().hex()


def test_the_channel_side() -> None:
    """The turn is keyed (and rate-counted) by the sender's pseudonym, the real id rides
    only as the value to vault (not in the repr), and replies go back to the real id."""
    channel = RasaRestChannel()
    body = RasaMessage(sender="+14155550123", message="hi", metadata={"x": 1})
    turn = channel.to_turn(body, _pseudonym)
    pseudonym = _pseudonym(body.sender)
    assert (turn.conversation_id, turn.rate_key, turn.channel) == (pseudonym, pseudonym, "rest")
    assert turn.sender == body.sender and body.sender not in repr(turn)
    assert turn.user_text() == "hi" and turn.language is None
    [reply] = parse_answer([{"text": "hello"}]).replies
    assert channel.render(body, [reply]) == [{"recipient_id": body.sender, "text": "hello"}]


@pytest.mark.parametrize(
    ("metadata", "language"),
    [
        ({"language": "de-DE"}, "de-DE"),
        ({"language": "pt_BR", "other": 1}, "pt_BR"),
        ({"language": ["de-DE"]}, None),  # not a string: no hint
        ({"language": ""}, None),
        ({"language": "x" * 36}, None),  # longer than any usable tag
        ({"locale": "de-DE"}, None),
        (None, None),
    ],
)
def test_the_channel_language_hint(metadata: dict[str, Any] | None, language: str | None) -> None:
    """Rasa's `metadata.language` is the turn's language hint (for detection); the rest of
    the channel's metadata stays behind."""
    body = RasaMessage(sender="u1", message="hi", metadata=metadata)
    assert RasaRestChannel().to_turn(body, _pseudonym).language == language


@pytest.mark.parametrize(
    "messages",
    [
        (),
        (Message("user", (TextPart("a"), TextPart("b"))),),
        (Message("user", (TextPart("a"),)), Message("user", (TextPart("b"),))),
        (Message("assistant", (TextPart("a"),)),),
        (Message("user", (ToolCall("c1", "lookup", "{}"),)),),
    ],
)
def test_shapes_the_conversation_service_does_not_take_yet(messages: tuple[Message, ...]) -> None:
    with pytest.raises(UnsupportedTurn):
        InboundTurn("c", "c", "openai", messages).user_text()


def test_a_rule_stored_with_a_predicate_by_an_older_release_fails_closed() -> None:
    """Before issue 14 a secure rule stored its predicate; read back, it names no check."""
    old = '{"expect": "PIN", "capture": "secure", "check": {"op": "digits"}, "retries": 1}'
    rule = ContextRule.from_json(old)
    assert rule.check is not None and not rule.check.isidentifier()  # matches no name
    assert ContextRule.from_json(rule.to_json()) == rule
