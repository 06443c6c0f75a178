"""Tokenize / lookup / reveal / check / shred behaviour on every backend."""

from __future__ import annotations

import re

import pytest

from coatcheck.vault import (
    ConversationShredded,
    Grant,
    GrantRefused,
    InvalidArgument,
    UnknownReference,
    Vault,
    predicate_from_dict,
)
from tests.conftest import FakeClock

REF_RE = re.compile(r"[0-9a-hjkmnp-tv-z]{10}")


def grant(clock: FakeClock, conv: str = "c1", types: tuple[str, ...] = ("EMAIL",)) -> Grant:
    return Grant(conv, frozenset(types), "support", "action_x", clock.now + 30)


def test_round_trip_and_reference_grammar(vault: Vault, clock: FakeClock) -> None:
    ref = vault.tokenize("c1", "EMAIL", "ana@example.org")
    assert REF_RE.fullmatch(ref)
    assert vault.reveal("c1", ref, grant(clock)) == "ana@example.org"


def test_same_value_same_ref_and_other_conversation_unlinkable(vault: Vault) -> None:
    first = vault.tokenize("c1", "EMAIL", "ana@example.org")
    assert vault.tokenize("c1", "EMAIL", "ana@example.org") == first
    assert vault.tokenize("c1", "EMAIL", "bob@example.org") != first
    assert vault.tokenize("c1", "USERNAME", "ana@example.org") != first
    assert vault.tokenize("c2", "EMAIL", "ana@example.org") != first


def test_tokenize_many_is_one_transaction(vault: Vault, clock: FakeClock) -> None:
    refs = vault.tokenize_many(
        "c1", [("EMAIL", "a@x.io"), ("PHONE", "+15550100"), ("EMAIL", "a@x.io")]
    )
    assert refs[0] == refs[2] != refs[1]
    with pytest.raises(InvalidArgument) as err:
        vault.tokenize_many("c1", [("EMAIL", "b@x.io"), ("bad type", "x")])
    assert err.value.name == "entity_type"
    assert vault.tokenize("c1", "EMAIL", "b@x.io") not in refs
    assert vault.reveal("c1", refs[1], grant(clock, types=("PHONE",))) == "+15550100"


