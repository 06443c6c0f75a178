"""Issue 14, finding 6: a bot reply carrying personal data is stored raw.

The attack (a database reader, a log reader, an export receiver, a `viewer` key): the bot
answers with values it looked up itself (text, a button's title and payload, a quick
reply, a `custom` payload, an attachment) and a confirmation prompt; then everything at
rest is read.  On the code before the reply filter the history API, the database file and
the export carried the text as the bot wrote it.  Now every store holds references only,
while the channel still gets the reply as written (or masked, with `replies.mask_channel`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from coatcheck.grammar import parse_references
from coatcheck.middleware.gateway.apikeys import Role
from tests.security.live_gateway import Live, found_in, live_gateway

EMAIL = "crm.lookup.canary@example.org"
PHONE = "+1 415 555 0142"
CARD = "4111 1111 1111 1111"
IBAN = "DE89 3704 0044 0532 0130 00"
USER_EMAIL = "typed.by.user@example.org"  # the user's own value, revealed in a confirmation
FORMS = [EMAIL, PHONE, "4155550142", CARD, "4111111111111111", IBAN, "DE89370400440532013000"]
CONFIG: dict[str, Any] = {"types": {"EMAIL_ADDRESS": {"confirm": False}}}


def _script(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """A bot that writes what its CRM told it into every field a reply has."""
    if payload["message"].startswith("confirm"):
        [entity] = payload["metadata"]["coatcheck"]["entities"]
        prompt = f"Send it to {entity['ref']}? Our agent is on {PHONE}."
        return [{"custom": {"coatcheck": {"confirm": True, "text": prompt}}}]
    return [
        {"text": f"Your account: {EMAIL}, phone {PHONE}, card {CARD}"},
        {
            "text": "Pick one",
            "buttons": [{"title": f"Call {PHONE}", "payload": f'/call{{"number":"{PHONE}"}}'}],
            "quick_replies": [{"title": f"Mail {EMAIL}", "payload": "/mail"}],
        },
        {"custom": {"card": CARD, "rows": [{"iban": IBAN}]}},
        {"attachment": {"type": "file", "payload": {"src": f"https://crm.example/{EMAIL}"}}},
    ]


def _conversation(live: Live) -> tuple[str, list[dict[str, Any]]]:
    """Two turns; the conversation id (as the bot was given it) and the channel's replies."""
    replies = live.say("reply-attack", "what do you know about me?")
    replies += live.say("reply-attack", f"confirm {USER_EMAIL}")
    cid = live.bot.received[-1]["sender"]
    exported = live.post(f"/v1/conversations/{cid}/export", Role.ADMIN)
    assert exported.status_code == 200, exported.text
    return cid, replies


def test_a_bot_reply_leaves_no_raw_value_at_rest(tmp_path: Path) -> None:
    with live_gateway(tmp_path, _script, CONFIG) as live:
        cid, replies = _conversation(live)
        history = live.get(f"/v1/conversations/{cid}/history", Role.VIEWER)
        assert history.status_code == 200
        lines = [m["text"] for m in history.json()["messages"] if m["direction"] == "out"]
        channel = json.dumps(replies)
    # no store holds a raw value: the database, the DEBUG log, the export, the history API
    assert found_in(live, [*FORMS, USER_EMAIL], ("history API", history.text)) == []
    # they hold references of the bot's values instead (the same value, the same reference)
    refs = {r.entity_type for line in lines for r in parse_references(line)}
    assert {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD"} <= refs
    # the channel still gets what the bot wrote, and the revealed confirmation
    assert EMAIL in channel and PHONE in channel and IBAN in channel
    assert f"Send it to {USER_EMAIL}?" in channel


def test_mask_channel_sends_the_reference_form(tmp_path: Path) -> None:
    config = {**CONFIG, "replies": {"mask_channel": True}}
    with live_gateway(tmp_path, _script, config) as live:
        replies = live.say("masked", "what do you know about me?")
    channel = json.dumps(replies)
    assert all(form not in channel for form in FORMS)
    assert "CC_EMAIL_ADDRESS_" in channel and "CC_IBAN_CODE_" in channel
    assert replies[1]["buttons"][0]["title"].startswith("Call CC_PHONE_NUMBER_")
    assert found_in(live, FORMS) == []


@pytest.mark.parametrize(
    ("reply", "kept"),
    [
        ("Thanks, that is all.", "Thanks, that is all."),  # nothing to vault: unchanged
        ("Order 12 ships in 3 days.", "Order 12 ships in 3 days."),
    ],
)
def test_a_reply_without_values_is_stored_as_written(tmp_path: Path, reply: str, kept: str) -> None:
    with live_gateway(tmp_path, lambda _: [{"text": reply}], CONFIG) as live:
        assert live.say("plain", "hi") == [{"recipient_id": "plain", "text": reply}]
        cid = live.bot.received[-1]["sender"]
        history = live.get(f"/v1/conversations/{cid}/history", Role.VIEWER).json()
    assert [m["text"] for m in history["messages"] if m["direction"] == "out"] == [kept]


RETRY_EMAIL = "retry.text.canary@example.org"


def _retry_script(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """A bot whose secure capture's retry text carries a value it looked up."""
    if payload["message"] == "pay":
        directive = {
            "expect": "CARD_PIN",
            "capture": "secure",
            "check": "card_pin_four",
            "retries": 1,
            "retry_text": f"Four digits please, or write to {RETRY_EMAIL}.",
        }
        return [{"text": "PIN?"}, {"custom": {"coatcheck": directive}}]
    return [{"text": "thanks"}]


def test_a_retry_text_leaves_no_raw_value_at_rest(tmp_path: Path) -> None:
    """The rule's retry text is bot-written too: on the code before it was stored as
    written in the conversation state, the history's answer line and the message id's
    stored replies (and sent so)."""
    with live_gateway(tmp_path, _retry_script, CONFIG) as live:
        live.say("retry-attack", "pay")
        attempt = {"sender": "retry-attack", "message": "12!", "metadata": {"message_id": "m-7"}}
        answers = [
            httpx.post(
                f"{live.url}/webhooks/rest/webhook",
                json=attempt,
                headers=live.auth(Role.CHANNEL),
                timeout=30,
            )
            for _ in range(2)  # the second is a repeat: answered from the stored replies
        ]
    assert [a.status_code for a in answers] == [200, 200]
    texts = [a.json()[0]["text"] for a in answers]
    assert texts[0] == texts[1]
    assert texts[0].startswith("Four digits please, or write to CC_EMAIL_ADDRESS_")
    assert found_in(live, [RETRY_EMAIL]) == []
