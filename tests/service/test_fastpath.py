"""The per-message fast path: cached API keys, lock-free reads, one write per side."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from gateway_helpers import Service, StubBot
from sqlalchemy import delete, func, select

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.ratelimit import RateLimit
from coatcheck.middleware.gateway.rules import ContextRule
from coatcheck.middleware.models import ApiKey, HistoryEntry
from coatcheck.middleware.service.auth import REVOCATION_POLL_SECONDS
from coatcheck.middleware.service.keycache import KeyCache
from tests.harness import GATEWAY_EPOCH

EMAIL = "jane.doe@example.com"


class Tick:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("advance", "expected"),
    [(0.0, Role.BOT), (9.9, Role.BOT), (10.0, None), (60.0, None)],
)
def test_key_cache_ttl(advance: float, expected: Role | None) -> None:
    clock = Tick()
    cache = KeyCache(ttl=10, clock=clock)
    cache.put("digest", Role.BOT, "cck_p1")
    clock.now += advance
    assert cache.get("digest") is expected
    assert cache.get("other") is None


def test_key_cache_is_bounded_and_can_be_off() -> None:
    cache = KeyCache(ttl=10, capacity=2, clock=Tick())
    for name in ("a", "b", "c"):
        cache.put(name, Role.VIEWER, f"cck_{name}")
    assert [cache.get(n) for n in ("a", "b", "c")] == [None, Role.VIEWER, Role.VIEWER]
    off = KeyCache(ttl=0, clock=Tick())
    off.put("a", Role.ADMIN, "cck_a")
    assert off.get("a") is None
    assert "digest" not in repr(cache) and "size=2" in repr(cache)


def test_key_cache_evicts_keys_that_no_longer_exist() -> None:
    cache = KeyCache(ttl=10, clock=Tick())
    for name in ("a", "b", "c"):
        cache.put(name, Role.VIEWER, f"cck_{name}")
    assert cache.keep_only({"cck_a", "cck_c", "cck_other"}) == 1
    assert [cache.get(n) for n in ("a", "b", "c")] == [Role.VIEWER, None, Role.VIEWER]
    assert cache.keep_only({"cck_a", "cck_c"}) == 0  # no match: nothing evicted
    cache.clear()
    assert cache.get("a") is None


def _history(service: Service, role: Role = Role.VIEWER) -> int:
    return service.client.get(
        "/v1/conversations/u1/history", headers=service.auth(role)
    ).status_code


def _delete_keys(service: Service) -> None:
    with service.services.store.transaction() as conn:
        conn.execute(delete(ApiKey))


def test_deleted_key_is_refused_once_the_revocation_watch_runs(
    service_factory: Callable[..., Service], stub_bot: StubBot
) -> None:
    """The cache no longer keeps a deleted key alive for its TTL: the worker's revocation
    watch evicts it within about a second (REVOCATION_POLL_SECONDS)."""
    service = service_factory(bot_url=stub_bot.url, apikey_cache_seconds=10)
    assert _history(service) == 200  # verified once: cached
    _delete_keys(service)
    assert _history(service, Role.AUDITOR) == 401  # never verified: not cached
    deadline = time.monotonic() + 5 * REVOCATION_POLL_SECONDS
    while _history(service) == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _history(service) == 401
    assert service.clock.now == GATEWAY_EPOCH  # no TTL ran out: the injected clock stood still


def test_cache_off_revokes_at_once(
    service_factory: Callable[..., Service], stub_bot: StubBot
) -> None:
    service = service_factory(bot_url=stub_bot.url, apikey_cache_seconds=0)
    assert _history(service) == 200
    _delete_keys(service)
    assert _history(service) == 401


def test_reads_do_not_wait_for_the_write_lock(
    service_factory: Callable[..., Service], stub_bot: StubBot
) -> None:
    """A writer holds SQLite's lock (BEGIN IMMEDIATE): the per-message reads still answer."""
    service = service_factory(bot_url=stub_bot.url, apikey_cache_seconds=0)
    gw = service.services
    assert service.say("u1", f"mail {EMAIL}").status_code == 200
    results: list[Any] = []
    with gw.engine.begin():  # BEGIN IMMEDIATE on the vault's engine: the write lock
        reader = threading.Thread(target=lambda: results.append(_read_state(service)))
        reader.start()
        reader.join(5)
        assert not reader.is_alive()
        assert _history(service) == 200  # key lookup on the read engine, not blocked
    assert results == [(None, 1)]


def _read_state(service: Service) -> tuple[ContextRule | None, int]:
    """The per-message read: u1's pending rule and its count in this 60 s window."""
    cid = service.cid("u1")
    rule, count, _ = service.services.store.messages.read_state(cid, cid, RateLimit(4, 60))
    return rule, count


def _rule_reply(payload: dict[str, Any]) -> list[dict[str, Any]]:
    if payload["message"] == "pin please":
        return [{"text": "Your PIN?"}, {"custom": {"coatcheck": {"expect": "PIN"}}}]
    return [{"recipient_id": payload["sender"], "text": f"echo: {payload['message']}"}]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_one_write_per_side_counts_consumes_and_records(
    service_factory: Callable[..., Service],
    stub_bot: StubBot,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    overrides: dict[str, Any] = {"bot_url": stub_bot.url, "rate_limit": 4}
    if backend == "postgres":
        overrides["database_url"] = request.getfixturevalue("pg_database")
    service = service_factory(**overrides)
    stub_bot.script = _rule_reply
    assert service.say("u1", "pin please").status_code == 200
    gw = service.services
    assert _read_state(service) == (ContextRule("PIN"), 1)
    assert service.say("u1", "4711").status_code == 200  # the rule applies and is consumed
    assert stub_bot.received[-1]["message"].startswith("CC_PIN_")
    assert _read_state(service) == (None, 2)
    assert service.say("u1", "4711").json()[0]["text"] == "echo: 4711"  # consumed: plain
    assert service.say("u1", f"mail {EMAIL}").status_code == 200
    refused = service.say("u1", f"mail {EMAIL}")  # fifth in the window: pre-check refuses
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert len(stub_bot.received) == 4
    with gw.store.transaction() as conn:
        counts = dict(
            conn.execute(
                select(HistoryEntry.direction, func.count()).group_by(HistoryEntry.direction)
            ).all()
        )
    assert counts == {"in": 4, "out": 4}  # "Your PIN?" + 3 echoes; the 429 left nothing
    service.clock.now += 60  # a new window
    assert service.say("u1", "again").status_code == 200