@pytest.mark.parametrize(
    ("conv", "etype", "value", "name"),
    [
        ("", "EMAIL", "v", "conversation_id"),
        ("c", "email", "v", "entity_type"),
        ("c", "EMAIL", 5, "value"),
        ("x" * 256, "EMAIL", "v", "conversation_id"),
    ],
)
def test_bad_input_names_the_argument(
    vault: Vault, conv: str, etype: str, value: str, name: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        vault.tokenize(conv, etype, value)
    assert err.value.name == name
    assert "v" not in str(err.value).replace("invalid", "").replace(name, "")


def test_lookup(vault: Vault, clock: FakeClock) -> None:
    ref = vault.tokenize("c1", "EMAIL", "ana@example.org")
    info = vault.lookup("c1", ref)
    assert (info.ref, info.entity_type, info.created_at) == (ref, "EMAIL", clock.now)
    with pytest.raises(UnknownReference):
        vault.lookup("c2", ref)
    with pytest.raises(UnknownReference):
        vault.lookup("c1", "0000000000")


@pytest.mark.parametrize(
    ("grant_conv", "types", "ttl", "reason"),
    [
        ("c2", ("EMAIL",), 30, "conversation"),
        ("c1", ("PHONE",), 30, "entity_type"),
        ("c1", ("EMAIL",), 0, "expired"),
        ("c1", ("EMAIL",), -5, "expired"),
    ],
)
def test_grant_refusals_are_audited(
    vault: Vault, clock: FakeClock, grant_conv: str, types: tuple[str, ...], ttl: float, reason: str
) -> None:
    ref = vault.tokenize("c1", "EMAIL", "ana@example.org")
    bad = Grant(grant_conv, frozenset(types), "support", "action_x", clock.now + ttl)
    with pytest.raises(GrantRefused) as err:
        vault.reveal("c1", ref, bad)
    assert err.value.reason == reason
    rows = vault.audit_rows(action="reveal")
    assert [(r.outcome, r.actor, r.ref, r.entity_type) for r in rows] == [
        ("refused", "action_x", ref, "EMAIL")
    ]


def test_grant_expires_with_the_injected_clock(vault: Vault, clock: FakeClock) -> None:
    ref = vault.tokenize("c1", "EMAIL", "ana@example.org")
    g = grant(clock)
    assert vault.reveal("c1", ref, g) == "ana@example.org"
    clock.now += 31
    with pytest.raises(GrantRefused):
        vault.reveal("c1", ref, g)


def test_shred_then_new_epoch(vault: Vault, clock: FakeClock) -> None:
    ref = vault.tokenize("c1", "EMAIL", "ana@example.org")
    other = vault.tokenize("c2", "EMAIL", "ana@example.org")
    vault.shred("c1", actor="admin")
    for _ in range(2):  # also after the cache could have re-filled
        with pytest.raises(ConversationShredded):
            vault.reveal("c1", ref, grant(clock))
    with pytest.raises(ConversationShredded):
        vault.check("c1", ref, predicate_from_dict({"op": "digits"}), "bot", "x")
    fresh = vault.tokenize("c1", "EMAIL", "ana@example.org")
    assert fresh != ref
    assert vault.reveal("c1", fresh, grant(clock)) == "ana@example.org"
    with pytest.raises(ConversationShredded):
        vault.reveal("c1", ref, grant(clock))
    assert vault.reveal("c2", other, grant(clock, conv="c2")) == "ana@example.org"
    assert [r.outcome for r in vault.audit_rows(action="shred")] == ["ok"]


def test_shred_seen_by_another_worker_with_a_warm_cache(
    vault: Vault, db_url: str, master_key: bytes, clock: FakeClock
) -> None:
    from coatcheck.vault import make_engine

    engine = make_engine(db_url)
    other = Vault(engine, master_key, tenant="t1", clock=clock)
    ref = vault.tokenize("c1", "EMAIL", "ana@example.org")
    assert other.reveal("c1", ref, grant(clock)) == "ana@example.org"  # warms its cache
    vault.shred("c1", actor="admin")
    with pytest.raises(ConversationShredded):
        other.reveal("c1", ref, grant(clock))
    engine.dispose()


@pytest.mark.parametrize(
    ("value", "predicate", "expected"),
    [
        ("4111 1111 1111 1111", {"op": "luhn"}, True),
        ("4111 1111 1111 1112", {"op": "luhn"}, False),
        ("123456", {"op": "digits"}, True),
        ("12a456", {"op": "digits"}, False),
        ("123456", {"op": "length", "min": 6, "max": 6}, True),
        ("12345", {"op": "length", "min": 6}, False),
        ("AB-1234", {"op": "regex", "pattern": "[A-Z]{2}-\\d{4}"}, True),
        ("xAB-1234", {"op": "regex", "pattern": "[A-Z]{2}-\\d{4}"}, False),
        ("s3cret", {"op": "equals", "value": "s3cret"}, True),
        ("s3cret", {"op": "equals", "value": "s3cret "}, False),
    ],
)
def test_check(vault: Vault, value: str, predicate: dict[str, object], expected: bool) -> None:
    ref = vault.tokenize("c1", "SECRET", value)
    assert vault.check("c1", ref, predicate_from_dict(predicate), "bot", "validate") is expected
    (row,) = vault.audit_rows(action="check")
    assert (row.outcome, row.actor, row.purpose) == ("ok", "bot", "validate")


def test_check_unknown_reference(vault: Vault) -> None:
    with pytest.raises(UnknownReference):
        vault.check("c1", "0000000000", predicate_from_dict({"op": "digits"}), "bot", "x")
    assert [r.outcome for r in vault.audit_rows()] == ["unknown"]


def test_reprs_hide_secrets(vault: Vault) -> None:
    assert "redacted" in repr(predicate_from_dict({"op": "equals", "value": "hunter2"}))
    assert "hunter2" not in repr(predicate_from_dict({"op": "equals", "value": "hunter2"}))
    assert "tenant" in repr(vault) and vault.provider.root_id in repr(vault)
