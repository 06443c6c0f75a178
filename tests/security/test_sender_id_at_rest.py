"""Issue 14, finding 7: conversation ids are personal data.

The attack: an SMS/WhatsApp-style channel uses the user's phone number as the Rasa
`sender`.  Before pseudonyms it was stored in clear in history, conversation state, rate
counters, audit rows and exports, and forwarded to the bot.  Now the channel adapter
turns it into a keyed pseudonym at the edge: the bot, every store and every staff answer
see `p_...` only; the channel's replies still go to the real number; staff find the
conversation by the real number through a POST (hashed the same way); an action that
needs the number asks for a `SENDER_ID` grant like for any other value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from coatcheck.middleware.gateway.apikeys import Role
from tests.security.live_gateway import found_in, live_gateway

SENDER = "+14155550123"
FORMS = [SENDER, "14155550123", "4155550123", "+1 415 555 0123", "415-555-0123", "555-0123"]
CONFIG: dict[str, Any] = {
    "types": {"EMAIL_ADDRESS": {"confirm": False}},
    "actions": {"action_call_back": ["SENDER_ID"], "action_mail": ["EMAIL_ADDRESS"]},
}
PSEUDONYM = re.compile(r"^p_[a-z2-7]{26}$")


def _echo(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"recipient_id": payload["sender"], "text": f"echo: {payload['message']}"}]


def test_a_phone_number_sender_leaves_no_raw_id_at_rest(tmp_path: Path) -> None:
    with live_gateway(tmp_path, _echo, CONFIG) as live:
        replies = [live.say(SENDER, "hello"), live.say(SENDER, "mail me at sms.user@example.org")]
        cid = live.bot.received[-1]["sender"]
        meta = live.bot.received[-1]["metadata"]["coatcheck"]
        # staff: a lookup by the real number, an audited reveal; the action server: grants
        found = live.post("/v1/senders/history", Role.VIEWER, {"sender": SENDER})
        ref = meta["entities"][0]["ref"]
        audited = live.post(
            "/v1/reveal", Role.AUDITOR, {"conversation_id": cid, "ref": ref, "purpose": "audit"}
        )
        grant = live.post(
            "/v1/grants",
            Role.ACTION_SERVER,
            {
                "conversation_id": cid,
                "entity_types": ["SENDER_ID"],
                "purpose": "call back",
                "action": "action_call_back",
            },
        ).json()["grant"]
        number = live.post(
            "/v1/reveal",
            Role.ACTION_SERVER,
            {"conversation_id": cid, "ref": meta.get("sender", ""), "grant": grant},
        )
        ended = live.post(f"/v1/conversations/{SENDER}/end", Role.CHANNEL)  # the channel's id
        listing = live.get(f"/v1/conversations/{cid}/history", Role.VIEWER)
        bot_view = json.dumps(live.bot.received)
    # the bot never holds the number; nothing at rest does (database, DEBUG log, export)
    assert [form for form in FORMS if form in bot_view] == []
    answers = [("history API", listing.text), ("lookup", found.text), ("end", ended.text)]
    assert found_in(live, FORMS, *answers) == []
    # the channel's replies go to the real number
    assert {r["recipient_id"] for answer in replies for r in answer} == {SENDER}
    # the bot holds the pseudonym and a reference
    assert PSEUDONYM.match(cid) and {p["sender"] for p in live.bot.received} == {cid}
    assert meta["sender"].startswith("CC_SENDER_ID_")
    # staff find it by the real number; the answer names the pseudonym only
    assert found.status_code == 200 and found.json()["conversation_id"] == cid
    assert len(found.json()["messages"]) == 4
    assert audited.status_code == 200 and ended.status_code == 200
    assert ended.json()["conversation_id"] == cid
    # the action that needs the number gets it by grant, like any other value
    assert number.status_code == 200 and number.json() == {"value": SENDER, "type": "SENDER_ID"}
    assert (live.dir / "export.jsonl").read_text().count(cid) >= 1  # exported, by pseudonym


def test_staff_lookup_of_an_unknown_sender_finds_nothing(tmp_path: Path) -> None:
    with live_gateway(tmp_path, _echo, CONFIG) as live:
        live.say(SENDER, "hello")
        other = live.post("/v1/senders/history", Role.VIEWER, {"sender": "+14155550124"})
        refused = live.post("/v1/senders/history", Role.BOT, {"sender": SENDER})
    assert other.status_code == 200 and other.json()["messages"] == []
    assert PSEUDONYM.match(other.json()["conversation_id"])
    assert refused.status_code == 403
