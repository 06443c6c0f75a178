"""Live: the real rasa-sdk action server beside a live coatcheck, both on loopback.

Payloads are shaped like Rasa 3.6's webhook requests (from a captured sample). Each test
uses its own conversation, seeds values through `/v1/redact` with the channel's key (the
leg that holds user values), and asserts on what leaves
the action server and on the vault's audit rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from coatcheck.actions import (
    CoatcheckClient,
    GrantRefused,
    RevealRefused,
    ServiceError,
    find_references,
    request_capture,
)
from coatcheck.vault import AuditRecord, Vault
from tests.actions.conftest import new_conversation, seed_text

Coatcheck = Any  # the `coatcheck` fixture's object (tests/actions/conftest.py)
pytestmark = pytest.mark.anyio

EMAIL = "alice.smith@example.com"
PHONE = "+14155550100"
GOOD_CARD = "4111111111111111"
BAD_CARD = "4111111111111112"


def _conversation(cc: Coatcheck) -> str:
    """A new conversation as the actions know it (a new sender's pseudonym)."""
    return new_conversation(cc, "live")


def _client(cc: Coatcheck) -> CoatcheckClient:
    return CoatcheckClient(cc.url, cc.action_key, timeout=10)


async def _seed(cc: Coatcheck, conversation: str, entity_type: str, value: str) -> str:
    """Vault `value` as `entity_type` in `conversation`; return its reference."""
    text = await seed_text(cc, conversation, value, entity_type)
    refs = find_references(text)
    assert len(refs) == 1 and refs[0].entity_type == entity_type, "seed not vaulted"
    return refs[0].token


def _post(url: str, payload: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/webhook", json=payload, timeout=30)


def _slot_events(body: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in body["events"] if e["event"] == "slot"}


def _audit(vault: Vault, conversation: str, action: str) -> list[AuditRecord]:
    return vault.audit_rows(conversation_id=conversation, action=action)


async def test_opted_in_action_gets_declared_types_only(
    webhook: Any, coatcheck: Coatcheck, action_server: tuple[str, Any]
) -> None:
    conv = _conversation(coatcheck)
    email_ref = await _seed(coatcheck, conv, "EMAIL_ADDRESS", EMAIL)
    phone_ref = await _seed(coatcheck, conv, "PHONE_NUMBER", PHONE)
    payload = webhook(
        "action_peek",
        conv,
        {"email": email_ref, "phone": phone_ref},
        entities=[{"entity": "email", "value": email_ref, "start": 0, "end": 27}],
    )
    response = _post(action_server[0], payload)
    assert response.status_code == 200, response.text
    slots = _slot_events(response.json())
    assert slots["email_facts"] == {"is_ref": False, "has_at": True, "digits": 0}
    assert slots["phone_facts"]["is_ref"] is True  # not declared: stays a reference
    assert slots["entity_facts"] == [{"is_ref": False, "has_at": True, "digits": 0}]


async def test_response_is_retokenized(
    webhook: Any, coatcheck: Coatcheck, action_server: tuple[str, Any]
) -> None:
    conv = _conversation(coatcheck)
    email_ref = await _seed(coatcheck, conv, "EMAIL_ADDRESS", EMAIL)
    phone_ref = await _seed(coatcheck, conv, "PHONE_NUMBER", PHONE)
    payload = webhook("action_peek", conv, {"email": email_ref, "phone": phone_ref})
    response = _post(action_server[0], payload)
    assert response.status_code == 200, response.text
    raw = response.text
    for value in (EMAIL, PHONE, "new@example.org"):
        assert value not in raw
    body = response.json()
    assert _slot_events(body)["echo"] == email_ref  # the same reference comes back
    text_reply, json_reply = body["responses"]
    assert text_reply["text"] == f"Your address is {email_ref}; call {phone_ref}."
    assert json_reply["custom"]["echo"] == email_ref
    new_refs = find_references(json_reply["custom"]["new"])
    assert [r.entity_type for r in new_refs] == ["EMAIL_ADDRESS"]  # new PII vaulted too


async def test_action_without_opt_in_sees_references(
    audit_vault: Vault, webhook: Any, coatcheck: Coatcheck, action_server: tuple[str, Any]
) -> None:
    conv = _conversation(coatcheck)
    email_ref = await _seed(coatcheck, conv, "EMAIL_ADDRESS", EMAIL)
    response = _post(action_server[0], webhook("action_plain", conv, {"email": email_ref}))
    assert response.status_code == 200, response.text
    assert _slot_events(response.json())["email_facts"]["is_ref"] is True
    assert not _audit(audit_vault, conv, "reveal")


async def test_reveals_are_audited_with_action_and_purpose(
    audit_vault: Vault, webhook: Any, coatcheck: Coatcheck, action_server: tuple[str, Any]
) -> None:
    conv = _conversation(coatcheck)
    email_ref = await _seed(coatcheck, conv, "EMAIL_ADDRESS", EMAIL)
    response = _post(action_server[0], webhook("action_peek", conv, {"email": email_ref}))
    assert response.status_code == 200, response.text
    reveals = _audit(audit_vault, conv, "reveal")
    assert len(reveals) == 1
    row = reveals[0]
    assert (row.actor, row.purpose, row.entity_type) == (
        "action_peek",
        "live test",
        "EMAIL_ADDRESS",
    )
    assert EMAIL not in repr(row)
    assert audit_vault.verify_audit().ok


async def test_type_outside_allow_list_is_refused(
    audit_vault: Vault, webhook: Any, coatcheck: Coatcheck, action_server: tuple[str, Any]
) -> None:
    conv = _conversation(coatcheck)
    email_ref = await _seed(coatcheck, conv, "EMAIL_ADDRESS", EMAIL)
    payload = webhook("action_greedy", conv, {"email": email_ref})
    response = _post(action_server[0], payload)
    assert response.status_code == 500
    assert "GrantRefused" in response.text or "grants" in response.text
    assert EMAIL not in response.text
    assert not _audit(audit_vault, conv, "reveal")


async def test_grant_refused_for_type_not_listed(coatcheck: Coatcheck) -> None:
    async with _client(coatcheck) as client:
        with pytest.raises(GrantRefused) as info:
            await client.grant(_conversation(coatcheck), {"PHONE_NUMBER"}, "action_peek", "p")
        assert info.value.status == 403
        with pytest.raises(GrantRefused):
            await client.grant(_conversation(coatcheck), {"EMAIL_ADDRESS"}, "action_unknown", "p")


async def test_grant_refused_for_other_conversation(coatcheck: Coatcheck) -> None:
    mine, other = _conversation(coatcheck), _conversation(coatcheck)
    other_ref = await _seed(coatcheck, other, "EMAIL_ADDRESS", EMAIL)
    async with _client(coatcheck) as client:
        grant = await client.grant(mine, {"EMAIL_ADDRESS"}, "action_peek", "p")
        for conversation in (other, mine):  # foreign grant; the ref is not in `mine`
            with pytest.raises(ServiceError) as info:
                await client.reveal(conversation, other_ref, grant, "p")
            assert 400 <= info.value.status < 500
            assert EMAIL not in str(info.value)


async def test_grant_does_not_cover_other_types(coatcheck: Coatcheck) -> None:
    conv = _conversation(coatcheck)
    phone_ref = await _seed(coatcheck, conv, "PHONE_NUMBER", PHONE)
    async with _client(coatcheck) as client:
        grant = await client.grant(conv, {"EMAIL_ADDRESS"}, "action_peek", "p")
        with pytest.raises(RevealRefused):
            await client.reveal(conv, phone_ref, grant, "p")


async def test_expired_grant_is_refused(coatcheck: Coatcheck) -> None:
    conv = _conversation(coatcheck)
    email_ref = await _seed(coatcheck, conv, "EMAIL_ADDRESS", EMAIL)
    async with _client(coatcheck) as client:
        grant = await client.grant(conv, {"EMAIL_ADDRESS"}, "action_peek", "p")
        assert grant.expires_at <= time.time() + coatcheck.grant_ttl + 1
        value, entity_type = await client.reveal(conv, email_ref, grant, "p")
        assert (value, entity_type) == (EMAIL, "EMAIL_ADDRESS")
        time.sleep(max(0.0, grant.expires_at - time.time()) + 0.5)
        with pytest.raises(RevealRefused):
            await client.reveal(conv, email_ref, grant, "p")


@pytest.mark.parametrize(("card", "valid"), [(GOOD_CARD, True), (BAD_CARD, False)])
async def test_form_validator_checks_in_the_vault(
    audit_vault: Vault,
    webhook: Any,
    coatcheck: Coatcheck,
    action_server: tuple[str, Any],
    card: str,
    valid: bool,
) -> None:
    conv = _conversation(coatcheck)
    card_ref = await _seed(coatcheck, conv, "CREDIT_CARD", card)
    email_ref = await _seed(coatcheck, conv, "EMAIL_ADDRESS", EMAIL)
    payload = webhook(
        "validate_payment_form",
        conv,
        {"card_number": None, "email": None, "card_valid": None},
        slot_events={"card_number": card_ref, "email": email_ref},
        forms={"payment_form": {"required_slots": ["card_number", "email"]}},
    )
    payload["tracker"]["active_loop"] = {"name": "payment_form"}
    response = _post(action_server[0], payload)
    assert response.status_code == 200, response.text
    slots = _slot_events(response.json())
    assert slots["card_valid"] is valid
    assert slots["card_number"] == (card_ref if valid else None)
    assert slots["email"] == email_ref  # a reference is accepted, not rejected
    assert card not in response.text
    checks = _audit(audit_vault, conv, "check")
    assert len(checks) == 1


async def test_confirmation_prompt(
    webhook: Any, coatcheck: Coatcheck, action_server: tuple[str, Any]
) -> None:
    conv = _conversation(coatcheck)
    email_ref = await _seed(coatcheck, conv, "EMAIL_ADDRESS", EMAIL)
    response = _post(action_server[0], webhook("action_confirm_email", conv, {"email": email_ref}))
    assert response.status_code == 200, response.text
    (reply,) = response.json()["responses"]
    assert reply["custom"] == {
        "coatcheck": {"confirm": True, "text": f"You gave {email_ref}, is that right?"}
    }


async def test_action_server_log_holds_no_value(
    webhook: Any, coatcheck: Coatcheck, action_server: tuple[str, Any]
) -> None:
    conv = _conversation(coatcheck)
    email_ref = await _seed(coatcheck, conv, "EMAIL_ADDRESS", EMAIL)
    _post(action_server[0], webhook("action_greedy", conv, {"email": email_ref}))
    _post(action_server[0], webhook("action_peek", conv, {"email": email_ref}))
    log = action_server[1].read_text(encoding="utf-8", errors="replace")
    assert "action_greedy" in log or "GrantRefused" in log  # the failure was logged
    assert EMAIL not in log
    assert EMAIL not in coatcheck.log_path.read_text(encoding="utf-8", errors="replace")


async def test_action_server_registers_concrete_actions_only(
    action_server: tuple[str, Any],
) -> None:
    names = {a["name"] for a in httpx.get(f"{action_server[0]}/actions", timeout=10).json()}
    expected = {
        "action_peek",
        "action_plain",
        "action_greedy",
        "action_send_receipt",
        "action_confirm_email",
        "validate_payment_form",
    }
    assert expected <= names
    assert not {n for n in names if "revealing" in n.lower()}


async def test_secure_capture_directive_is_accepted(coatcheck: Coatcheck) -> None:
    async with _client(coatcheck) as client:
        await request_capture(
            client,
            _conversation(coatcheck),
            "CREDIT_CARD",
            "card_luhn",
            retries=2,
            retry_text="Again?",
        )
        with pytest.raises(ServiceError) as info:
            await request_capture(client, _conversation(coatcheck), "credit card")
        assert 400 <= info.value.status < 500


def _say(cc: Coatcheck, sender: str, message: str) -> str:
    """One channel message through the live gateway (echo bot); the reply text."""
    response = httpx.post(
        f"{cc.url}/webhooks/rest/webhook",
        json={"sender": sender, "message": message},
        headers={"Authorization": f"Bearer {cc.channel_key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    text: str = response.json()[0]["text"]
    return text


async def test_sender_id_cannot_set_a_rule_on_another_conversation(coatcheck: Coatcheck) -> None:
    """Issue 19, finding 8: a sender named `victim/context#` once set victim's rule."""
    victim = _conversation(coatcheck)
    async with _client(coatcheck) as client:
        with pytest.raises(ServiceError) as info:  # the gateway has no route for that id
            await request_capture(client, f"{victim}/context#", "PASSWORD")
    assert info.value.status == 404
    assert _say(coatcheck, victim, "hello there friend") == "hello there friend"


def _pseudonym(cc: Coatcheck, sender: str) -> str:
    """The conversation id the channel sender `sender` is kept under (what actions see)."""
    env = {
        **os.environ,
        "COATCHECK_DATABASE_URL": cc.database_url,
        "COATCHECK_KEY_FILE": str(cc.key_file),
    }
    cli = "from coatcheck.middleware.cli import main; main()"
    cmd = [sys.executable, "-c", cli, "subject", "pseudonym"]
    done = subprocess.run(
        [*cmd, "--sender", sender], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def test_sender_id_of_dots_reaches_its_own_conversation(coatcheck: Coatcheck) -> None:
    """A sender `..` is kept under its pseudonym (never a path step): the rule an action
    sets there applies to that sender's next message."""
    sender = ".."
    async with _client(coatcheck) as client:
        await request_capture(client, _pseudonym(coatcheck, sender), "PASSWORD")
    assert _say(coatcheck, sender, "hunter2 is my password").startswith("/coatcheck_capture{")
