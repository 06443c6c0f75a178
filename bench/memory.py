"""Memory benchmark: RSS of one `coatcheck serve` worker (no NER) over many conversations.

    python bench/memory.py [--messages 10000] [--conversations 1000] [--db sqlite|postgres]

Starts the stub bot of `bench/gateway.py` and one `coatcheck serve` worker (pattern-only
detection, a fresh temp SQLite file or a fresh PostgreSQL database), then sends
`--messages` webhook messages, each with a unique e-mail address and phone number, in
blocks: block k opens conversations k*B .. (k+1)*B-1 for the first time (B = conversations
per block), so every block adds new conversations and new vault epochs.  RSS (VmRSS from
/proc, the worker's own pid: with one worker uvicorn serves in-process) is sampled after
a warm-up block and after each block.  Reports RSS after warm-up, at the end, and the
growth per 1,000 conversations (least-squares slope over the post-warm-up samples), which
would show any per-conversation state kept in memory.  The vault keeps each recent
conversation's sub-keys (an AES-GCM context, ~3 KB of RSS) for up to 4,096 conversations,
so RSS grows until then and stays flat after: `--messages 8000 --conversations 8000
--blocks 16` shows the plateau (the last figure is the slope over the second half).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.gateway import (  # noqa: E402
    PG_ADMIN,
    channel_key,
    coatcheck_env,
    free_port,
    start,
    stop,
    wait_http,
)


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def send_block(port: int, key: str, first_msg: int, convs: range, per_conv: int) -> int:
    """Send `per_conv` messages to each conversation in `convs` on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    failures = 0
    n = first_msg
    for _ in range(per_conv):
        for c in convs:
            n += 1
            body = json.dumps(
                {
                    "sender": f"mem{c}",
                    "message": f"I am user{n}@example.com, call me on +1 415 555 {n % 10000:04d}",
                }
            )
            conn.request("POST", "/webhooks/rest/webhook", body, headers)
            resp = conn.getresponse()
            resp.read()
            failures += resp.status != 200
    conn.close()
    return failures


def _slope(samples: list[tuple[int, float]]) -> float:
    """Least-squares MB per conversation over (conversations, RSS) samples."""
    xs = [x for x, _ in samples]
    ys = [y for _, y in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs) or 1.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def run(args: argparse.Namespace, db_url: str, tmp: Path) -> None:
    stub_port, port = free_port(), free_port()
    bot_url = f"http://127.0.0.1:{stub_port}/webhooks/rest/webhook"
    gateway = str(ROOT / "bench" / "gateway.py")
    procs = [start([sys.executable, gateway, "--stub", str(stub_port)])]
    exe = str(Path(sys.executable).with_name("coatcheck"))
    env = coatcheck_env(db_url, tmp, bot_url)
    # This tree first (the `coatcheck` script may be an editable install of another one).
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    server = start([exe, "serve", "--port", str(port), "--workers", "1"], env)
    procs.append(server)
    try:
        wait_http(f"http://127.0.0.1:{stub_port}/")
        wait_http(f"http://127.0.0.1:{port}/health", 60)
        key = channel_key(tmp)
        per_conv = args.messages // args.conversations
        blocks = args.blocks
        per_block = args.conversations // blocks
        threads = args.threads
        print(f"pid {server.pid}: RSS at start {rss_mb(server.pid):.1f} MB")
        samples: list[tuple[int, float]] = []
        failures = 0
        msg = 0
        t0 = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            for b in range(blocks):
                lo = b * per_block
                chunks = [range(lo + i, lo + per_block, threads) for i in range(threads)]
                futures = [
                    pool.submit(send_block, port, key, msg + i * 10**6, chunk, per_conv)
                    for i, chunk in enumerate(chunks)
                ]
                failures += sum(f.result() for f in futures)
                msg += per_block * per_conv
                convs = lo + per_block
                rss = rss_mb(server.pid)
                samples.append((convs, rss))
                print(f"  {convs:6d} conversations, {msg:6d} messages: RSS {rss:7.1f} MB")
        elapsed = time.perf_counter() - t0
        warm = samples[0]
        slope = _slope(samples[1:] or samples)
        late = _slope(samples[len(samples) // 2 :])
        print(
            f"=> {args.db}: {msg} messages / {samples[-1][0]} conversations in {elapsed:.0f} s"
            f" ({msg / elapsed:.0f} msg/s), {failures} non-200; RSS after warm-up"
            f" ({warm[0]} conversations) {warm[1]:.1f} MB, at the end {samples[-1][1]:.1f} MB"
            f" (budget <= 250), growth {slope * 1000:+.2f} MB per 1,000 conversations"
            f" ({late * 1000:+.2f} over the second half of the samples)"
        )
    finally:
        for proc in procs:
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--conversations", type=int, default=1_000)
    parser.add_argument("--blocks", type=int, default=10, help="RSS samples (one per block)")
    parser.add_argument("--threads", type=int, default=4, help="client connections")
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cc_mem_") as tmpdir:
        tmp = Path(tmpdir)
        if args.db == "sqlite":
            run(args, f"sqlite:///{tmp}/cc.db", tmp)
            return
        name = f"cc_mem_{os.getpid()}"
        subprocess.run(["createdb", *PG_ADMIN, name], check=True)
        try:
            run(args, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", tmp)
        finally:
            subprocess.run(["dropdb", *PG_ADMIN, "--force", name], check=False)


if __name__ == "__main__":
    main()
