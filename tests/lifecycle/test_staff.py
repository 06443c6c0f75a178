"""The staff contract: Reveals.staff_reveal, ConversationRecords.status and .list_conversations."""

from __future__ import annotations

import pytest
from gateway_helpers import Service, StubBot
from lifecycle_helpers import CARD, EMAIL, PHONE, audit, end, post, say_refs, staff

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.errors import BadText, RevealRefused
from coatcheck.middleware.gateway.lifecycle import EndReason
from coatcheck.vault import ConversationShredded, UnknownReference


def test_staff_reveal_audits_actor_role_purpose_outcome(life: Service, stub_bot: StubBot) -> None:
    email = say_refs(life, stub_bot, "s1", f"mail {EMAIL}")["EMAIL_ADDRESS"]
    gw = life.services
    assert gw.reveals.staff_reveal(life.cid("s1"), email, Role.AGENT, "alice", None) == EMAIL
    end(life, "s1")
    with pytest.raises(RevealRefused) as refused:
        gw.reveals.staff_reveal(life.cid("s1"), email, Role.AGENT, "alice", "curious")
    assert (refused.value.status, refused.value.code) == (403, "conversation_ended")
    with pytest.raises(RevealRefused) as refused:
        gw.reveals.staff_reveal(
            life.cid("s1"), email, Role.AUDITOR, "bob", "   "
        )  # blank is no purpose
    assert refused.value.code == "purpose_required"
    assert gw.reveals.staff_reveal(life.cid("s1"), email, Role.AUDITOR, "bob", "reporting") == EMAIL
    with pytest.raises(RevealRefused) as refused:
        gw.reveals.staff_reveal(life.cid("s1"), email, Role.VIEWER, "eve", "reporting")
    assert refused.value.code == "role_not_allowed"
    rows = [
        (r.actor, r.purpose, r.outcome, r.entity_type)
        for r in audit(life, conversation_id=life.cid("s1"), action="reveal")
    ]
    assert rows == [
        ("agent:alice", None, "ok", "EMAIL_ADDRESS"),
        ("agent:alice", "curious", "refused:conversation_ended", "EMAIL_ADDRESS"),
        ("auditor:bob", None, "refused:purpose_required", "EMAIL_ADDRESS"),
        ("auditor:bob", "reporting", "ok", "EMAIL_ADDRESS"),
        ("viewer:eve", "reporting", "refused:role_not_allowed", "EMAIL_ADDRESS"),
    ]


def test_a_purpose_carrying_pii_is_masked_before_the_audit_chain(
    life: Service, stub_bot: StubBot
) -> None:
    """Through the HTTP API as through the viewer: the typed purpose never holds a value."""
    email = say_refs(life, stub_bot, "s9", f"mail {EMAIL}")["EMAIL_ADDRESS"]
    response = staff(life, Role.AUDITOR, "s9", email, f"callback to {PHONE} re {EMAIL}")
    assert response.status_code == 200 and response.json()["value"] == EMAIL
    [row] = audit(life, conversation_id=life.cid("s9"), action="reveal")
    assert row.purpose == "callback to [PHONE_NUMBER] re [EMAIL_ADDRESS]"
    assert PHONE not in repr(row) and EMAIL not in repr(row)


def test_staff_reveal_errors(life: Service, stub_bot: StubBot) -> None:
    refs = say_refs(life, stub_bot, "s2", f"mail {EMAIL}, card {CARD}")
    gw = life.services
    with pytest.raises(BadText):
        gw.reveals.staff_reveal(life.cid("s2"), "not a reference", Role.AGENT, "a", None)
    wrong_type = refs["EMAIL_ADDRESS"].replace("EMAIL_ADDRESS", "CREDIT_CARD")
    with pytest.raises(UnknownReference):
        gw.reveals.staff_reveal(life.cid("s2"), wrong_type, Role.AGENT, "a", None)
    with pytest.raises(UnknownReference):
        gw.reveals.staff_reveal(life.cid("other"), refs["EMAIL_ADDRESS"], Role.AGENT, "a", None)
    end(life, "s2")
    with pytest.raises(ConversationShredded):
        gw.reveals.staff_reveal(life.cid("s2"), refs["CREDIT_CARD"], Role.AUDITOR, "a", "reporting")
    outcomes = [r.outcome for r in audit(life, conversation_id=life.cid("s2"), action="reveal")]
    assert outcomes == ["refused:reference", "shredded"]  # "other" is audited under its id
    assert [r.outcome for r in audit(life, conversation_id=life.cid("other"), action="reveal")] == [
        "unknown"
    ]


