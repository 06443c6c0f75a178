"""Canary: planted values never show up in logs (DEBUG), the database files or error bodies."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gateway_helpers import Service, StubBot

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.recent import RecentValues
from coatcheck.middleware.service.logfilter import RedactingFilter

CANARIES = {
    "email": "canary.bird@example.com",
    "phone": "+1 415 555 0199",
    "card": "4111 1111 1111 1111",
    "ssn": "078-05-1120",
}
PIN = "739182"


def database_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.glob("cc.db*"))


def test_canaries_never_leak(
    service_factory: Callable[..., Service],
    stub_bot: StubBot,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    service = service_factory(bot_url=stub_bot.url)
    stub_bot.script = lambda p: (
        [{"text": "PIN?"}, {"custom": {"coatcheck": {"expect": "PIN", "capture": "whole"}}}]
        if p["message"] == "pin please"
        else [{"recipient_id": p["sender"], "text": f"got {p['message']}"}]
    )
    bodies: list[str] = []
    for value in CANARIES.values():
        bodies.append(service.say("canary", f"my value is {value}").text)
    bodies.append(service.say("canary", "pin please").text)
    bodies.append(service.say("canary", PIN).text)
    # Bad requests carrying the values: the error bodies must not echo them.
    bad: list[Any] = [
        {"sender": ["x"], "message": CANARIES["email"]},
        {"sender": "canary", "message": {"nested": CANARIES["card"]}},
        {"sender": "canary", "message": CANARIES["ssn"] + "\u0000"},
    ]
    for body in bad:
        response = service.client.post(
            "/webhooks/rest/webhook", json=body, headers=service.auth(Role.CHANNEL)
        )
        assert response.status_code == 422
        bodies.append(response.text)
    bodies.append(
        service.client.post(
            "/v1/redact",
            json={
                "text": CANARIES["phone"],
                "conversation_id": "canary",
                "extra": CANARIES["email"],
            },
            headers=service.auth(Role.BOT),
        ).text
    )
    history = service.client.get(
        f"/v1/conversations/{service.cid('canary')}/history", headers=service.auth(Role.VIEWER)
    )
    assert len(history.json()["messages"]) == 12
    logging.getLogger("app").error("user said %s", CANARIES["email"])  # through the filter
    logging.getLogger("app").debug("the pin was %s.", PIN)  # a context-only value
    planted = [*CANARIES.values(), PIN]
    bot_view = json.dumps(stub_bot.received)
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    db = database_bytes(tmp_path)
    assert "[EMAIL_ADDRESS]" in logs  # the filter did run on the planted log lines
    assert "the pin was [REDACTED]." in logs
    for value in planted:
        assert value not in logs, "log"
        assert value not in history.text, "history"
        assert value not in bot_view, "bot"
        assert all(value not in body for body in bodies), "error body"
        assert value.encode() not in db, "database file"


SENDERS = ["+14155550177", "whatsapp:+4915112345678"]  # what SMS/WhatsApp channels send
SENDER_FORMS = [*SENDERS, "4155550177", "+1 415 555 0177", "4915112345678", "015112345678"]
CRM = {  # what the bot itself writes: a CRM lookup
    "email": "crm.canary@example.net",
    "phone": "+44 20 7946 0958",
    "card": "5555 5555 5555 4444",
    "iban": "GB82 WEST 1234 5698 7654 32",
}


def _crm_reply(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"text": f"On file: {CRM['email']} / {CRM['phone']}"},
        {
            "text": "Pay with?",
            "buttons": [{"title": CRM["card"], "payload": f"/pay {CRM['iban']}"}],
        },
        {"custom": {"crm": [CRM["email"], {"iban": CRM["iban"]}]}},
        {"attachment": {"payload": {"src": f"https://crm.example/{CRM['email']}"}}},
    ]


def test_bot_reply_canaries_and_phone_senders_never_leak(
    service_factory: Callable[..., Service],
    stub_bot: StubBot,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """The bot writes canaries into every reply field, the senders are phone numbers: 0 of
    either in the logs (DEBUG), the database files, the history API or what the bot got;
    the channel still gets the reply as written, addressed to the real sender."""
    caplog.set_level(logging.DEBUG)
    service = service_factory(bot_url=stub_bot.url)
    stub_bot.script = _crm_reply
    answers = [service.say(sender, f"hi, it is {CANARIES['email']}") for sender in SENDERS]
    assert [{r["recipient_id"] for r in a.json()} for a in answers] == [{s} for s in SENDERS]
    assert all(CRM["email"] in a.text for a in answers)  # as the bot wrote it
    ended = service.client.post(
        f"/v1/conversations/{SENDERS[0]}/end", headers=service.auth(Role.CHANNEL)
    )
    assert ended.status_code == 200
    histories = [
        service.client.post(
            "/v1/senders/history", json={"sender": sender}, headers=service.auth(Role.VIEWER)
        ).text
        for sender in SENDERS
    ]
    assert all("CC_EMAIL_ADDRESS_" in h and "CC_PHONE_NUMBER_" in h for h in histories)
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    db = database_bytes(tmp_path)
    bot_view = json.dumps(stub_bot.received)
    for value in [*CRM.values(), *SENDER_FORMS, CANARIES["email"]]:
        assert value not in logs, "log"
        assert all(value not in history for history in histories), "history"
        assert value.encode() not in db, "database file"
    for value in [*SENDER_FORMS, CANARIES["email"]]:
        assert value not in bot_view, "bot"


def _record(msg: str, args: Any = (), exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"bad value {CANARIES['email']}")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info)


@pytest.mark.parametrize(
    ("record", "kept"),
    [
        (_record("mail %s", (CANARIES["email"],)), "mail [EMAIL]"),
        (_record("plain %d items", (3,)), "plain 3 items"),
        (_record("failed", exc=True), "ValueError: bad value [EMAIL]"),
        (_record("broken %s %s", ("one",)), "broken %s %s"),
    ],
)
def test_filter_redacts_messages_args_and_tracebacks(record: logging.LogRecord, kept: str) -> None:
    flt = RedactingFilter(lambda text: text.replace(CANARIES["email"], "[EMAIL]"))
    assert flt.filter(record) is True
    formatted = logging.Formatter().format(record)
    assert kept in formatted
    assert CANARIES["email"] not in formatted
    assert record.args is None and record.exc_info is None


@pytest.mark.parametrize(
    ("remembered", "line", "expected"),
    [
        ("739182", "pin 739182.", "pin [REDACTED]."),
        ("hunter2 horse", "pw 'horse' then hunter2", "pw '[REDACTED]' then [REDACTED]"),
        ("739182", "pin 7391820 and 39182", "pin 7391820 and 39182"),
        ("739182", "nothing here", "nothing here"),
        ("+14155550123", "POST /v1/x/+14155550123/end", "POST /v1/x/[REDACTED]/end"),
        ("+14155550123", "GET /x?sender=+14155550123&a=1", "GET /x?sender=[REDACTED]&a=1"),
        ("+14155550123", "GET /x/+141555501234/end", "GET /x/+141555501234/end"),
    ],
)
def test_recent_values(remembered: str, line: str, expected: str) -> None:
    recent = RecentValues(capacity=4)
    recent.add(remembered)
    assert recent.redact(line) == expected
    assert remembered not in repr(recent)


def test_recent_values_bounded() -> None:
    recent = RecentValues(capacity=2)
    for value in ("aaa1", "bbb2", "ccc3"):
        recent.add(value)
    assert recent.redact("aaa1 bbb2 ccc3") == "aaa1 [REDACTED] [REDACTED]"
