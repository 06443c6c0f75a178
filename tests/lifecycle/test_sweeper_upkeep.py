"""The sweeper's at-rest steps on the real app: key upkeep (`Vault.maintain`: KEKs of ended
buckets destroyed, survivors moved home first) and the incremental audit verification the
log viewer shows (`verify_once`, on its own schedule in `run`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import pytest
from gateway_helpers import Service, StubBot
from lifecycle_helpers import CARD, DAY, EMAIL, audit, end, say_refs, staff
from sqlalchemy import update

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.vault.models import AuditRow

GRACE = 3600.0  # COATCHECK_KEK_GRACE_SECONDS' default


def test_the_sweeper_destroys_ended_buckets_keks_and_keeps_the_survivors(
    life: Service, stub_bot: StubBot
) -> None:
    gone = say_refs(life, stub_bot, "ended", f"card {CARD}")["CREDIT_CARD"]
    kept = say_refs(life, stub_bot, "kept", f"mail {EMAIL}")["EMAIL_ADDRESS"]
    live = say_refs(life, stub_bot, "live", f"mail {EMAIL}")["EMAIL_ADDRESS"]
    assert end(life, "ended")["status"] == "shredded"
    assert end(life, "kept")["status"] == "masked"
    assert life.services.sweeper.sweep_once().keks_destroyed == 0  # the bucket is today's

    life.clock.now += DAY + GRACE  # today's bucket has ended, and its grace with it
    assert life.say("live", "still here").status_code == 200  # keeps it active
    report = life.services.sweeper.sweep_once()

    assert report.keks_destroyed == 1
    destroyed = audit(life, action="kek_destroy")
    assert [(r.actor, r.outcome) for r in destroyed] == [("sweeper", "ok")]
    # The survivors' data keys moved before the destroy: the active conversation's to the
    # current bucket, the masked one's to a kept bucket.
    shown = staff(life, Role.AGENT, "live", live)
    assert shown.status_code == 200 and shown.json()["value"] == EMAIL, shown.text
    reported = staff(life, Role.AUDITOR, "kept", kept, "reporting")
    assert reported.status_code == 200 and reported.json()["value"] == EMAIL, reported.text
    assert staff(life, Role.AUDITOR, "ended", gone, "check").status_code == 410
    assert life.services.sweeper.sweep_once().keks_destroyed == 0  # once, not every pass


def _tamper(life: Service, row_id: int) -> None:
    with life.services.engine.begin() as conn:
        conn.execute(update(AuditRow).where(AuditRow.id == row_id).values(actor="mallory"))


def test_verify_once_records_what_the_viewer_shows(
    life: Service, stub_bot: StubBot, caplog: pytest.LogCaptureFixture
) -> None:
    vault, sweeper = life.services.vault, life.services.sweeper
    ref = say_refs(life, stub_bot, "c1", f"mail {EMAIL}")["EMAIL_ADDRESS"]
    assert staff(life, Role.AUDITOR, "c1", ref, "ticket 1").status_code == 200
    assert vault.audit_status() is None  # never verified yet: nothing to show

    assert sweeper.verify_once() is True
    first = vault.audit_status()
    assert first is not None and first.ok and first.rows == audit(life)[-1].id

    assert staff(life, Role.AUDITOR, "c1", ref, "ticket 2").status_code == 200
    newest = audit(life)[-1].id
    _tamper(life, newest)  # a database writer edits a row after the last verification
    with caplog.at_level(logging.ERROR, logger="coatcheck.middleware.gateway.sweeper"):
        assert sweeper.verify_once() is False
    shown = vault.audit_status()
    assert shown is not None and not shown.ok and shown.first_bad == newest
    assert f"audit chain BROKEN at row {newest}" in caplog.text


def test_run_verifies_the_chain_every_audit_verify_seconds(
    life_factory: Callable[..., Service], stub_bot: StubBot
) -> None:
    life = life_factory(audit_verify_seconds=300)
    vault, sweeper = life.services.vault, life.services.sweeper
    say_refs(life, stub_bot, "c1", f"mail {EMAIL}")

    async def scenario() -> bool:
        async with anyio.create_task_group() as group:
            group.start_soon(sweeper.run, 0.01)
            await anyio.sleep(0.3)  # many passes, but the verification is not due yet
            early = vault.audit_status() is None
            life.clock.now += 300
            with anyio.fail_after(20):  # generous: the machine is shared
                while vault.audit_status() is None:
                    await anyio.sleep(0.02)
            group.cancel_scope.cancel()
        return early

    assert anyio.run(scenario) is True
    status = vault.audit_status()
    assert status is not None and status.ok
