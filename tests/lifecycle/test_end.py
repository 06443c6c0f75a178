"""Ending a conversation: retention per type, staff reveals before and after, the bot's end."""

from __future__ import annotations

from typing import Any

import pytest
from gateway_helpers import Service, StubBot
from lifecycle_helpers import (
    CARD,
    DAY,
    EMAIL,
    PHONE,
    audit,
    end,
    outcome,
    post,
    say_refs,
    staff,
    with_grant,
)

from coatcheck.middleware.gateway.apikeys import Role


def test_end_shreds_then_every_reveal_fails(life: Service, stub_bot: StubBot) -> None:
    refs = say_refs(life, stub_bot, "c1", f"card {CARD}")
    card = refs["CREDIT_CARD"]
    assert staff(life, Role.AGENT, "c1", card).json()["value"] == CARD  # active: allowed
    ended = end(life, "c1")
    assert (ended["ended"], ended["status"], ended["retain_until"]) == (True, "shredded", None)
    assert ended["ended_at"] == life.clock.now
    assert outcome(staff(life, Role.AGENT, "c1", card)) == (410, "shredded")
    assert outcome(staff(life, Role.AUDITOR, "c1", card, "reporting")) == (410, "shredded")
    assert outcome(with_grant(life, "c1", card, "CREDIT_CARD")) == (410, "shredded")
    assert life.services.records.status(life.cid("c1")) == "shredded"
    [row] = audit(life, conversation_id=life.cid("c1"), action="end")
    assert (row.actor, row.outcome, row.purpose) == ("bot", "shredded", "api")
    # The data key is gone, not only the values.
    assert life.services.vault.holdings(life.cid("c1")).epochs == 1
    assert not life.services.vault.holdings(life.cid("c1")).live


def test_mask_only_the_auditors_reporting_reveal_works(life: Service, stub_bot: StubBot) -> None:
    email = say_refs(life, stub_bot, "c2", f"mail {EMAIL}")["EMAIL_ADDRESS"]
    assert end(life, "c2")["status"] == "masked"
    assert life.services.records.status(life.cid("c2")) == "masked"
    assert outcome(staff(life, Role.AGENT, "c2", email)) == (403, "conversation_ended")
    assert outcome(staff(life, Role.AGENT, "c2", email, "reporting")) == (
        403,
        "conversation_ended",
    )
    assert outcome(staff(life, Role.AUDITOR, "c2", email)) == (403, "purpose_required")
    assert outcome(staff(life, Role.AUDITOR, "c2", email, "dispute")) == (403, "reporting_only")
    assert outcome(with_grant(life, "c2", email, "EMAIL_ADDRESS")) == (403, "conversation_ended")
    allowed = staff(life, Role.AUDITOR, "c2", email, "reporting")
    assert allowed.json() == {"value": EMAIL, "type": "EMAIL_ADDRESS"}
    # Every attempt, allowed or refused, is audited with actor, role, purpose, outcome.
    rows = [
        (r.actor.split(":")[0], r.purpose, r.outcome)
        for r in audit(life, conversation_id=life.cid("c2"), action="reveal")
        if r.actor.startswith(("agent:", "auditor:"))
    ]
    assert rows == [
        ("agent", None, "refused:conversation_ended"),
        ("agent", "reporting", "refused:conversation_ended"),
        ("auditor", None, "refused:purpose_required"),
        ("auditor", "dispute", "refused:reporting_only"),
        ("auditor", "reporting", "ok"),
    ]


def test_mixed_types_are_ended_value_by_value(life: Service, stub_bot: StubBot) -> None:
    refs = say_refs(life, stub_bot, "c3", f"mail {EMAIL}, card {CARD}, phone {PHONE}")
    assert set(refs) == {"EMAIL_ADDRESS", "CREDIT_CARD", "PHONE_NUMBER"}
    ended = end(life, "c3")
    assert ended["status"] == "masked"  # masked values remain (the strictest kept state)
    assert ended["retain_until"] == life.clock.now + DAY  # the retained phone's deadline
    card = staff(life, Role.AUDITOR, "c3", refs["CREDIT_CARD"], "reporting")
    assert outcome(card) == (410, "shredded")  # shred type: destroyed at the end
    email = staff(life, Role.AUDITOR, "c3", refs["EMAIL_ADDRESS"], "reporting")
    assert email.json()["value"] == EMAIL
    phone = staff(life, Role.AUDITOR, "c3", refs["PHONE_NUMBER"], "legal hold")
    assert phone.json()["value"] == PHONE  # retained: any stated purpose


