"""Finding 4 (second half): JSON escapes in a typed Rasa `/intent{...}` payload.

Rasa decodes the JSON after `/intent` into entities; the detector scanned the escaped
text.  `/inform{"email":"jane\\u0040example.com"}` put `jane@example.com` into the bot's
entities, `\\u0043C_` a reference look-alike past the defang.  Against a running gateway
and a stub bot: every payload is decoded here the way Rasa's RegexMessageHandler does,
and no raw value nor a parseable look-alike may come out of what the bot received.  The
chosen fix (README, Decisions) refuses a payload holding a backslash (422); payloads
without escapes are scanned like any text ("no match" rows: they pass, values vaulted).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import serving
from tests.security.served import Live, serve
from tests.service.gateway_helpers import StubBot

# Rasa 3's RegexMessageHandler: `/intent@confidence{entities}rest`.
_RASA = re.compile(r"^/(?P<intent>[^{@]+)(?P<confidence>@[0-9.]+)?(?P<entities>{.+})?", re.DOTALL)


def rasa_entities(text: str) -> list[str]:
    """The entity values (as strings) Rasa would extract from `text`."""
    match = _RASA.match(text.strip())
    if match is None or match["entities"] is None:
        return []
    try:
        parsed = json.loads(match["entities"])
    except ValueError:
        return []
    if not isinstance(parsed, dict):
        return []
    values: list[str] = []
    for key, value in parsed.items():
        values.append(str(key))
        values.extend(str(v) for v in (value if isinstance(value, list) else [value]))
    return values


LOOKALIKE = "CC_EMAIL_ADDRESS_0123456789"
SMUGGLED = [
    ("email-at", r'/inform{"email":"jane\u0040example.com"}', "jane@example.com"),
    ("email-all", r'/inform{"e":"\u006aane@example\u002ecom"}', "jane@example.com"),
    ("card-digits", r'/pay{"card":"\u0034111 1111 1111 1111"}', "4111 1111 1111 1111"),
    ("lookalike", r'/inform{"ref":"\u0043C_EMAIL_ADDRESS_0123456789"}', "CC_EMAIL_ADDRESS_"),
    ("solidus", r'/inform{"email":"jane@example\/com"}', "jane@example/com"),
    ("key-escape", r'/inform{"jane\u0040example.com":1}', "jane@example.com"),
    ("list", r'/inform{"e":["x","jane\u0040example.com"]}', "jane@example.com"),
    ("confidence", r'/inform@0.9{"email":"jane\u0040example.com"}', "jane@example.com"),
]
CLEAN = [
    ("button", '/choose{"size":"large"}', None),
    ("value-vaulted", '/inform{"email":"jane@example.com"}', "jane@example.com"),
    ("plain-escape-text", r"my name is \u0040 not an intent", None),
    ("lookalike-defanged", '/inform{"ref":"CC_EMAIL_ADDRESS_0123456789"}', LOOKALIKE),
]


@pytest.fixture(scope="module")
def bot() -> Iterator[StubBot]:
    stub = StubBot()
    with serving("/webhooks/rest/webhook", stub.handle) as url:
        stub.url = url
        yield stub


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, bot: StubBot) -> Iterator[Live]:
    tmp: Path = tmp_path_factory.mktemp("escapes")
    with serve(tmp, config={}, bot_url=bot.url) as server:
        yield server


def _bot_learned(payloads: list[dict[str, Any]], secret: str) -> list[str]:
    """Where the bot holds `secret`: its text, or the entities Rasa decodes from it."""
    found = []
    for payload in payloads:
        text = str(payload["message"])
        values = [text, *rasa_entities(text)]
        found += [v for v in values if secret in v]
    return found


@pytest.mark.parametrize(
    ("message", "secret"), [r[1:] for r in SMUGGLED], ids=[r[0] for r in SMUGGLED]
)
def test_escaped_payloads_do_not_reach_the_bot(
    live: Live, bot: StubBot, message: str, secret: str
) -> None:
    assert any(secret in v for v in rasa_entities(message))  # the attack works on Rasa
    seen = len(bot.received)
    answer = live.say("smuggler", message)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "imitates_gateway"
    assert secret not in answer.text
    assert _bot_learned(bot.received[seen:], secret) == []


@pytest.mark.parametrize(("message", "secret"), [r[1:] for r in CLEAN], ids=[r[0] for r in CLEAN])
def test_payloads_without_escapes_are_scanned_like_text(
    live: Live, bot: StubBot, message: str, secret: str | None
) -> None:
    seen = len(bot.received)
    answer = live.say("honest", message)
    assert answer.status_code == 200, answer.text
    [payload] = bot.received[seen:]
    if secret is None:
        assert payload["message"] == message
    else:
        assert _bot_learned([payload], secret) == []
        assert rasa_entities(payload["message"]) or "intent" not in message
