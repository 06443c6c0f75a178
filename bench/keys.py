"""Cost of one key-provider operation, per provider, against the key file in the same run.

    python bench/keys.py --n 3000 --rounds 5

Providers: the key file, the environment, PKCS#11 on a throw-away SoftHSM2 token, and
transit on a throw-away OpenBao dev server on loopback (each skipped with a note when its
software is missing).  Operations: seal / unseal under
the root, wrap / unwrap a 32-byte data key under a KEK, open a KEK from its record (what a
worker does once per KEK), create + destroy a KEK.  Rounds interleave the providers and
each figure is the median of the rounds' microseconds per operation; "x file" divides by
the key file's median of the same operation.

For scale, the run also measures the vault's own `tokenize` (one value per call, SQLite,
50 conversations: the shape of bench/vault.py's per-call row) and prints what one wrap or
unwrap would add to each tokenize if it were paid on every call instead of being cached
(docs/keys.md, "Caching").
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from coatcheck.vault import Vault, make_engine, upgrade  # noqa: E402
from coatcheck.vault.keys import EnvKeyProvider, FileKeyProvider, KeyProvider  # noqa: E402
from tests.keys import openbao  # noqa: E402
from tests.keys.softhsm import init_token, missing  # noqa: E402

CTX = b"coatcheck/bench/dek-context"
OPS = ("seal", "unseal", "wrap", "unwrap", "open_kek", "create+destroy kek")


def _us(n: int, work: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(n):
        work()
    return (time.perf_counter() - start) / n * 1e6


def measure(provider: KeyProvider, n: int) -> dict[str, float]:
    """Microseconds per operation for one provider."""
    dek = os.urandom(32)
    sealed = provider.seal(dek, CTX)
    record = provider.create_kek("bench/live/d/0")
    kek = provider.open_kek("bench/live/d/0", record)
    wrapped = kek.wrap(dek, CTX)
    counter = iter(range(10**9))

    def create_destroy() -> None:
        kek_id = f"bench/tmp/{next(counter)}"
        provider.destroy_kek(kek_id, provider.create_kek(kek_id))

    out = {
        "seal": _us(n, lambda: provider.seal(dek, CTX)),
        "unseal": _us(n, lambda: provider.unseal(sealed, CTX)),
        "wrap": _us(n, lambda: kek.wrap(dek, CTX)),
        "unwrap": _us(n, lambda: kek.unwrap(wrapped, CTX)),
        "open_kek": _us(n, lambda: provider.open_kek("bench/live/d/0", record)),
        "create+destroy kek": _us(max(n // 100, 10), create_destroy),
    }
    provider.destroy_kek("bench/live/d/0", record)
    return out


def tokenize_us(tmp: str, n: int) -> float:
    """Microseconds per one-value tokenize on SQLite (cached data keys, as in production)."""
    url = f"sqlite:///{tmp}/bench-{os.urandom(4).hex()}.db"
    upgrade(url)
    engine = make_engine(url)
    vault = Vault(engine, os.urandom(32))
    values = [f"user{i}-{os.urandom(4).hex()}@example.org" for i in range(n)]
    start = time.perf_counter()
    for i, value in enumerate(values):
        vault.tokenize(f"conv{i % 50}", "EMAIL", value)
    elapsed = (time.perf_counter() - start) / n * 1e6
    engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000, help="operations per figure")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    args = parser.parse_args()
    notes: list[str] = []
    server: openbao.BaoServer | None = None
    with tempfile.TemporaryDirectory() as tmp:
        makers: dict[str, Callable[[], KeyProvider]] = {
            "file": lambda: FileKeyProvider(Path(tmp) / "root.key"),
            "env": lambda: EnvKeyProvider(base64.b64encode(os.urandom(32)).decode()),
        }
        reason = missing()
        if reason is None:
            token = init_token(Path(tmp) / "softhsm")
            os.environ["SOFTHSM2_CONF"] = str(token.conf)
            from coatcheck.vault.keys.pkcs11 import Pkcs11KeyProvider

            makers["pkcs11 (SoftHSM2)"] = lambda: Pkcs11KeyProvider(
                token.module, token.label, token.pin
            )
        else:
            notes.append(f"PKCS#11 not measured: {reason}")
        if openbao.missing() is None:
            server = openbao.start(Path(tmp))
            makers["transit (OpenBao)"] = _transit(server)
        else:
            notes.append(f"transit not measured: {openbao.missing()}")
        samples: dict[str, dict[str, list[float]]] = {
            name: {op: [] for op in OPS} for name in makers
        }
        tokenize: list[float] = []
        for _ in range(args.rounds):
            for name, make in makers.items():
                with make() as provider:
                    for op, us in measure(provider, args.n).items():
                        samples[name][op].append(us)
            tokenize.append(tokenize_us(tmp, args.n))
        if server is not None:
            server.stop()
    _report(samples, statistics.median(tokenize), args, notes)


def _transit(server: openbao.BaoServer) -> Callable[[], KeyProvider]:
    from coatcheck.vault.keys.transit import TransitKeyProvider, create_transit_root

    mount = server.new_transit_mount()
    create_transit_root(server.address, server.token, mount)
    return lambda: TransitKeyProvider(server.address, server.token, mount)


def _report(
    samples: dict[str, dict[str, list[float]]],
    tokenize: float,
    args: argparse.Namespace,
    notes: list[str],
) -> None:
    median = {
        name: {op: statistics.median(v) for op, v in ops.items()} for name, ops in samples.items()
    }
    base = median["file"]
    print(f"n={args.n} per figure, median of {args.rounds} interleaved rounds; us per operation")
    print()
    print("| provider | " + " | ".join(OPS) + " |")
    print("|---|" + "---:|" * len(OPS))
    for name, ops in median.items():
        cells = [f"{ops[op]:.1f} ({ops[op] / base[op]:.2f}x)" for op in OPS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print(f"vault tokenize, 1 value/call, SQLite: {tokenize:.1f} us (median of rounds)")
    for name, ops in median.items():
        print(
            f"- {name}: a wrap on every tokenize would add {ops['wrap'] / tokenize:.1%}, "
            f"an unwrap {ops['unwrap'] / tokenize:.1%}"
        )
    for note in notes:
        print(f"\n{note}")


if __name__ == "__main__":
    main()