def test_reveal_route_for_staff(life: Service, stub_bot: StubBot) -> None:
    email = say_refs(life, stub_bot, "s3", f"mail {EMAIL}")["EMAIL_ADDRESS"]
    body = {"conversation_id": life.cid("s3"), "ref": email, "purpose": "complaint 7"}
    assert post(life, "/v1/reveal", body, Role.AUDITOR).json()["value"] == EMAIL
    [row] = audit(life, conversation_id=life.cid("s3"), action="reveal")
    assert row.actor == f"auditor:key:{life.keys[Role.AUDITOR].split('_')[1]}"
    assert row.purpose == "complaint 7"
    # An admin with a grant takes the action path; without one, the auditor's rules.
    assert post(life, "/v1/reveal", {**body, "purpose": None}, Role.ADMIN).status_code == 403
    assert post(life, "/v1/reveal", body, Role.ADMIN).status_code == 200


def test_conversation_status_values(life: Service, stub_bot: StubBot) -> None:
    gw = life.services
    cid = life.cid
    assert gw.records.status("nobody") == "unknown"
    say_refs(life, stub_bot, "st-active", "hello")
    assert gw.records.status(cid("st-active")) == "active"
    say_refs(life, stub_bot, "st-ended", "no personal data here")
    end(life, "st-ended")
    # the sender id itself is vaulted (SENDER_ID), shredded at the end like any value
    assert gw.records.status(cid("st-ended")) == "shredded"
    say_refs(life, stub_bot, "st-retained", f"call {PHONE}")
    end(life, "st-retained")
    assert gw.records.status(cid("st-retained")) == "retained"
    post(life, "/v1/redact", {"text": f"card {CARD}", "conversation_id": "st-v"}, Role.CHANNEL)
    assert gw.records.status(cid("st-v")) == "active"  # a channel key speaks real ids
    gw.lifecycle.end("st-none", "bot", EndReason.API)  # a state row, nothing ever vaulted
    assert gw.records.status("st-none") == "ended"


def test_list_conversations_filters(life: Service, stub_bot: StubBot) -> None:
    gw = life.services
    t0 = life.clock.now
    say_refs(life, stub_bot, "Shop-1", f"mail {EMAIL}")
    life.clock.now += 100
    say_refs(life, stub_bot, "shop-2", "hello")
    life.clock.now += 100
    say_refs(life, stub_bot, "other_%", "hello")
    end(life, "Shop-1")
    shop1, shop2, other = life.cid("Shop-1"), life.cid("shop-2"), life.cid("other_%")
    everything = gw.records.list_conversations()
    assert [c["conversation_id"] for c in everything] == [other, shop2, shop1]
    assert everything[2] == {
        "conversation_id": shop1,
        "status": "masked",
        "started_at": t0,
        "last_activity": t0,
        "ended_at": t0 + 200,
    }
    names = lambda **kw: [c["conversation_id"] for c in gw.records.list_conversations(**kw)]  # noqa: E731
    assert names(search="shop") == []  # the senders' own ids are stored nowhere
    assert names(search=shop2[5:15].upper()) == [shop2]  # a case-insensitive substring
    assert names(search="p_") == [other, shop2, shop1]
    assert names(search="_%") == []  # LIKE wildcards are escaped (every id has "p_")
    assert names(status="active") == [other, shop2]
    assert names(status="masked") == [shop1]
    assert names(since=t0 + 50) == [other, shop2]
    assert names(until=t0 + 150) == [shop2, shop1]
    assert names(since=t0 + 50, until=t0 + 150) == [shop2]
    assert names(limit=1) == [other]
    for bad in ({"status": "gone"}, {"limit": 0}, {"limit": 1001}):
        with pytest.raises(BadText):
            gw.records.list_conversations(**bad)  # type: ignore[arg-type]
