"""Vault throughput: tokenize and reveal (values/s) on SQLite and PostgreSQL.

    python bench/vault.py --n 3000 --batch 200 --pg postgresql://postgres@127.0.0.1:5432/test

Prints a markdown table per backend.  Each figure is the best of `--repeat` runs (the
machine is shared: the best run is the one least disturbed by others), next to a *floor*
measured in the same run on the same backend: a raw driver loop (sqlite3 / psycopg, no
SQLAlchemy, no crypto) doing one small INSERT and one COMMIT per iteration with the vault's
durability settings (SQLite WAL + synchronous=NORMAL + BEGIN IMMEDIATE; PostgreSQL
defaults).  "x floor" = figure / floor, so noise that slows both cancels out; a durable
per-call operation cannot beat 1.0x by much.

PostgreSQL runs in a throw-away `cc_bench_*` schema; leave out `--pg` (and unset
COATCHECK_TEST_PG_URL) to bench SQLite only.  Every reveal is audited in the hash chain
and committed before the call returns; `reveal_many` audits each reference and commits once.
The "N threads" rows make the same one-value calls from `--threads` threads of this one
process (a gateway worker serves concurrent requests from such a pool): on PostgreSQL the
round trips and commit flushes of concurrent calls overlap; on SQLite writers take turns.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is bench/vault.py: as a script its directory is sys.path[0] and would shadow
# the `vault` package, so drop it before importing anything from the project.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import os  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import psycopg  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from coatcheck.vault import Grant, Vault, make_engine, upgrade  # noqa: E402
from coatcheck.vault.db import normalise_url  # noqa: E402

_FLOOR_SQL = "INSERT INTO floor_bench (a, b) VALUES ({p}, {p})"


def _rate(n: int, work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return n / (time.perf_counter() - start)


def _best(repeat: int, run: Callable[[int], float]) -> tuple[float, float]:
    """Best and median of `repeat` runs (run gets the attempt number for fresh data)."""
    rates = [run(attempt) for attempt in range(repeat)]
    return max(rates), statistics.median(rates)


def sqlite_floor(path: str, n: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS floor_bench (id INTEGER PRIMARY KEY, a BLOB, b BLOB)")
    sql = _FLOOR_SQL.format(p="?")

    def loop() -> None:
        for _ in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, (os.urandom(32), os.urandom(64)))
            conn.execute("COMMIT")

    rate = _rate(n, loop)
    conn.close()
    return rate


def pg_floor(url: str, n: int) -> float:
    # A regular table in the bench schema (dropped with it): a TEMP table writes no WAL, so
    # its commits skip the flush that every vault commit pays, and the floor was too high.
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS floor_bench (id BIGSERIAL PRIMARY KEY, a BYTEA, b BYTEA)"
        )
        conn.commit()
        sql = _FLOOR_SQL.format(p="%s")

        def loop() -> None:
            for _ in range(n):
                conn.execute(sql, (os.urandom(32), os.urandom(64)))
                conn.commit()

        return _rate(n, loop)


def _threaded(threads: int, n: int, call: Callable[[int], object]) -> float:
    """`n` calls spread over `threads` threads of this process; calls/s over the wall time."""
    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        list(pool.map(call, range(n), chunksize=max(1, n // (threads * 8))))
        return n / (time.perf_counter() - start)


def bench(
    url: str, n: int, batch: int, repeat: int, threads: int
) -> dict[str, tuple[float, float]]:
    upgrade(url)
    engine = make_engine(url, pool_size=max(5, threads))
    vault = Vault(engine, os.urandom(32), tenant="bench")

    def values(attempt: int) -> list[str]:
        return [f"user{attempt}-{i}@example.org" for i in range(n)]

    def single(attempt: int) -> float:
        vals = values(attempt)
        return _rate(
            n, lambda: [vault.tokenize(f"conv{i % 50}", "EMAIL", v) for i, v in enumerate(vals)]
        )

    def batched(attempt: int) -> float:
        vals = values(attempt)
        return _rate(
            n,
            lambda: [
                vault.tokenize_many("convb", [("PHONE", v) for v in vals[i : i + batch]])
                for i in range(0, n, batch)
            ],
        )

    refs = vault.tokenize_many("hot", [("EMAIL", v) for v in values(-1)[:batch]])
    grant = Grant("hot", frozenset({"EMAIL"}), "bench", "bench", time.time() + 3600)

    def reveal(_: int) -> float:
        return _rate(n, lambda: [vault.reveal("hot", refs[i % len(refs)], grant) for i in range(n)])

    def reveal_many(_: int) -> float:
        return _rate(n, lambda: [vault.reveal_many("hot", refs, grant) for _ in range(n // batch)])

    def single_threaded(attempt: int) -> float:
        vals = values(attempt + 100)
        return _threaded(threads, n, lambda i: vault.tokenize(f"conv{i % 50}", "EMAIL", vals[i]))

    def reveal_threaded(_: int) -> float:
        return _threaded(threads, n, lambda i: vault.reveal("hot", refs[i % len(refs)], grant))

    results = {
        "tokenize (1/call)": _best(repeat, single),
        f"tokenize (1/call, {threads} threads)": _best(repeat, single_threaded),
        f"tokenize_many ({batch}/call)": _best(repeat, batched),
        "reveal (1/call, audited)": _best(repeat, reveal),
        f"reveal (1/call, audited, {threads} threads)": _best(repeat, reveal_threaded),
    }
    if hasattr(vault, "reveal_many"):  # absent when benching an older vault for "before"
        results[f"reveal_many ({batch}/call, audited)"] = _best(repeat, reveal_many)
    assert vault.verify_audit().ok
    engine.dispose()
    return results


@contextmanager
def _pg_schema(url: str) -> Iterator[str]:
    schema = f"cc_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _print(backend: str, floor: tuple[float, float], rows: dict[str, tuple[float, float]]) -> None:
    print(f"\n### {backend}\n")
    print("| operation | best values/s | median values/s | x floor (best/best) |")
    print("|---|---:|---:|---:|")
    print(f"| floor: raw driver INSERT + COMMIT loop | {floor[0]:,.0f} | {floor[1]:,.0f} | 1.00 |")
    for name, (best, median) in rows.items():
        print(f"| {name} | {best:,.0f} | {median:,.0f} | {best / floor[0]:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg", default=os.environ.get("COATCHECK_TEST_PG_URL"))
    parser.add_argument(
        "--threads", type=int, default=8, help="threads for the concurrent per-call rows"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        floor = _best(args.repeat, lambda _: sqlite_floor(f"{tmp}/floor.db", args.n))
        rows = bench(f"sqlite:///{tmp}/bench.db", args.n, args.batch, args.repeat, args.threads)
        _print("SQLite (WAL, synchronous=NORMAL)", floor, rows)
    if args.pg:
        with _pg_schema(args.pg) as url:
            floor = _best(args.repeat, lambda _: pg_floor(url.replace("+psycopg", ""), args.n))
            rows = bench(url, args.n, args.batch, args.repeat, args.threads)
        _print("PostgreSQL", floor, rows)


if __name__ == "__main__":
    main()
