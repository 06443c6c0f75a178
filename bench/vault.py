"""Vault throughput: tokenize and reveal (values/s) on SQLite and PostgreSQL.

    python -P bench/vault.py --n 5000   # -P: keep bench/ off sys.path (this file is vault.py) --pg postgresql://postgres@127.0.0.1:5432/test

Prints a markdown table. PostgreSQL runs in a throw-away `cc_bench_*` schema; leave out
`--pg` (and unset COATCHECK_TEST_PG_URL) to bench SQLite only.  Reveal is measured within
one cached conversation, each reveal audited (one write transaction each).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable

from sqlalchemy import create_engine, text

from vault import Grant, Vault, make_engine, upgrade
from vault.db import normalise_url


def _rate(n: int, work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return n / (time.perf_counter() - start)


def bench(url: str, n: int, batch: int) -> dict[str, float]:
    upgrade(url)
    engine = make_engine(url)
    vault = Vault(engine, os.urandom(32), tenant="bench")
    values = [f"user{i}@example.org" for i in range(n)]
    single = _rate(
        n, lambda: [vault.tokenize(f"conv{i % 50}", "EMAIL", v) for i, v in enumerate(values)]
    )
    batched = _rate(
        n,
        lambda: [
            vault.tokenize_many("convb", [("PHONE", v) for v in values[i : i + batch]])
            for i in range(0, n, batch)
        ],
    )
    refs = vault.tokenize_many("hot", [("EMAIL", v) for v in values[:100]])
    grant = Grant("hot", frozenset({"EMAIL"}), "bench", "bench", time.time() + 3600)
    reveal = _rate(n, lambda: [vault.reveal("hot", refs[i % 100], grant) for i in range(n)])
    engine.dispose()
    return {"tokenize (1/call)": single, f"tokenize_many ({batch}/call)": batched, "reveal": reveal}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--pg", default=os.environ.get("COATCHECK_TEST_PG_URL"))
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite (WAL)"] = bench(f"sqlite:///{tmp}/bench.db", args.n, args.batch)
    if args.pg:
        schema = f"cc_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(normalise_url(args.pg), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            sep = "&" if "?" in args.pg else "?"
            results["PostgreSQL"] = bench(
                f"{args.pg}{sep}options=-csearch_path%3D{schema}", args.n, args.batch
            )
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    metrics = list(next(iter(results.values())))
    print("| backend | " + " | ".join(f"{m} values/s" for m in metrics) + " |")
    print("|---" * (len(metrics) + 1) + "|")
    for backend, row in results.items():
        print(f"| {backend} | " + " | ".join(f"{row[m]:,.0f}" for m in metrics) + " |")


if __name__ == "__main__":
    main()
