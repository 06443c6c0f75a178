"""Placeholder numbers live in the database (`llm_placeholders`, migration 0012), so
concurrent requests on any number of workers agree: one number per reference, one
reference per number, per conversation and label.  SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from coatcheck.middleware.gateway.store.db import Db
from coatcheck.middleware.gateway.store.placeholders import PLACEHOLDERS, Placeholders
from coatcheck.vault import make_engine
from tests.harness import threaded
from tests.llm.fake_upstream import FakeUpstream, last_user_text
from tests.llm.served import served, settings_for

THREADS = 8


def _together(n: int, work: Callable[[int], Any]) -> list[Any]:
    """`work(i)` for i < n in n threads released together."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_concurrent_numbering_agrees(db_url: str) -> None:
    engine = make_engine(db_url)
    book = Placeholders(Db(engine, engine), "default")
    shared = [f"ref{i:07d}" for i in range(10)]

    def number(i: int) -> dict[str, int]:
        refs = [*random.Random(i).sample(shared, len(shared)), f"own{i:07d}"]
        return dict(zip(refs, book.number_many("c1", [("EMAIL", r) for r in refs]), strict=True))

    try:
        results = _together(THREADS, number)
        merged: dict[str, int] = {}
        for result in results:
            for ref, n in result.items():
                assert merged.setdefault(ref, n) == n, ref  # one number per reference
        assert len(set(merged.values())) == len(merged)  # one reference per number
        assert len(merged) == len(shared) + THREADS
        rows = [(r.ref_id, r.n) for r in Db(engine, engine).read(select(PLACEHOLDERS))]
        assert sorted(rows) == sorted(merged.items())
        back = book.lookup_many("c1", [("EMAIL", n) for n in merged.values()] + [("EMAIL", 999)])
        assert back == [*merged, None]
        assert book.number_many("c2", [("EMAIL", "ref0000000")]) == [1]  # per conversation
        assert book.number_many("c1", [("PHONE", "ref0000000")]) == [merged["ref0000000"]]
    finally:
        engine.dispose()


EMAILS = [f"person{i}@example.com" for i in range(6)]
_PLACEHOLDER = re.compile(r"\[EMAIL_(\d+)\]")


def test_two_workers_agree_on_one_conversations_placeholders(db_url: str, tmp_path: Path) -> None:
    """Two apps (two workers' state) on one database, requests of one conversation at once:
    what the model sees maps each value to one placeholder and back."""
    fake = FakeUpstream()
    with threaded(fake.app()) as upstream:
        settings = settings_for(db_url, tmp_path, upstream + "/v1", rate_limit=10_000)
        with served(settings) as one, served(settings) as two:
            workers = [one, two]

            def ask(i: int) -> list[str]:
                emails = [*random.Random(i).sample(EMAILS, 4), f"solo{i}@example.org"]
                gw = workers[i % 2]
                content = f"request{i} " + " ".join(emails)
                body = {"model": "m", "messages": [{"role": "user", "content": content}]}
                response = httpx.post(
                    f"{gw.base}/chat/completions",
                    json=body,
                    headers={**gw.auth(), "X-Coatcheck-Conversation": "together"},
                    timeout=60,
                )
                assert response.status_code == 200, response.text
                assert response.json()["choices"][0]["message"]["content"] == content
                return emails

            sent = _together(THREADS, ask)
    assert len(fake.received) == THREADS
    numbers: dict[str, int] = {}
    for request in fake.received:
        up = last_user_text(request.body)
        assert "@" not in json.dumps(request.body)
        i = int(up.split(" ", 1)[0].removeprefix("request"))
        seen = [int(n) for n in _PLACEHOLDER.findall(up)]
        assert len(seen) == len(sent[i])
        for value, n in zip(sent[i], seen, strict=True):
            assert numbers.setdefault(value, n) == n, value  # the same value, one number
    assert len(set(numbers.values())) == len(numbers)  # two values never share one
    assert len(numbers) == len(EMAILS) + THREADS
