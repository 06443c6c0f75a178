"""Small HTTP helpers for the lifecycle tests (values, references, reveals, ends, audit)."""

from __future__ import annotations

from typing import Any

from gateway_helpers import Service, StubBot

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.render import parse_references
from coatcheck.vault import AuditRecord

EMAIL = "jane.doe@example.com"  # EMAIL_ADDRESS: retention mask
PHONE = "+1 415 555 0123"  # PHONE_NUMBER: retain 1d
CARD = "4111 1111 1111 1111"  # CREDIT_CARD: shred
SSN = "078-05-1120"  # US_SSN: ttl 15m, default retention (shred)
DAY = 86400.0

IDLE = 1800.0
LIFECYCLE_CONFIG: dict[str, Any] = {
    "types": {
        "EMAIL_ADDRESS": {"retention": "mask"},
        "PHONE_NUMBER": {"retention": {"retain": "1d"}},
        "CREDIT_CARD": {"retention": "shred"},
        "US_SSN": {"ttl": "15m"},
        "PIN": {"capture": "whole"},
    },
    "actions": {
        "action_send_mail": ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "OTP"]
    },
    "grants": {"ttl_seconds": 30},
}


def say_refs(service: Service, bot: StubBot, sender: str, message: str) -> dict[str, str]:
    """Send a user message; the references the bot received, by type."""
    response = service.say(sender, message)
    assert response.status_code == 200, response.text
    sent = bot.received[-1]["message"]
    return {ref.entity_type: ref.reference for ref in parse_references(sent)}


def post(service: Service, path: str, body: Any, role: Role) -> Any:
    return service.client.post(path, json=body, headers=service.auth(role))


def staff(service: Service, role: Role, conv: str, ref: str, purpose: str | None = None) -> Any:
    """A staff reveal in the conversation of the channel sender `conv` (its pseudonym)."""
    body = {"conversation_id": service.cid(conv), "ref": ref, "purpose": purpose}
    return post(service, "/v1/reveal", body, role)


def with_grant(service: Service, conv: str, ref: str, entity_type: str) -> Any:
    """An action's granted reveal in the conversation of the channel sender `conv`."""
    conv = service.cid(conv)
    issued = post(
        service,
        "/v1/grants",
        {
            "conversation_id": conv,
            "entity_types": [entity_type],
            "purpose": "send",
            "action": "action_send_mail",
        },
        Role.ACTION_SERVER,
    )
    assert issued.status_code == 200, issued.text
    body = {"conversation_id": conv, "ref": ref, "grant": issued.json()["grant"]}
    return post(service, "/v1/reveal", body, Role.ACTION_SERVER)


def end(service: Service, conv: str, role: Role = Role.BOT) -> dict[str, Any]:
    """End the conversation of the channel sender `conv` (a channel key names the sender,
    every other role its pseudonym)."""
    named = conv if role is Role.CHANNEL else service.cid(conv)
    response = post(service, f"/v1/conversations/{named}/end", None, role)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def outcome(response: Any) -> tuple[int, str | None]:
    """(status, error code or None) of a response."""
    body = response.json()
    return response.status_code, body.get("error") if isinstance(body, dict) else None


def audit(service: Service, **filters: Any) -> list[AuditRecord]:
    return list(reversed(service.services.vault.audit_rows(**filters)))
