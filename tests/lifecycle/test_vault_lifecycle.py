"""The vault's lifecycle API on both backends: end, epochs, TTL, temporary values, expiry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from coatcheck.vault import (
    ConversationEnded,
    ConversationShredded,
    Grant,
    InvalidArgument,
    Policies,
    Retention,
    ValueExpired,
    ValueState,
    Vault,
    make_engine,
    predicate_from_dict,
)
from tests.conftest import FakeClock

POLICIES = Policies(
    retention={
        "EMAIL": Retention("mask"),
        "PHONE": Retention("retain", 3600),
        "CARD": Retention("shred"),
    },
    ttl={"OTP": 300, "EMAIL": 7200},
)


@pytest.fixture
def make_vault(db_url: str, master_key: bytes, clock: FakeClock) -> Iterator[type[Vault]]:
    engines = []

    def build() -> Vault:
        engine = make_engine(db_url)
        engines.append(engine)
        return Vault(engine, master_key, tenant="t1", clock=clock, policies=POLICIES)

    yield build  # type: ignore[misc]
    for engine in engines:
        engine.dispose()


@pytest.fixture
def lv(make_vault: type[Vault]) -> Vault:
    return make_vault()  # type: ignore[call-arg]


def seen(vault: Vault, conv: str, ref: str) -> ValueState:
    states: list[ValueState] = []

    def policy(state: ValueState) -> str | None:
        states.append(state)
        return None

    vault.reveal_for(conv, ref, actor="test", purpose="t", policy=policy)
    return states[0]


def test_end_applies_retention_value_by_value(lv: Vault, clock: FakeClock) -> None:
    email, phone, card = lv.tokenize_many(
        "c1", [("EMAIL", "a@x.io"), ("PHONE", "+15550100"), ("CARD", "4111")]
    )
    summary = lv.end("c1", "bot", "api")
    assert (summary.ended_epochs, summary.shredded, summary.masked, summary.retained) == (
        1,
        1,
        1,
        1,
    )
    assert summary.outcome == "masked"
    holdings = summary.holdings
    assert (holdings.live, holdings.masked, holdings.retained) == (False, 1, 1)
    assert holdings.retain_until == clock.now + 3600
    assert holdings.status == "masked"
    assert seen(lv, "c1", email).status == "masked" and seen(lv, "c1", email).ended
    assert seen(lv, "c1", phone).expires_at == clock.now + 3600
    with pytest.raises(ConversationShredded):
        seen(lv, "c1", card)
    g = Grant("c1", frozenset({"EMAIL"}), "p", "a", clock.now + 30)
    with pytest.raises(ConversationEnded):
        lv.reveal("c1", email, g)
    with pytest.raises(ConversationEnded):
        lv.check("c1", email, predicate_from_dict({"op": "length", "min": 1}), "bot", "p")
    again = lv.end("c1", "bot", "api")  # nothing live: a no-op, audited as such
    assert (again.ended_epochs, again.outcome) == (0, "noop")


def test_retention_is_capped_by_the_ttl(
    engine: Engine, master_key: bytes, clock: FakeClock
) -> None:
    policies = Policies(retention={"OTP": Retention("retain", 86400)}, ttl={"OTP": 60})
    vault = Vault(engine, master_key, tenant="t1", clock=clock, policies=policies)
    ref = vault.tokenize("c1", "OTP", "123456")
    vault.end("c1", "bot", "api")
    assert seen(vault, "c1", ref).expires_at == clock.now + 60


def test_an_ended_epoch_never_takes_values_again(make_vault: type[Vault]) -> None:
    worker_a, worker_b = make_vault(), make_vault()  # type: ignore[call-arg]
    first = worker_a.tokenize("c1", "EMAIL", "a@x.io")  # A remembers the live epoch
    worker_a.tokenize("c1", "EMAIL", "b@x.io")
    worker_b.end("c1", "bot", "api")  # B ends it (masked: the key stays)
    for vault in (worker_a, worker_b):
        again = vault.tokenize("c1", "EMAIL", "a@x.io")
        assert again != first
        assert not seen(vault, "c1", again).ended
        many = vault.tokenize_many("c1", [("EMAIL", "c@x.io"), ("EMAIL", "d@x.io")])
        assert not any(seen(vault, "c1", ref).ended for ref in many)
    assert seen(worker_a, "c1", first).ended
    assert worker_a.holdings("c1").epochs == 2 and worker_a.holdings("c1").live


def test_ttl_and_expiry(lv: Vault, clock: FakeClock) -> None:
    otp = lv.tokenize("c1", "OTP", "123456")
    email = lv.tokenize("c1", "EMAIL", "a@x.io")
    g = Grant("c1", frozenset({"OTP", "EMAIL"}), "p", "a", clock.now + 10_000)
    clock.now += 299
    assert lv.reveal("c1", otp, g) == "123456"
    clock.now += 1
    with pytest.raises(ValueExpired):
        lv.reveal("c1", otp, g)
    summary = lv.expire_due()
    assert (summary.forgotten, summary.shredded_epochs) == (1, 0)
    assert summary.conversations == frozenset({"c1"})
    assert lv.expire_due().forgotten == 0
    assert lv.tokenize("c1", "OTP", "123456") != otp  # the blind index went too
    # A masked value with a TTL: kept after the end, until the TTL; then the key goes.
    lv.end("c1", "bot", "api")
    clock.now += 7200
    with pytest.raises(ValueExpired):
        seen(lv, "c1", email)
    summary = lv.expire_due()
    assert summary.shredded_epochs == 1
    assert lv.holdings("c1").status == "shredded"
    with pytest.raises(ConversationShredded):
        seen(lv, "c1", email)
    rows = [(r.action, r.outcome, r.purpose) for r in lv.audit_rows()[::-1]]
    swept = [row for row in rows if row[0] in ("expire", "shred", "end")]
    assert swept == [
        ("expire", "ok", "ttl"),
        ("end", "masked", "api"),
        ("expire", "ok", "ttl"),
        ("shred", "ok", "retention"),
    ]
    assert lv.verify_audit().ok


def test_temporary_values(lv: Vault, clock: FakeClock) -> None:
    ref, expires = lv.tokenize_temporary("c1", "OTP", "999", 600)
    assert expires == clock.now + 300  # capped by the type's TTL
    other, forever = lv.tokenize_temporary("c1", "CODE", "999", None)
    assert forever is None and other != ref
    assert seen(lv, "c1", other).status == "temporary"
    for bad in (0, -1, True):
        with pytest.raises(InvalidArgument):
            lv.tokenize_temporary("c1", "CODE", "x", bad)
    # Temporary values are destroyed at the end even when their type is masked.
    kept, _ = lv.tokenize_temporary("c1", "EMAIL", "a@x.io", None)
    lv.end("c1", "bot", "api")
    with pytest.raises(ConversationShredded):
        seen(lv, "c1", kept)


def test_shred_marks_the_epoch_ended(lv: Vault) -> None:
    ref = lv.tokenize("c1", "EMAIL", "a@x.io")
    lv.shred("c1", "admin")
    assert lv.holdings("c1").status == "shredded"
    with pytest.raises(ConversationShredded):
        seen(lv, "c1", ref)
    assert lv.end("c1", "bot", "api").outcome == "noop"


def test_policy_refusals_are_audited_with_their_reason(lv: Vault) -> None:
    ref = lv.tokenize("c1", "EMAIL", "a@x.io")
    with pytest.raises(Exception, match="nope"):
        lv.reveal_for("c1", ref, actor="x:y", purpose=None, policy=lambda s: "nope")
    [row] = lv.audit_rows(action="reveal")
    assert (row.actor, row.outcome, row.purpose) == ("x:y", "refused:nope", None)
