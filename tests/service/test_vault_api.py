"""The vault API routes: redact, grants, reveal, check, end, and their error mapping."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway_helpers import Service

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.render import parse_references

EMAIL = "jane.doe@example.com"


def post(service: Service, path: str, body: Any, role: Role) -> Any:
    return service.client.post(path, json=body, headers=service.auth(role))


def tokenize(service: Service, conv: str = "c1", role: Role = Role.CHANNEL) -> str:
    """The user's address vaulted on the channel leg (the leg whose values are stored, issue
    14), which names the conversation by the sender's real id `conv`: every other role names
    it `service.cid(conv)`."""
    response = post(service, "/v1/redact", {"text": f"mail {EMAIL}", "conversation_id": conv}, role)
    assert response.status_code == 200
    body = response.json()
    assert EMAIL not in body["text"]
    [entity] = body["entities"]
    assert entity["type"] == "EMAIL_ADDRESS" and (entity["start"], entity["end"]) == (5, 25)
    return str(entity["ref"])


def grant(
    service: Service,
    conv: str | None = None,
    types: list[str] | None = None,
    purpose: str = "send mail",
) -> Any:
    """A grant for the conversation `conv` (by default the sender "c1"'s pseudonym)."""
    body = {
        "conversation_id": service.cid("c1") if conv is None else conv,
        "entity_types": types or ["EMAIL_ADDRESS"],
        "purpose": purpose,
        "action": "action_send_mail",
    }
    return post(service, "/v1/grants", body, Role.ACTION_SERVER)


def test_redact_with_context(service: Service) -> None:
    body = {
        "text": "4821",
        "conversation_id": service.cid("c1"),
        "context": {"expect": "PIN", "capture": "whole"},
    }
    response = post(service, "/v1/redact", body, Role.CHANNEL)
    assert response.status_code == 200
    assert parse_references(response.json()["text"])[0].entity_type == "PIN"


def test_a_channel_key_speaks_real_sender_ids(service: Service) -> None:
    """A channel's `/v1/redact` and end name the sender as the channel knows it; the value
    lands in the sender's pseudonymous conversation (what the bot and actions name)."""
    ref = tokenize(service, "+14155550123", Role.CHANNEL)
    cid = service.cid("+14155550123")
    token = grant(service, cid).json()["grant"]
    body = {"conversation_id": cid, "ref": ref, "grant": token}
    assert post(service, "/v1/reveal", body, Role.ACTION_SERVER).json()["value"] == EMAIL
    raw = {
        "conversation_id": "+14155550123",
        "ref": ref,
        "grant": grant(service, cid).json()["grant"],
    }
    assert post(service, "/v1/reveal", raw, Role.ACTION_SERVER).status_code in (403, 404)
    ended = post(service, "/v1/conversations/+14155550123/end", None, Role.CHANNEL)
    assert ended.json()["conversation_id"] == cid
    assert post(service, "/v1/reveal", body, Role.ACTION_SERVER).status_code == 410


def test_grant_and_reveal(service: Service) -> None:
    ref = tokenize(service)
    issued = grant(service)
    assert issued.status_code == 200
    assert issued.json()["expires_at"] == service.clock.now + 30
    body = {"conversation_id": service.cid("c1"), "ref": ref, "grant": issued.json()["grant"]}
    response = post(service, "/v1/reveal", body, Role.ACTION_SERVER)
    assert response.status_code == 200
    assert response.json() == {"value": EMAIL, "type": "EMAIL_ADDRESS"}


def test_a_grant_purpose_carrying_pii_reaches_the_audit_chain_masked(service: Service) -> None:
    ref = tokenize(service)
    issued = grant(service, purpose=f"mail {EMAIL} the receipt")
    assert issued.status_code == 200
    body = {"conversation_id": service.cid("c1"), "ref": ref, "grant": issued.json()["grant"]}
    assert post(service, "/v1/reveal", body, Role.ACTION_SERVER).status_code == 200
    [row] = service.services.vault.audit_rows(conversation_id=service.cid("c1"), action="reveal")
    assert row.purpose == "mail [EMAIL_ADDRESS] the receipt"
    assert EMAIL not in repr(row)


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (lambda b: b.pop("grant"), 403, "grant_refused"),
        (lambda b: b.update(grant="not.a-grant"), 403, "invalid_grant"),
        (lambda b: b.update(conversation_id="c2"), 403, "grant_refused"),
        (lambda b: b.update(ref="CC_EMAIL_ADDRESS_zzzzzzzzzz"), 404, "unknown_reference"),
        (lambda b: b.update(ref="not a ref"), 422, "bad_text"),
    ],
)
def test_reveal_refusals(service: Service, mutate: Any, status: int, code: str) -> None:
    ref = tokenize(service)
    body = {
        "conversation_id": service.cid("c1"),
        "ref": ref,
        "grant": grant(service).json()["grant"],
    }
    mutate(body)
    response = post(service, "/v1/reveal", body, Role.ACTION_SERVER)
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert EMAIL not in response.text


