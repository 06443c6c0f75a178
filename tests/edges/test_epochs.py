"""Issue 19, finding 4: conversations outlive their end.  Every key epoch now belongs to a
conversation's lifecycle: `/v1/redact` vaults only into a live conversation (starting a
never-seen one with its state row, so the idle timeout and retention apply) and nothing
into an ended one (409: only a message starts a new session); the sweeper ends any live
epoch left without an active conversation.

Against a running gateway (uvicorn on loopback).  On the code before, the first test got
200 (a new epoch nothing ends, an agent reading its value) and the second found no state
row for the id; the third's orphan stayed live.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from coatcheck.middleware.gateway.apikeys import Role
from tests.conftest import BACKENDS, FakeClock
from tests.edges.live import Live, database_url, live_gateway, wait_for

NEW_VALUE = "late.value@example.com"


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(tmp_path, request.param) as url:
        yield url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def live(tmp_path: Path, db: str, clock: FakeClock) -> Iterator[Live]:
    with live_gateway(
        tmp_path, db_url=db, clock=clock, idle_timeout_seconds=60, sweep_interval_seconds=0.2
    ) as gateway:
        yield gateway


def _redact(live: Live, sender: str, text_: str, role: Role = Role.CHANNEL) -> Any:
    """The channel names the conversation by the sender's real id, every other role by its
    pseudonym (`live.cid`)."""
    cid = sender if role is Role.CHANNEL else live.cid(sender)
    return live.call("POST", "/v1/redact", role, json={"conversation_id": cid, "text": text_})


def _live_epochs(live: Live, cid: str) -> int:
    with live.services.store.transaction() as tx:
        return int(
            tx.execute(
                text(
                    "SELECT count(*) FROM conversations WHERE conversation_id = :c "
                    "AND ended_at IS NULL AND wrapped_dek IS NOT NULL"
                ),
                {"c": cid},
            ).scalar_one()
        )


def _status(live: Live, cid: str) -> str | None:
    with live.services.store.transaction() as tx:
        return live.services.store.conversations.status(tx, cid)


@pytest.mark.parametrize("role", [Role.ACTION_SERVER, Role.BOT, Role.CHANNEL])
def test_redact_into_an_ended_conversation_vaults_nothing(live: Live, role: Role) -> None:
    assert live.say("closed", "hi, mail first@example.com").status_code == 200
    ended = live.call("POST", "/v1/conversations/closed/end", Role.CHANNEL)
    assert ended.status_code == 200
    answer = _redact(live, "closed", f"and now {NEW_VALUE}", role)
    assert NEW_VALUE not in answer.text
    if role is Role.CHANNEL:  # a caller whose values are vaulted: refused
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"] == "conversation_ended"
    else:  # a caller without a grant gets the unlinkable answer and stores nothing anyway
        assert answer.status_code == 200, answer.text
        assert [e["ref"] for e in answer.json()["entities"]] == [None]
    assert _live_epochs(live, live.cid("closed")) == 0  # no epoch opened that nothing would end
    # Text without a value changes nothing either way: it is answered as it is.
    plain = _redact(live, "closed", "nothing personal here", role)
    assert plain.status_code == 200 and plain.json()["entities"] == []


def test_a_message_still_reopens_and_then_redact_may_vault(live: Live) -> None:
    live.say("again", "hi")
    live.call("POST", "/v1/conversations/again/end", Role.CHANNEL)
    assert live.say("again", "back again").status_code == 200  # the message path reopens
    assert _status(live, live.cid("again")) == "active"
    opened = _redact(live, "again", f"mail {NEW_VALUE}")
    assert opened.status_code == 200, opened.text
    ref = opened.json()["entities"][0]["ref"]
    agent = live.call(
        "POST", "/v1/reveal", Role.AGENT, json={"conversation_id": live.cid("again"), "ref": ref}
    )
    assert agent.status_code == 200 and agent.json()["value"] == NEW_VALUE


def test_redact_into_a_never_seen_id_starts_a_conversation_the_sweeper_ends(
    live: Live, clock: FakeClock
) -> None:
    answer = _redact(live, "fresh-1", f"mail {NEW_VALUE}")
    assert answer.status_code == 200, answer.text
    ref = answer.json()["entities"][0]["ref"]
    cid = live.cid("fresh-1")
    assert _status(live, cid) == "active"  # a state row: idle timeout and retention
    clock.now += 120
    wait_for(lambda: _status(live, cid) == "shredded", 15, "the idle end")
    assert _live_epochs(live, cid) == 0
    gone = live.call(
        "POST",
        "/v1/reveal",
        Role.AUDITOR,
        json={"conversation_id": cid, "ref": ref, "purpose": "x"},
    )
    assert gone.status_code == 410


def test_the_sweeper_ends_an_orphaned_live_epoch(live: Live) -> None:
    """Epochs opened before this fix (or by a crash between two writes): a live epoch for
    an ended conversation and one for an id without a state row."""
    vault = live.services.vault
    live.say("old-ended", "hi")
    live.call("POST", "/v1/conversations/old-ended/end", Role.CHANNEL)
    ended = live.cid("old-ended")
    vault.tokenize(ended, "EMAIL_ADDRESS", "orphan.one@example.com")
    vault.tokenize("no-row", "EMAIL_ADDRESS", "orphan.two@example.com")
    assert _live_epochs(live, ended) == 1 and _live_epochs(live, "no-row") == 1
    wait_for(
        lambda: _live_epochs(live, ended) == 0 and _live_epochs(live, "no-row") == 0,
        15,
        "the sweeper to end the orphans",
    )
    assert _status(live, "no-row") == "shredded"  # it has a state row now
    # An active conversation's epoch is the idle timeout's business, not an orphan.
    live.say("busy", f"mail {NEW_VALUE}")
    report = live.services.sweeper.sweep_once()
    busy = live.cid("busy")
    assert busy not in report.orphans_ended and _live_epochs(live, busy) == 1
