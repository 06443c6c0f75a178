"""Canaries through the whole lifecycle never reach the audit log, the logs or an error body."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from gateway_helpers import Service, StubBot
from lifecycle_helpers import DAY, IDLE, post, say_refs, staff, with_grant
from sqlalchemy import text

from coatcheck.middleware.gateway.apikeys import Role


def canaries() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        "EMAIL_ADDRESS": f"canary.{tag}@example.com",
        "PHONE_NUMBER": "+1 415 555 0142",
        "CREDIT_CARD": "4000 0566 5566 5556",
        "US_SSN": "219-09-9999",
    }


def test_canaries_never_in_audit_rows_or_logs(
    life_factory: Callable[..., Service],
    stub_bot: StubBot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    life = life_factory()
    planted = canaries()
    bodies: list[str] = []
    message = ", ".join(f"{kind} {value}" for kind, value in planted.items())
    refs = say_refs(life, stub_bot, "canary", message)
    assert set(refs) == set(planted)
    temp = post(
        life,
        "/v1/conversations/canary/temporary",
        {"type": "OTP", "value": "otp-" + planted["EMAIL_ADDRESS"], "ttl_seconds": 60},
        Role.BOT,
    )
    bodies.append(temp.text)
    otp = temp.json()["ref"]
    for role, purpose in [(Role.AGENT, None), (Role.AUDITOR, None), (Role.AUDITOR, "qa")]:
        for ref in [*refs.values(), otp]:
            bodies.append(staff(life, role, "canary", ref, purpose).text)
    bodies.append(with_grant(life, "canary", refs["EMAIL_ADDRESS"], "EMAIL_ADDRESS").text)
    life.clock.now += 60
    life.services.sweeper.sweep_once()  # the OTP expires
    life.clock.now += IDLE
    life.services.sweeper.sweep_once()  # idle end: masked, retained, shredded, expired
    for role, purpose in [(Role.AGENT, None), (Role.AUDITOR, "reporting"), (Role.AUDITOR, "x")]:
        for ref in [*refs.values(), otp]:
            bodies.append(staff(life, role, "canary", ref, purpose).text)
    life.clock.now += DAY
    life.services.sweeper.sweep_once()  # the retained phone goes
    bodies.append(post(life, "/v1/conversations/canary/end", None, Role.BOT).text)
    logging.getLogger("app").info("late log line with %s", planted["CREDIT_CARD"])

    audit_rows = json.dumps(
        [row.__dict__ for row in life.services.vault.audit_rows(limit=10_000)], default=str
    )
    with life.services.engine.connect() as conn:
        state = json.dumps(
            [list(r) for r in conn.execute(text("SELECT * FROM gw_conversation_state"))],
            default=str,
        )
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    revealed: list[Any] = [b for b in bodies if '"value"' in b]
    assert revealed, "some reveals were allowed (the test exercises both paths)"
    assert "reveal" in audit_rows and "expire" in audit_rows and '"end"' in audit_rows
    for value in [*planted.values(), "otp-" + planted["EMAIL_ADDRESS"]]:
        assert value not in audit_rows, "audit"
        assert value not in logs, "logs"
        assert value not in state, "state"
        refusals = [b for b in bodies if '"error"' in b]
        assert all(value not in b for b in refusals), "error body"
