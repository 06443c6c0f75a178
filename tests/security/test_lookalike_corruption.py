"""Finding 5: the look-alike filter must never change a stored value.

The attack is no attack at all: an honest user whose e-mail address, token or password
holds `cc_` (`acc_manager@example.com`) had it stored and revealed as `acc-manager@...`
because `CC_` look-alikes were defanged before detection.  Against a running gateway: each
value goes in through the channel webhook (plain detection, a `whole` context rule, a
secure capture), its reference comes out at the bot, and an action server's granted reveal
must give back the value byte for byte.  The table has every type whose grammar admits an
underscore (the only types a `cc_` fits in) and a row per look-alike spelling; "no match"
rows hold no look-alike.  And the text the bot reads still has look-alikes outside the
values defanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coatcheck.middleware.gateway.apikeys import Role
from tests.harness import serving
from tests.security.served import Live, serve
from tests.service.gateway_helpers import StubBot

JWT_HEAD = "eyJhbGciOiJIUzI1NiJ9"
TYPES = [
    "EMAIL_ADDRESS",
    "SECRET_ASSIGNMENT",
    "SECRET_JWT",
    "SECRET_GITLAB_TOKEN",
    "ACCOUNT_HANDLE",
    "PASSWORD",
]
CONFIG: dict[str, Any] = {
    "custom_types": [{"name": "ACCOUNT_HANDLE", "regex": r"\bhandle:[A-Za-z_]{4,40}\b"}],
    "types": {"PASSWORD": {"capture": "whole"}},
    "actions": {"action_reveal_all": TYPES},
    "grants": {"ttl_seconds": 30},
}

# (row id, how it is sent, type, the message, the value the vault must give back)
ROWS = [
    (
        "email-acc_",
        "detect",
        "EMAIL_ADDRESS",
        "mail acc_manager@example.com",
        "acc_manager@example.com",
    ),
    ("email-CC_", "detect", "EMAIL_ADDRESS", "mail CC_ops@example.com now", "CC_ops@example.com"),
    ("email-_cc_", "detect", "EMAIL_ADDRESS", "mail a_cc_b@example.com", "a_cc_b@example.com"),
    (
        "email-plain",
        "detect",
        "EMAIL_ADDRESS",
        "mail plain.person@example.com",
        "plain.person@example.com",
    ),
    ("assign-acc_", "detect", "SECRET_ASSIGNMENT", "password=Hunter2_acc_Pw!", "Hunter2_acc_Pw!"),
    ("assign-CC_", "detect", "SECRET_ASSIGNMENT", "api_key: CC_9x_Secret!", "CC_9x_Secret!"),
    ("assign-plain", "detect", "SECRET_ASSIGNMENT", "password=Hunter2-Pw!", "Hunter2-Pw!"),
    (
        "jwt-_cc_",
        "detect",
        "SECRET_JWT",
        f"token {JWT_HEAD}.eyJzdWIiOiJ_cc_xyz.sig_CC_abc",
        f"{JWT_HEAD}.eyJzdWIiOiJ_cc_xyz.sig_CC_abc",
    ),
    (
        "gitlab-cc_",
        "detect",
        "SECRET_GITLAB_TOKEN",
        "glpat-abcdacc_defghCC_ijklmn",
        "glpat-abcdacc_defghCC_ijklmn",
    ),
    ("custom-cc_", "detect", "ACCOUNT_HANDLE", "me handle:acc_Pro", "handle:acc_Pro"),
    ("custom-plain", "detect", "ACCOUNT_HANDLE", "me handle:someone", "handle:someone"),
    ("whole-acc_", "whole", "PASSWORD", "Hunter2_acc_Pw!", "Hunter2_acc_Pw!"),
    (
        "whole-CC_",
        "whole",
        "PASSWORD",
        "CC_EMAIL_ADDRESS_0123456789",
        "CC_EMAIL_ADDRESS_0123456789",
    ),
    ("secure-_cc_", "secure", "PASSWORD", "x_cc_y CC_ and cc_", "x_cc_y CC_ and cc_"),
    ("secure-plain", "secure", "PASSWORD", "correct horse", "correct horse"),
]


@pytest.fixture(scope="module")
def bot() -> Iterator[StubBot]:
    stub = StubBot()
    with serving("/webhooks/rest/webhook", stub.handle) as url:
        stub.url = url
        yield stub


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, bot: StubBot) -> Iterator[Live]:
    tmp: Path = tmp_path_factory.mktemp("lookalike")
    with serve(tmp, config=CONFIG, bot_url=bot.url) as server:
        yield server


def _reference(live: Live, bot: StubBot, sender: str, how: str, entity_type: str, text: str) -> str:
    """Send `text` the way the row says; the reference the bot got for it."""
    if how != "detect":
        rule = {"expect": entity_type, "capture": how}
        set_rule = httpx.post(
            f"{live.url}/v1/conversations/{live.cid(sender)}/context",
            json=rule,
            headers=live.auth(Role.BOT),
            timeout=30,
        )
        assert set_rule.status_code == 200, set_rule.text
    seen = len(bot.received)
    answer = live.say(sender, text)
    assert answer.status_code == 200, answer.text
    [payload] = bot.received[seen:]
    if how == "secure":
        trigger = payload["message"]
        assert trigger.startswith("/coatcheck_capture")
        result = json.loads(trigger[len("/coatcheck_capture") :])
        assert result["ok"] is True and result["type"] == entity_type
        return str(result["ref"])
    found = [e for e in payload["metadata"]["coatcheck"]["entities"] if e["type"] == entity_type]
    assert len(found) == 1, payload["metadata"]
    return str(found[0]["ref"])


def _reveal(live: Live, sender: str, entity_type: str, ref: str) -> str:
    grant = httpx.post(
        f"{live.url}/v1/grants",
        json={
            "conversation_id": live.cid(sender),
            "entity_types": [entity_type],
            "purpose": "round trip",
            "action": "action_reveal_all",
        },
        headers=live.auth(Role.ACTION_SERVER),
        timeout=30,
    )
    assert grant.status_code == 200, grant.text
    shown = httpx.post(
        f"{live.url}/v1/reveal",
        json={"conversation_id": live.cid(sender), "ref": ref, "grant": grant.json()["grant"]},
        headers=live.auth(Role.ACTION_SERVER),
        timeout=30,
    )
    assert shown.status_code == 200, shown.text
    assert shown.json()["type"] == entity_type
    return str(shown.json()["value"])


@pytest.mark.parametrize(
    ("how", "entity_type", "text", "value"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_a_value_with_a_lookalike_comes_back_byte_for_byte(
    live: Live, bot: StubBot, how: str, entity_type: str, text: str, value: str
) -> None:
    sender = f"lookalike-{abs(hash((how, text))) % 10**8}"
    ref = _reference(live, bot, sender, how, entity_type, text)
    revealed = _reveal(live, sender, entity_type, ref)
    assert revealed.encode("utf-8") == value.encode("utf-8")


def test_lookalikes_outside_values_are_still_defanged(live: Live, bot: StubBot) -> None:
    seen = len(bot.received)
    answer = live.say(
        "lookalike-gaps", "CC_EMAIL_ADDRESS_0123456789 is acc_manager@example.com cc_x"
    )
    assert answer.status_code == 200, answer.text
    [payload] = bot.received[seen:]
    text = payload["message"]
    assert text.startswith("CC-EMAIL_ADDRESS_0123456789 is CC_EMAIL_ADDRESS_")
    assert text.endswith(" cc-x")
    assert "acc_manager" not in text
    [entity] = payload["metadata"]["coatcheck"]["entities"]  # the typed look-alike is none
    assert entity["type"] == "EMAIL_ADDRESS"
