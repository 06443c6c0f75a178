"""Issue 19, finding 6: limits per API key as well as per sender, on the webhook and on
`/v1/redact`, and a cap on the values one conversation may hold (config `limits:`).

Against a running gateway (uvicorn on loopback).  On the code before, one channel key
rotating senders had every message accepted, `/v1/redact` had no limit at all, and a
conversation took any number of values.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from coatcheck.middleware.gateway.apikeys import Role
from tests.conftest import BACKENDS
from tests.edges.live import Live, database_url, live_gateway


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(tmp_path, request.param) as url:
        yield url


def _gateway(tmp_path: Path, db: str, limits: dict[str, Any]) -> Any:
    # Windows are fixed (multiples of `window_seconds` since the epoch) and this server
    # runs on the real clock: a run straddling a turn of the default 60 s window meets a
    # fresh count. An hour's window makes that ~60x rarer for these few-second tests.
    config = {"limits": {"window_seconds": 3600, **limits}} if limits else {}
    return live_gateway(tmp_path, db_url=db, config=config)


def _redact(live: Live, cid: str, text_: str, key: str) -> Any:
    return live.http.post(
        "/v1/redact",
        json={"conversation_id": cid, "text": text_},
        headers={"Authorization": f"Bearer {key}"},
    )


@pytest.mark.parametrize(
    ("limits", "accepted"),
    [
        ({"messages_per_key": 20}, 20),  # rotating senders: the key's limit holds
        ({}, 30),  # no match: the default per-key limit is far above this
    ],
)
def test_one_channel_key_rotating_senders_is_limited(
    tmp_path: Path, db: str, limits: dict[str, Any], accepted: int
) -> None:
    with _gateway(tmp_path, db, limits) as live:
        codes = [live.say(f"rot-{i}", f"hello {i}").status_code for i in range(30)]
        assert codes.count(200) == accepted and codes[:accepted] == [200] * accepted
        if accepted < 30:
            refused = live.say("rot-x", "one more")
            assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
            assert refused.json()["message"].startswith("api_key:")
            assert int(refused.headers["Retry-After"]) >= 1
            # another channel key is counted on its own
            other = live.new_key(Role.CHANNEL)
            assert live.say("rot-y", "hello", key=other).status_code == 200
        with live.services.store.transaction() as tx:
            history = tx.execute(text("SELECT count(*) FROM gw_history WHERE direction='in'"))
            # refused messages left nothing (the other key's one message is there)
            assert history.scalar_one() == accepted + (accepted < 30)


def test_redact_is_limited_per_key_and_per_conversation(tmp_path: Path, db: str) -> None:
    limits = {"redact_per_key": 10, "redact_per_conversation": 5}
    with _gateway(tmp_path, db, limits) as live:
        key = live.keys[Role.ACTION_SERVER]
        codes = [_redact(live, f"r-{i}", "hello", key).status_code for i in range(11)]
        assert codes == [200] * 10 + [429]
        assert _redact(live, "r-z", "hello", key).json()["message"].startswith("api_key:")
        # one conversation from several keys: its own limit
        keys = [live.new_key(Role.ACTION_SERVER) for _ in range(3)]
        codes = [_redact(live, "shared", "hello", keys[i % 3]).status_code for i in range(6)]
        assert codes == [200] * 5 + [429]
        last = _redact(live, "shared", "hello", keys[0]).json()
        assert last["message"].startswith("conversation:")


def test_a_conversation_holds_at_most_the_capped_values(tmp_path: Path, db: str) -> None:
    # The cap counts every value held, the sender's own id (SENDER_ID) included: 1 + 3 mails.
    with _gateway(tmp_path, db, {"values_per_conversation": 4}) as live:
        mails = [f"cap{i}@example.com" for i in range(5)]
        assert live.say("capped", f"mail {mails[0]} and {mails[1]}").status_code == 200
        over = live.say("capped", f"also {mails[2]} and {mails[3]}")
        assert over.status_code == 429 and over.json()["error"] == "too_many_values"
        assert all(m not in over.text for m in mails)
        key = live.keys[Role.CHANNEL]  # a caller whose values are vaulted (linked)
        assert _redact(live, "capped", f"one more {mails[2]}", key).status_code == 200  # 4th
        over = _redact(live, "capped", f"and {mails[4]}", key)
        assert over.status_code == 429 and over.json()["error"] == "too_many_values"
        with live.services.store.transaction() as tx:
            held = tx.execute(
                text(
                    "SELECT count(*) FROM stored_values v JOIN conversations c "
                    "ON v.conversation_pk = c.id WHERE c.conversation_id = :c"
                ),
                {"c": live.cid("capped")},
            ).scalar_one()
        assert held == 4  # the refused message and call vaulted nothing
        # another conversation is not affected
        assert live.say("uncapped", f"mail {mails[4]}").status_code == 200
