"""The audit chain catches edited and deleted rows, and never stores a value."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, delete, select, update

from coatcheck.vault import Grant, Vault, _chain
from coatcheck.vault.models import AuditRow, AuditVerification
from tests.conftest import FakeClock

LOG = AuditRow.__table__


def _activity(vault: Vault, clock: FakeClock) -> None:
    ref = vault.tokenize("c1", "EMAIL", "a@x.io")
    g = Grant("c1", frozenset({"EMAIL"}), "p", "agent", clock.now + 30)
    for _ in range(3):
        vault.reveal("c1", ref, g)
    vault.shred("c1", "admin")


def test_intact_chain(vault: Vault, clock: FakeClock) -> None:
    _activity(vault, clock)
    report = vault.verify_audit()
    assert (report.ok, report.rows, report.first_bad) == (True, 4, None)


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [
        (update(LOG).where(LOG.c.id == 2).values(actor="someone-else"), 2),
        (update(LOG).where(LOG.c.id == 3).values(outcome="refused"), 3),
        (delete(LOG).where(LOG.c.id == 2), 3),
        (delete(LOG).where(LOG.c.id == 4), 4),
    ],
    ids=["edit-actor", "edit-outcome", "delete-middle", "delete-last"],
)
def test_tampering_is_found(
    vault: Vault, engine: Engine, clock: FakeClock, tamper: object, first_bad: int
) -> None:
    _activity(vault, clock)
    with engine.begin() as conn:
        conn.execute(tamper)  # type: ignore[call-overload]
    report = vault.verify_audit()
    assert (report.ok, report.first_bad) == (False, first_bad)


def test_filters(vault: Vault, clock: FakeClock) -> None:
    _activity(vault, clock)
    assert len(vault.audit_rows(conversation_id="c1")) == 4
    assert len(vault.audit_rows(actor="admin")) == 1
    assert len(vault.audit_rows(action="reveal")) == 3
    assert vault.audit_rows(conversation_id="nope") == []


def test_old_good_verifications_are_pruned_and_failures_kept(
    vault: Vault, engine: Engine, clock: FakeClock
) -> None:
    """Each walk writes a record; good ones beyond the newest `keep` go, the anchor stays
    (the next incremental walk starts from it), and a failure's record is kept."""
    results = AuditVerification.__table__
    _activity(vault, clock)
    key = vault._storage.chain.key  # the audit key: the test drives the chain module itself
    with engine.begin() as conn:
        actor = conn.execute(select(LOG.c.actor).where(LOG.c.id == 2)).scalar_one()
        conn.execute(update(LOG).where(LOG.c.id == 2).values(actor="someone-else"))
    assert not _chain.verify(engine, key, clock, keep=3).ok
    with engine.begin() as conn:
        conn.execute(update(LOG).where(LOG.c.id == 2).values(actor=actor))
    for _ in range(6):
        clock.now += 1
        assert _chain.verify(engine, key, clock, full=True, keep=3).ok
    with engine.begin() as conn:
        kept = conn.execute(select(results.c.ok).order_by(results.c.id)).scalars().all()
    assert kept == [False, True, True, True]
    report = _chain.verify(engine, key, clock, keep=3)
    assert report.ok and report.checked == 0  # incremental from the kept anchor
