"""Time-driven lifecycle with an injected clock: per-type TTL, temporary references, idle ends."""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway_helpers import Service, StubBot
from lifecycle_helpers import (
    EMAIL,
    IDLE,
    SSN,
    audit,
    end,
    outcome,
    post,
    say_refs,
    staff,
    with_grant,
)
from sqlalchemy import select

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.vault.models import StoredValue

TTL = 15 * 60.0  # US_SSN's `ttl: 15m`


def stored(service: Service, ref: str) -> StoredValue:
    ref_id = ref.rsplit("_", 1)[1]
    with service.services.engine.connect() as conn:
        row = conn.execute(select(StoredValue.__table__).where(StoredValue.ref == ref_id)).one()
    return row  # type: ignore[return-value]


def test_ttl_expiry_forgets_the_value(life: Service, stub_bot: StubBot) -> None:
    ssn = say_refs(life, stub_bot, "t1", f"ssn {SSN}")["US_SSN"]
    assert stored(life, ssn).expires_at == life.clock.now + TTL
    life.clock.now += TTL - 1
    assert staff(life, Role.AGENT, "t1", ssn).json()["value"] == SSN
    life.clock.now += 1
    # Past its TTL the value is refused at once, before any sweep...
    assert outcome(staff(life, Role.AGENT, "t1", ssn)) == (410, "expired")
    assert outcome(with_grant(life, "t1", ssn, "US_SSN")) == (410, "expired")
    assert stored(life, ssn).ciphertext is not None
    # ...and the sweeper forgets it: ciphertext and blind index gone, audited once.
    assert life.services.sweeper.sweep_once().forgotten == 1
    row = stored(life, ssn)
    assert (row.ciphertext, row.blind_index, row.status) == (None, None, "expired")
    assert life.services.sweeper.sweep_once().forgotten == 0
    [expiry] = audit(life, conversation_id=life.cid("t1"), action="expire")
    assert (expiry.ref, expiry.entity_type, expiry.purpose) == (
        ssn.rsplit("_", 1)[1],
        "US_SSN",
        "ttl",
    )
    # The conversation itself lives on; the same value said again is a new reference.
    assert life.services.records.status(life.cid("t1")) == "active"
    again = say_refs(life, stub_bot, "t1", f"ssn {SSN}")["US_SSN"]
    assert again != ssn
    assert staff(life, Role.AGENT, "t1", again).json()["value"] == SSN


def test_temporary_reference_expires_after_its_ttl(life: Service) -> None:
    made = post(
        life,
        f"/v1/conversations/{life.cid('t2')}/temporary",
        {"type": "OTP", "value": "481516", "ttl_seconds": 120},
        Role.ACTION_SERVER,
    )
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["expires_at"] == life.clock.now + 120 and body["type"] == "OTP"
    ref = body["ref"]
    assert ref.startswith("CC_OTP_")
    assert with_grant(life, "t2", ref, "OTP").json()["value"] == "481516"
    # Never deduplicated: the same value gets another reference.
    other = post(
        life,
        f"/v1/conversations/{life.cid('t2')}/temporary",
        {"type": "OTP", "value": "481516"},
        Role.BOT,
    ).json()
    assert other["ref"] != ref and other["expires_at"] is None
    life.clock.now += 120
    assert outcome(with_grant(life, "t2", ref, "OTP")) == (410, "expired")
    assert life.services.sweeper.sweep_once().forgotten == 1
    [row] = audit(life, conversation_id=life.cid("t2"), action="expire")
    assert row.purpose == "ttl"
    # The one without a TTL of its own is valid while the conversation lives...
    assert with_grant(life, "t2", other["ref"], "OTP").json()["value"] == "481516"
    assert life.services.records.status(life.cid("t2")) == "active"  # the route started it


def test_temporary_reference_dies_with_the_conversation(life: Service) -> None:
    # A masked type: kept values survive an end, temporary ones never do.
    made = post(
        life,
        f"/v1/conversations/{life.cid('t3')}/temporary",
        {"type": "EMAIL_ADDRESS", "value": EMAIL},
        Role.BOT,
    ).json()
    assert staff(life, Role.AGENT, "t3", made["ref"]).json()["value"] == EMAIL
    assert end(life, "t3")["status"] == "shredded"
    assert outcome(staff(life, Role.AUDITOR, "t3", made["ref"], "reporting")) == (
        410,
        "shredded",
    )
    refused = post(life, f"/v1/conversations/{life.cid('t3')}/temporary", {"value": "x"}, Role.BOT)
    assert outcome(refused) == (409, "conversation_ended")


def test_temporary_route_validation(life: Service) -> None:
    for body, role, status in [
        ({"value": "x", "ttl_seconds": 0}, Role.BOT, 422),
        ({"value": "x", "ttl_seconds": 8 * 86400}, Role.BOT, 422),
        ({"value": ""}, Role.BOT, 422),
        ({"value": "x", "type": "otp"}, Role.BOT, 422),
        ({"value": "x"}, Role.CHANNEL, 403),
        ({"value": "x"}, Role.AGENT, 403),
    ]:
        response = post(life, f"/v1/conversations/{life.cid('t4')}/temporary", body, role)
        assert response.status_code == status, body


def test_idle_timeout_is_ended_by_the_sweeper(life: Service, stub_bot: StubBot) -> None:
    email = say_refs(life, stub_bot, "idle", f"mail {EMAIL}")["EMAIL_ADDRESS"]
    start = life.clock.now
    life.clock.now += IDLE - 1
    assert life.services.sweeper.sweep_once().ended == ()
    life.say("idle", "still here")  # activity moves the deadline
    life.clock.now += IDLE - 1
    assert life.services.sweeper.sweep_once().ended == ()
    [item] = life.services.records.list_conversations(search=life.cid("idle"))
    assert (item["started_at"], item["last_activity"]) == (start, start + IDLE - 1)
    life.clock.now += 1
    assert life.services.sweeper.sweep_once().ended == (life.cid("idle"),)
    assert life.services.records.status(life.cid("idle")) == "masked"
    [row] = audit(life, conversation_id=life.cid("idle"), action="end")
    assert (row.actor, row.purpose, row.outcome) == ("sweeper", "idle", "masked")
    assert outcome(staff(life, Role.AGENT, "idle", email)) == (403, "conversation_ended")
    assert life.services.sweeper.sweep_once().ended == ()  # once


def test_idle_timeout_off(life_factory: Callable[..., Service], stub_bot: StubBot) -> None:
    service = life_factory(idle_timeout_seconds=0)
    say_refs(service, stub_bot, "forever", f"mail {EMAIL}")
    service.clock.now += 365 * 86400
    assert service.services.sweeper.sweep_once().ended == ()
    assert service.services.records.status(service.cid("forever")) == "active"


def test_background_sweeper_runs_in_the_lifespan(
    life_factory: Callable[..., Service], stub_bot: StubBot
) -> None:
    service = life_factory(sweep_interval_seconds=0.05)
    say_refs(service, stub_bot, "bg", f"mail {EMAIL}")
    service.clock.now += IDLE
    deadline = time.monotonic() + 10
    while service.services.records.status(service.cid("bg")) == "active":
        assert time.monotonic() < deadline, "the background sweeper did not end it"
        time.sleep(0.05)
    assert service.services.records.status(service.cid("bg")) == "masked"
