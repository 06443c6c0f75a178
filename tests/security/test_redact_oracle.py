"""Issue 14, finding 2: `/v1/redact` into a conversation was an equality oracle.

The attack: a `bot` or `action-server` key redacts a guessed value into the victim's
conversation and compares the reference it gets with the one it saw; before this change
the right guess came back as the victim's own reference ("same value, same reference"),
unaudited, and every wrong guess was stored in the victim's vault.  Now only the channel
leg (which sent the value) and an action server with a grant for that conversation and
type get existing references; everyone else gets `[TYPE]`, nothing stored, audited.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from coatcheck.middleware.gateway.apikeys import Role
from tests.security.live import Gateway, live_gateway

EMAIL = "jane.victim@example.com"
GUESSES = ["john.victim@example.com", "jane.victim@example.org", EMAIL]
# What main accepts too: an allow-listed action with a grant for e-mail addresses.
CONFIG = {"actions": {"action_send_mail": ["EMAIL_ADDRESS"], "action_card": ["CREDIT_CARD"]}}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with live_gateway(tmp_path_factory.mktemp("redact"), CONFIG) as live:
        yield live


def victim(gateway: Gateway, conversation: str) -> str:
    """The user gives an address on the channel leg (by the real id); the bot sees its
    reference (under the pseudonym)."""
    body = {"text": f"write to {EMAIL}", "conversation_id": conversation}
    response = gateway.post("/v1/redact", body, Role.CHANNEL)
    assert response.status_code == 200, response.text
    (entity,) = response.json()["entities"]
    return str(entity["ref"])


def grant(gateway: Gateway, conversation: str, action: str) -> str:
    types = ["EMAIL_ADDRESS"] if action == "action_send_mail" else ["CREDIT_CARD"]
    body = {
        "conversation_id": conversation,
        "entity_types": types,
        "purpose": "p",
        "action": action,
    }
    response = gateway.post("/v1/grants", body, Role.ACTION_SERVER)
    assert response.status_code == 200, response.text
    return str(response.json()["grant"])


def guess(
    gateway: Gateway, conversation: str, role: Role, value: str, token: str | None
) -> list[str | None]:
    body = {"text": value, "conversation_id": conversation}
    if token is not None:
        body["grant"] = token
    response = gateway.post("/v1/redact", body, role)
    assert response.status_code == 200, response.text
    assert value not in response.text  # the text is redacted all the same
    return [entity["ref"] for entity in response.json()["entities"]]


@pytest.mark.parametrize(
    ("role", "grant_for"),
    [
        (Role.BOT, None),
        (Role.ACTION_SERVER, None),
        (Role.ACTION_SERVER, "own"),  # a grant, but for the attacker's own conversation
        (Role.ACTION_SERVER, "card"),  # a grant for the victim's conversation, another type
    ],
)
def test_guessing_a_value_links_nothing_and_stores_nothing(
    gateway: Gateway, role: Role, grant_for: str | None
) -> None:
    sender = f"victim-{role.value}-{grant_for}"
    reference = victim(gateway, sender)
    conversation = gateway.cid(sender)  # what the bot and the action server name it by
    stored = gateway.stored_values(conversation)
    token = None
    if grant_for == "own":
        token = grant(gateway, gateway.cid(f"attacker-{sender}"), "action_send_mail")
    elif grant_for == "card":
        token = grant(gateway, conversation, "action_card")
    answers = [guess(gateway, conversation, role, value, token) for value in GUESSES]
    assert all(reference not in refs for refs in answers)  # before: the third one matched
    assert answers == [[None]] * len(GUESSES)  # no reference at all: `[EMAIL_ADDRESS]`
    assert gateway.stored_values(conversation) == stored  # no wrong guess in the vault
    rows = gateway.audit(conversation, "redact")
    mine = [row for row in rows if row.actor.startswith(f"{role.value}:")]
    assert len(mine) == len(GUESSES)
    how = "granted" if grant_for == "card" else "unlinked"  # the grant holds; not for e-mail
    assert all((row.purpose or "").startswith(how) for row in mine)
    assert all(EMAIL not in repr(row) for row in rows)


def test_the_channel_and_a_granted_action_keep_same_value_same_reference(
    gateway: Gateway,
) -> None:
    """The legitimate holders still get the existing reference (re-tokenising works)."""
    reference = victim(gateway, "victim-legit")
    assert guess(gateway, "victim-legit", Role.CHANNEL, EMAIL, None) == [reference]
    conversation = gateway.cid("victim-legit")  # the channel speaks the real id, others not
    token = grant(gateway, conversation, "action_send_mail")
    assert guess(gateway, conversation, Role.ACTION_SERVER, EMAIL, token) == [reference]
    purposes = sorted(row.purpose or "" for row in gateway.audit(conversation, "redact"))
    assert [p.split(":")[0] for p in purposes] == ["granted", "linked", "linked"]