def test_expired_grant_refused(service: Service) -> None:
    ref = tokenize(service)
    token = grant(service).json()["grant"]
    service.clock.now += 31
    body = {"conversation_id": service.cid("c1"), "ref": ref, "grant": token}
    response = post(service, "/v1/reveal", body, Role.ACTION_SERVER)
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("types", "action", "status"),
    [
        (["EMAIL_ADDRESS"], "action_send_mail", 200),
        (["PHONE_NUMBER"], "action_send_mail", 403),
        (["EMAIL_ADDRESS"], "action_unknown", 403),
    ],
)
def test_grant_allow_list(service: Service, types: list[str], action: str, status: int) -> None:
    body = {
        "conversation_id": service.cid("c1"),
        "entity_types": types,
        "purpose": "p",
        "action": action,
    }
    assert post(service, "/v1/grants", body, Role.ACTION_SERVER).status_code == status


@pytest.mark.parametrize(
    ("role", "purpose", "status", "code"),
    [
        (Role.AGENT, None, 200, None),
        (Role.AUDITOR, None, 403, "purpose_required"),
        (Role.AUDITOR, "dispute 42", 200, None),
        (Role.ADMIN, None, 403, "purpose_required"),
    ],
)
def test_staff_reveal_on_active_conversation(
    service: Service, role: Role, purpose: str | None, status: int, code: str | None
) -> None:
    """Lifecycle rules (tests/lifecycle has the rest): no grant, active conversation."""
    ref = tokenize(service)
    body = {"conversation_id": service.cid("c1"), "ref": ref, "purpose": purpose}
    response = post(service, "/v1/reveal", body, role)
    assert response.status_code == status
    if code is None:
        assert response.json() == {"value": EMAIL, "type": "EMAIL_ADDRESS"}
    else:
        assert response.json()["error"] == code
        assert EMAIL not in response.text


@pytest.mark.parametrize(
    ("fields", "status", "result"),
    [
        ({"check": "email_example"}, 200, True),
        ({"check": "email_other"}, 200, False),
        ({"check": "email_long"}, 200, False),
        ({"check": "email_is", "value": EMAIL}, 200, True),
        ({"check": "email_is", "value": "x" + EMAIL}, 200, False),
        ({"check": "nope"}, 422, "unknown_check"),
        ({"check": "pin_digits"}, 403, "check_type"),  # declared for PIN, not e-mail
        ({"check": "email_is"}, 422, "bad_text"),  # equals needs its operand
        ({"check": "email_long", "value": "x"}, 422, "bad_text"),  # and only equals takes one
        ({"check": "Email-Long"}, 422, "invalid_request"),  # not a check name
        ({"predicate": {"op": "length", "min": 1}}, 422, "invalid_request"),  # the old form
    ],
)
def test_check(service: Service, fields: dict[str, Any], status: int, result: Any) -> None:
    ref = tokenize(service)
    response = post(
        service, "/v1/check", {"conversation_id": service.cid("c1"), "ref": ref, **fields}, Role.BOT
    )
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json() == {"result": result}
    else:
        assert response.json()["error"] == result
    assert EMAIL not in response.text
    rows = service.services.vault.audit_rows(conversation_id=service.cid("c1"), action="check")
    assert len(rows) == (0 if result == "invalid_request" else 1)  # each check audited


def test_check_budget_is_per_reference_and_audited(service: Service) -> None:
    """Three checks (the suite's budget) per reference, whoever asks; then 403, audited."""
    ref, other = tokenize(service), tokenize(service, "c2")
    body = {"conversation_id": service.cid("c1"), "ref": ref, "check": "email_example"}
    answers = [post(service, "/v1/check", body, role) for role in (Role.BOT, Role.ACTION_SERVER)]
    answers += [post(service, "/v1/check", body, Role.BOT) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200, 200, 403]
    assert answers[-1].json()["error"] == "check_budget"
    again = {"conversation_id": service.cid("c2"), "ref": other, "check": "email_example"}
    assert post(service, "/v1/check", again, Role.BOT).status_code == 200
    rows = service.services.vault.audit_rows(conversation_id=service.cid("c1"), action="check")
    assert sorted(r.outcome for r in rows) == ["ok", "ok", "ok", "refused:check_budget"]


def test_end_shreds(service: Service) -> None:
    ref = tokenize(service)
    token = grant(service).json()["grant"]
    ended = post(service, f"/v1/conversations/{service.cid('c1')}/end", None, Role.BOT)
    assert ended.status_code == 200 and ended.json()["ended"] is True
    body = {"conversation_id": service.cid("c1"), "ref": ref, "grant": token}
    response = post(service, "/v1/reveal", body, Role.ACTION_SERVER)
    assert (response.status_code, response.json()["error"]) == (410, "shredded")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"expect": "PIN"}, 200),
        ({"expect": "pin"}, 422),
        ({"expect": "PIN", "capture": "sideways"}, 422),
        ({"expect": "PIN", "capture": "secure", "check": {"op": "equals", "value": "1"}}, 422),
        ({"expect": "PIN", "capture": "secure", "check": "pin_is"}, 422),  # takes an operand
        ({"expect": "PIN", "capture": "secure", "check": "nope"}, 422),
        ({"expect": "PIN", "capture": "secure", "check": "pin_digits"}, 200),
    ],
)
def test_context_validation(service: Service, body: dict[str, Any], status: int) -> None:
    response = post(service, "/v1/conversations/c1/context", body, Role.BOT)
    assert response.status_code == status
    assert '"1"' not in json.dumps(response.json())
