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

Before / after, in the same run:

    git -C /work/main archive <commit> coatcheck vault alembic | tar -x -C /tmp/vault-before
    python bench/vault.py --before /tmp/vault-before --rounds 5 --pg postgresql://...

runs every row against the code in DIR (its own `coatcheck` package, on its own
PYTHONPATH) and against this tree: two child processes, each with its vault on a fresh
database, take turns every n/`--chunks` calls of a row (who goes first alternates), in
`--rounds` rounds, so a neighbour's burst of load lands on both sides alike.  Per row it
prints both sides' median values/s and the median (and min..max) of the per-round ratios
this tree / before: the figure of merit.

Key providers (docs/keys.md): `--providers file,env,pkcs11,transit` runs this tree once
per provider (the key file by default), each its own child taking turns with the others
and with "before" (which runs on raw master-key bytes, as it always did): one ratio per
provider against the same "before" in the same run.  PKCS#11 runs on a throw-away SoftHSM2
token, transit on a throw-away OpenBao dev server (tests/keys/softhsm.py, openbao.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is bench/vault.py: as a script its directory is sys.path[0] and would shadow
# the `vault` package, so drop it before importing anything from the project.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import contextlib  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
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
_ROOT = _HERE.parent
if str(_ROOT) not in sys.path:  # tests.keys: the throw-away token and transit server
    sys.path.append(str(_ROOT))


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


def _timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _threaded(threads: int, calls: range, call: Callable[[int], object]) -> float:
    """`calls` spread over `threads` threads of this process; the wall time."""
    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        list(pool.map(call, calls, chunksize=max(1, len(calls) // (threads * 8))))
        return time.perf_counter() - start


# A row runs its calls lo..hi of attempt `attempt` (fresh values per attempt) and returns
# the seconds they took; a whole run is (attempt, 0, n), a --before chunk a slice of it.
Row = Callable[[int, int, int], float]


def _keys(spec: dict[str, str] | None) -> object:
    """What the vault runs on: raw master-key bytes (None), else the provider `spec` names."""
    if spec is None:
        return os.urandom(32)
    from coatcheck.vault.keys import ProviderSettings, open_provider

    fields = {k: Path(v) if k == "key_file" else v for k, v in spec.items()}
    return open_provider(ProviderSettings(**fields))  # type: ignore[arg-type]


@contextmanager
def _rows(
    url: str, n: int, batch: int, threads: int, spec: dict[str, str] | None = None
) -> Iterator[dict[str, Row]]:
    """The bench's rows on a vault over `url` (migrated here); the chain verified at the end."""
    upgrade(url)
    engine = make_engine(url, pool_size=max(5, threads))
    vault = Vault(engine, _keys(spec), tenant="bench")  # type: ignore[arg-type]

    def values(attempt: int) -> list[str]:
        return [f"user{attempt}-{i}@example.org" for i in range(n)]

    def single(attempt: int, lo: int, hi: int) -> float:
        vals = values(attempt)
        return _timed(
            lambda: [vault.tokenize(f"conv{i % 50}", "EMAIL", vals[i]) for i in range(lo, hi)]
        )

    def batched(attempt: int, lo: int, hi: int) -> float:
        vals = values(attempt)
        return _timed(
            lambda: [
                vault.tokenize_many("convb", [("PHONE", v) for v in vals[i : min(i + batch, hi)]])
                for i in range(lo, hi, batch)
            ]
        )

    refs = vault.tokenize_many("hot", [("EMAIL", v) for v in values(-1)[:batch]])
    grant = Grant("hot", frozenset({"EMAIL"}), "bench", "bench", time.time() + 3600)

    def reveal(_: int, lo: int, hi: int) -> float:
        return _timed(
            lambda: [vault.reveal("hot", refs[i % len(refs)], grant) for i in range(lo, hi)]
        )

    def reveal_many(_: int, lo: int, hi: int) -> float:
        return _timed(lambda: [vault.reveal_many("hot", refs, grant) for _ in range(lo, hi, batch)])

    def single_threaded(attempt: int, lo: int, hi: int) -> float:
        vals = values(attempt + 100_000)
        call = lambda i: vault.tokenize(f"conv{i % 50}", "EMAIL", vals[i])  # noqa: E731
        return _threaded(threads, range(lo, hi), call)

    def reveal_threaded(_: int, lo: int, hi: int) -> float:
        call = lambda i: vault.reveal("hot", refs[i % len(refs)], grant)  # noqa: E731
        return _threaded(threads, range(lo, hi), call)

    rows: dict[str, Row] = {
        "tokenize (1/call)": single,
        f"tokenize (1/call, {threads} threads)": single_threaded,
        f"tokenize_many ({batch}/call)": batched,
        "reveal (1/call, audited)": reveal,
        f"reveal (1/call, audited, {threads} threads)": reveal_threaded,
    }
    if hasattr(vault, "reveal_many"):  # absent when benching an older vault for "before"
        rows[f"reveal_many ({batch}/call, audited)"] = reveal_many
    try:
        yield rows
        assert vault.verify_audit().ok
    finally:
        engine.dispose()


def bench(
    url: str, n: int, batch: int, repeat: int, threads: int
) -> dict[str, tuple[float, float]]:
    with _rows(url, n, batch, threads) as rows:
        return {
            name: _best(repeat, lambda attempt, row=row: n / row(attempt, 0, n))  # type: ignore[misc]
            for name, row in rows.items()
        }


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


class _Side:
    """One side of a --before run: a child process importing `coatcheck` from `source`,
    holding a vault on its own fresh database, running one row when asked (stdin/stdout)."""

    def __init__(
        self, source: str, url: str, args: argparse.Namespace, spec: dict[str, str] | None
    ) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", url]
        cmd += ["--n", str(args.n), "--batch", str(args.batch), "--threads", str(args.threads)]
        if spec is not None:
            cmd += ["--provider-spec", json.dumps(spec)]
        self._proc = subprocess.Popen(
            cmd,
            env={**os.environ, "PYTHONPATH": source},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.rows: list[str] = json.loads(self._read())

    def _read(self) -> str:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench child exited with {self._proc.wait()}")
        return line

    def run(self, row: str, attempt: int, lo: int, hi: int) -> float:
        """Seconds the child took for calls lo..hi of `row`."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps([row, attempt, lo, hi]) + "\n")
        self._proc.stdin.flush()
        return float(self._read())

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()  # the child verifies the audit chain and exits
        if self._proc.wait() != 0:
            raise RuntimeError("bench child failed at the end (audit chain?)")


def _serve(url: str, args: argparse.Namespace) -> None:
    """Child side: announce the rows, then run one per request line until stdin closes."""
    spec = json.loads(args.provider_spec) if args.provider_spec else None
    with _rows(url, args.n, args.batch, args.threads, spec) as rows:
        print(json.dumps(list(rows)), flush=True)
        for line in sys.stdin:
            name, attempt, lo, hi = json.loads(line)
            print(rows[name](attempt, lo, hi), flush=True)


@contextmanager
def _fresh_db(pg: str | None, tmp: str, tag: str) -> Iterator[str]:
    """A new, empty database for one side: a SQLite file, or a PG schema when `pg`."""
    if pg is None:
        yield f"sqlite:///{tmp}/{tag}.db"
        return
    with _pg_schema(pg) as url:
        yield url


def _floor(pg: str | None, n: int, tmp: str) -> float:
    if pg is None:
        return sqlite_floor(f"{tmp}/floor.db", n)
    with _pg_schema(pg) as url:
        return pg_floor(url.replace("+psycopg", ""), n)


@contextmanager
def _provider_specs(names: list[str], tmp: str) -> Iterator[dict[str, dict[str, str]]]:
    """Settings (as strings) of each provider to bench; the token / server made here."""
    specs: dict[str, dict[str, str]] = {}
    server = None
    try:
        for name in names:
            if name == "file":
                specs[name] = {"kind": "file", "key_file": f"{tmp}/bench-root.key"}
            elif name == "env":
                specs[name] = {"kind": "env", "master_key_b64": _b64_key()}
            elif name == "pkcs11":
                from tests.keys.softhsm import init_token, missing

                if missing() is not None:
                    raise SystemExit(f"--providers pkcs11: {missing()}")
                token = init_token(Path(tmp) / "softhsm")
                os.environ["SOFTHSM2_CONF"] = str(token.conf)  # the children inherit it
                specs[name] = {
                    "kind": "pkcs11",
                    "pkcs11_module": token.module,
                    "pkcs11_token": token.label,
                    "pkcs11_pin": token.pin,
                }
            elif name == "transit":
                from coatcheck.vault.keys.transit import create_transit_root
                from tests.keys import openbao

                if openbao.missing() is not None:
                    raise SystemExit(f"--providers transit: {openbao.missing()}")
                server = openbao.start(Path(tmp))
                mount = server.new_transit_mount()
                create_transit_root(server.address, server.token, mount)
                specs[name] = {
                    "kind": "transit",
                    "transit_addr": server.address,
                    "transit_token": server.token,
                    "transit_mount": mount,
                }
            else:
                raise SystemExit(f"--providers: unknown provider {name!r}")
        yield specs
    finally:
        if server is not None:
            server.stop()


def _b64_key() -> str:
    import base64

    return base64.b64encode(os.urandom(32)).decode("ascii")


def before_after(args: argparse.Namespace) -> None:
    """Rounds of every row, this tree (per provider) against `--before`, interleaved chunk by
    chunk: every side takes its turn in each chunk, the order rotating."""
    if args.n % args.batch or args.n // args.chunks < args.batch:
        raise SystemExit("--before needs --n a multiple of --batch, and chunks of >= --batch")
    size = args.n // args.chunks // args.batch * args.batch
    chunks = [(lo, min(lo + size, args.n)) for lo in range(0, args.n, size)]
    before, this_tree = str(Path(args.before).resolve()), str(_ROOT)
    backends: list[tuple[str, str | None]] = []
    if not args.no_sqlite:
        backends.append(("SQLite (WAL, synchronous=NORMAL)", None))
    if args.pg:
        backends.append(("PostgreSQL", args.pg))
    names = args.providers.split(",")
    for title, pg in backends:
        with (
            tempfile.TemporaryDirectory() as tmp,
            _provider_specs(names, tmp) as specs,
            contextlib.ExitStack() as stack,
        ):
            url = stack.enter_context(_fresh_db(pg, tmp, "before"))
            sides = {"before": _Side(before, url, args, None)}
            for name, spec in specs.items():
                url = stack.enter_context(_fresh_db(pg, tmp, f"after-{name}"))
                sides[f"this tree ({name})"] = _Side(this_tree, url, args, spec)
            floor = functools.partial(_floor, pg, args.n, tmp)
            rates, floors = _rounds(sides, chunks, args, title, floor)
            for child in sides.values():
                child.close()
        _print_before_after(title, floors, rates)


def _rounds(
    sides: dict[str, _Side],
    chunks: list[tuple[int, int]],
    args: argparse.Namespace,
    title: str,
    floor: Callable[[], float],
) -> tuple[dict[str, dict[str, list[float]]], list[float]]:
    """Every row in every round, each chunk run by every side in a rotating order."""
    rates: dict[str, dict[str, list[float]]] = {side: {} for side in sides}
    floors: list[float] = []
    first = next(side for side in sides if side != "before")
    rows = [r for r in sides[first].rows if r in sides["before"].rows]
    rows = [r for r in rows if not args.only or any(o in r for o in args.only)]
    order = list(sides)
    for round_no in range(args.rounds):
        for row in rows:
            seconds = dict.fromkeys(sides, 0.0)
            for k, (lo, hi) in enumerate(chunks):
                shift = (round_no + k) % len(order)
                for side in order[shift:] + order[:shift]:
                    seconds[side] += sides[side].run(row, round_no, lo, hi)
            for side, spent in seconds.items():
                rates[side].setdefault(row, []).append(args.n / spent)
        floors.append(floor())
        print(f"  {title}: round {round_no + 1}/{args.rounds}", file=sys.stderr)
    return rates, floors


def _print_before_after(
    title: str, floors: list[float], rates: dict[str, dict[str, list[float]]]
) -> None:
    print(f"\n### {title}: this tree vs before, {len(floors)} interleaved rounds\n")
    print("| operation | side | before median /s | side median /s | ratio (median) | min..max |")
    print("|---|---|---:|---:|---:|---:|")
    floor, low, high = statistics.median(floors), min(floors), max(floors)
    print(f"| floor (raw driver loop) | | | {floor:,.0f} | | {low:,.0f}..{high:,.0f} /s |")
    for side, by_row in rates.items():
        if side == "before":
            continue
        for name, after in by_row.items():
            before = rates["before"][name]
            ratios = [a / b for a, b in zip(after, before, strict=True)]
            print(
                f"| {name} | {side} | {statistics.median(before):,.0f} "
                f"| {statistics.median(after):,.0f} "
                f"| {statistics.median(ratios):.3f} | {min(ratios):.3f}..{max(ratios):.3f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg", default=os.environ.get("COATCHECK_TEST_PG_URL"))
    parser.add_argument(
        "--threads", type=int, default=8, help="threads for the concurrent per-call rows"
    )
    parser.add_argument(
        "--before", metavar="DIR", help="also bench the code in DIR (see above), interleaved"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds of a --before run")
    parser.add_argument(
        "--only", action="append", help="--before: rows whose name contains this (repeatable)"
    )
    parser.add_argument("--no-sqlite", action="store_true", help="--before: PostgreSQL only")
    parser.add_argument(
        "--chunks", type=int, default=10, help="--before: sides alternate every n/chunks calls"
    )
    parser.add_argument(
        "--providers",
        default="file",
        help="--before: this tree's key providers, comma separated (file,env,pkcs11,transit)",
    )
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--provider-spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _serve(args.child, args)
        return
    if args.before:
        before_after(args)
        return
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