def test_retain_then_the_sweeper_shreds_after_the_period(life: Service, stub_bot: StubBot) -> None:
    phone = say_refs(life, stub_bot, "c4", f"call {PHONE}")["PHONE_NUMBER"]
    ended = end(life, "c4", Role.CHANNEL)
    assert (ended["status"], ended["retain_until"]) == ("retained", life.clock.now + DAY)
    assert outcome(staff(life, Role.AGENT, "c4", phone)) == (403, "conversation_ended")
    assert staff(life, Role.AUDITOR, "c4", phone, "chargeback").json()["value"] == PHONE
    life.clock.now += DAY - 1
    assert life.services.sweeper.sweep_once().forgotten == 0
    assert life.services.records.status(life.cid("c4")) == "retained"
    life.clock.now += 1
    report = life.services.sweeper.sweep_once()
    assert (report.forgotten, report.shredded_epochs) == (1, 1)
    assert life.services.records.status(life.cid("c4")) == "shredded"
    assert outcome(staff(life, Role.AUDITOR, "c4", phone, "chargeback")) == (410, "shredded")
    assert (
        life.services.sweeper.sweep_once() == type(report)()
    )  # nothing left: a second pass is a no-op
    rows = [(r.action, r.purpose, r.outcome) for r in audit(life, conversation_id=life.cid("c4"))]
    assert ("expire", "retention", "ok") in rows and ("shred", "retention", "ok") in rows
    assert [r for r in rows if r[0] in ("expire", "shred")] == [
        ("expire", "retention", "ok"),
        ("shred", "retention", "ok"),
    ]


def test_agent_sees_originals_only_while_active(life: Service, stub_bot: StubBot) -> None:
    first = say_refs(life, stub_bot, "c5", f"mail {EMAIL}")["EMAIL_ADDRESS"]
    assert staff(life, Role.AGENT, "c5", first).json()["value"] == EMAIL
    end(life, "c5")
    assert outcome(staff(life, Role.AGENT, "c5", first)) == (403, "conversation_ended")
    # The same sender writes again: a new session, a new key epoch, a new reference.
    life.clock.now += 60
    second = say_refs(life, stub_bot, "c5", f"mail {EMAIL}")["EMAIL_ADDRESS"]
    assert second != first
    assert life.services.records.status(life.cid("c5")) == "active"
    assert staff(life, Role.AGENT, "c5", second).json()["value"] == EMAIL
    assert outcome(staff(life, Role.AGENT, "c5", first)) == (403, "conversation_ended")
    assert staff(life, Role.AUDITOR, "c5", first, "reporting").json()["value"] == EMAIL


def test_bot_end_directive(life: Service, stub_bot: StubBot) -> None:
    def script(payload: dict[str, Any]) -> list[dict[str, Any]]:
        if payload["message"] == "bye":
            return [
                {"text": "Goodbye!"},
                {"custom": {"coatcheck": {"expect": "PIN"}}},  # dropped: the end wins
                {"custom": {"coatcheck": {"end": True}}},
            ]
        if payload["message"] == "bogus":
            return [{"text": "ok"}, {"custom": {"coatcheck": {"end": "yes"}}}]
        return [{"text": "noted"}]

    stub_bot.script = script
    card = say_refs(life, stub_bot, "c6", f"card {CARD}")["CREDIT_CARD"]
    assert life.say("c6", "bogus").json() == [{"recipient_id": "c6", "text": "ok"}]  # real id
    assert life.services.records.status(life.cid("c6")) == "active"  # malformed: ignored
    assert life.say("c6", "bye").json() == [{"recipient_id": "c6", "text": "Goodbye!"}]
    assert life.services.records.status(life.cid("c6")) == "shredded"
    assert outcome(staff(life, Role.AGENT, "c6", card)) == (410, "shredded")
    [row] = audit(life, conversation_id=life.cid("c6"), action="end")
    assert (row.actor, row.purpose) == ("bot", "bot")
    history = life.client.get(
        f"/v1/conversations/{life.cid('c6')}/history", headers=life.auth(Role.VIEWER)
    )
    assert history.json()["messages"][-1]["text"] == "Goodbye!"
    # The rule in the same reply list was dropped: the next message is plain.
    stub_bot.script = lambda p: [{"text": "hello again"}]
    assert "CC_PIN_" not in say_refs(life, stub_bot, "c6", "1234")


def test_end_is_idempotent_and_works_for_unseen_conversations(life: Service) -> None:
    redacted = post(
        life, "/v1/redact", {"text": f"card {CARD}", "conversation_id": "c7"}, Role.CHANNEL
    )
    card = redacted.json()["entities"][0]["ref"]
    first = end(life, "c7")  # never seen by the webhook: ended all the same
    assert (first["ended"], first["status"]) == (True, "shredded")
    again = end(life, "c7")
    assert (again["ended"], again["status"], again["ended_at"]) == (
        True,
        "shredded",
        first["ended_at"],
    )
    assert outcome(staff(life, Role.AUDITOR, "c7", card, "audit")) == (410, "shredded")
    outcomes = [r.outcome for r in audit(life, conversation_id=life.cid("c7"), action="end")]
    assert outcomes == ["shredded", "noop"]
    empty = end(life, "never-seen")
    assert empty["status"] == "ended"  # nothing was ever vaulted


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT, Role.AUDITOR, Role.ACTION_SERVER])
def test_end_route_roles(life: Service, role: Role) -> None:
    response = post(life, "/v1/conversations/c8/end", None, role)
    assert response.status_code == 403
