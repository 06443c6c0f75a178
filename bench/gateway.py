"""Gateway benchmark: coatcheck vs the bare pass-through vs the stub bot, under wrk.

    python bench/gateway.py [--duration 10] [--db sqlite,postgres] [--workers 1]

Starts, each as its own process on loopback: a fast stub bot (raw asyncio HTTP responder
answering a Rasa-style reply list), the bare pass-through (`bench/proxy_baseline.py`)
forwarding to it, and `coatcheck serve` (one worker by default) on a temp SQLite file or a
fresh PostgreSQL database (`cc_bench_<pid>`, created with createdb and dropped after).
wrk (a separate process; `apt-get install -y wrk`) drives each target with the same load;
its Lua script gives every message a different e-mail address and phone number, and
spreads messages over 1,000 senders.  50 connections measure throughput, 1 connection
latency.  Reports req/s, p50/p99, the throughput ratio coatcheck/pass-through and the added
latency of coatcheck vs the pass-through and vs the stub called directly.

`--before DIR` also runs the code unpacked in DIR (e.g. `git archive <commit> middleware
vault alembic | tar -x -C DIR`), right before this tree's, for a before/after under the
same neighbours' load.  `--rounds N` repeats the whole sequence N times, interleaved, and
reports each figure's median (tail latencies swing from run to run on this shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
Result = dict[str, dict[str, float]]
PG_ADMIN = ("-h", "127.0.0.1", "-U", "postgres")

LUA = r"""
counter = 0
function setup(thread)
  thread:set("tid", math.random(1, 1000000))
end
request = function()
  counter = counter + 1
  local n = tid * 100000 + counter
  local body = string.format(
    '{"sender":"user%d","message":"Hi, I am jane%d@example.com, call me on +1 415 555 %04d"}',
    n % 1000, n, n % 10000)
  return wrk.format("POST", wrk.path, nil, body)
end
"""


# --- the stub bot: a raw asyncio HTTP/1.1 keep-alive responder --------------------------

# What the stub answers; `--reply-pii` makes it a bot that writes personal data itself (a
# CRM lookup), so coatcheck's reply filter has values to vault on every message.
REPLY_TEXT = [b"Thanks, noted."]
REPLY_PII = b"Thanks, noted. Your agent is agent.smith@example.org, +1 415 555 0100."


def _stub_reply(body: bytes) -> bytes:
    match = re.search(rb'"sender"\s*:\s*"([^"]*)"', body)
    sender = match.group(1) if match else b"user"
    payload = b'[{"recipient_id":"' + sender + b'","text":"' + REPLY_TEXT[0] + b'"}]'
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % len(payload) + payload


async def _stub_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            writer.write(_stub_reply(body))
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


def run_stub(port: int) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_stub_conn, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- process management -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def start(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- wrk ----------------------------------------------------------------------------------


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, conns: int, duration: int, script: Path, key: str | None) -> dict[str, float]:
    cmd = ["wrk", f"-t{min(2, conns)}", f"-c{conns}", f"-d{duration}s", "--latency"]
    cmd += ["-s", str(script), "-H", "Content-Type: application/json"]
    if key:
        cmd += ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    stats = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        stats[f"p{pct}"] = _ms(re.search(rf"\s{pct}%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    stats["non2xx"] = float(bad.group(1)) if bad else 0.0
    errors = re.search(r"Socket errors:.*", out)
    if errors:
        print(f"    wrk: {errors.group(0)}")
    return stats


def measure(
    name: str, url: str, args: argparse.Namespace, script: Path, key: str | None
) -> dict[str, dict[str, float]]:
    wrk(url, 10, 2, script, key)  # warm-up
    result = {
        "c50": wrk(url, 50, args.duration, script, key),
        "c1": wrk(url, 1, args.duration, script, key),
    }
    _line(name, result)
    return result


def _line(name: str, result: Result) -> None:
    t, lat = result["c50"], result["c1"]
    print(
        f"  {name:<12} c50 {t['rps']:8.0f} req/s p50 {t['p50']:7.2f} p99 {t['p99']:7.2f} ms"
        f" | c1 {lat['rps']:6.0f} req/s p50 {lat['p50']:6.2f} p99 {lat['p99']:6.2f} ms"
        + (f" | non-2xx {int(t['non2xx'] + lat['non2xx'])}" if t["non2xx"] + lat["non2xx"] else "")
    )


def _median(results: list[Result]) -> Result:
    """Each figure's median over the rounds (each figure on its own)."""
    return {
        load: {key: statistics.median(r[load][key] for r in results) for key in results[0][load]}
        for load in results[0]
    }


# --- the runs -----------------------------------------------------------------------------


def coatcheck_env(db_url: str, tmp: Path, bot_url: str) -> dict[str, str]:
    return {
        "COATCHECK_DATABASE_URL": db_url,
        "COATCHECK_KEY_FILE": str(tmp / "coatcheck.key"),
        "COATCHECK_APIKEYS_FILE": str(tmp / "coatcheck.apikeys"),
        "COATCHECK_BOT_URL": bot_url,
        "COATCHECK_RATE_LIMIT": "1000000000",
    }


def channel_key(tmp: Path) -> str:
    for line in (tmp / "coatcheck.apikeys").read_text().splitlines():
        role, _, key = line.partition("=")
        if role == "channel":
            return key
    raise SystemExit("no channel key written")


def run_coatcheck(
    db: str,
    db_url: str,
    args: argparse.Namespace,
    script: Path,
    bot_url: str,
    tmp: Path,
    source: str | None = None,
) -> dict[str, dict[str, float]]:
    """One `coatcheck serve` run; `source` (a PYTHONPATH) runs another copy of the code."""
    port = free_port()
    exe = shutil.which("coatcheck") or str(Path(sys.executable).with_name("coatcheck"))
    cmd = [exe, "serve", "--port", str(port), "--workers", str(args.workers)]
    env = coatcheck_env(db_url, tmp, bot_url)
    # This tree (or `source`) first: the `coatcheck` script may come from an editable
    # install of another checkout, which would otherwise be what gets measured.
    env["PYTHONPATH"] = source or os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    proc = start(cmd, env)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 60)
        url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
        label = f"{'before' if source else 'coatcheck'}/{db}"
        return measure(label, url, args, script, channel_key(tmp))
    finally:
        stop(proc)


def report(
    stub: dict[str, dict[str, float]],
    base: dict[str, dict[str, float]],
    cc: dict[str, dict[str, float]],
    db: str,
) -> None:
    ratio = cc["c50"]["rps"] / base["c50"]["rps"]
    print(
        f"  => {db}: throughput ratio coatcheck/pass-through {ratio:.2f} (budget >= 0.70); "
        f"added latency c1 vs pass-through p50 {cc['c1']['p50'] - base['c1']['p50']:+.2f} ms "
        f"p99 {cc['c1']['p99'] - base['c1']['p99']:+.2f} ms (budget 2 / 5); "
        f"vs stub p50 {cc['c1']['p50'] - stub['c1']['p50']:+.2f} ms "
        f"p99 {cc['c1']['p99'] - stub['c1']['p99']:+.2f} ms"
    )


def run_db(
    db: str, args: argparse.Namespace, script: Path, bot_url: str, tmp: Path, source: str | None
) -> dict[str, dict[str, float]]:
    """coatcheck on a fresh SQLite file or a fresh PostgreSQL database (dropped after)."""
    sub = Path(tempfile.mkdtemp(prefix=f"{db}_", dir=tmp))
    if db == "sqlite":
        return run_coatcheck(db, f"sqlite:///{sub}/cc.db", args, script, bot_url, sub, source)
    name = f"cc_bench_{os.getpid()}"
    subprocess.run(["createdb", *PG_ADMIN, name], check=True)
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        return run_coatcheck(db, url, args, script, bot_url, sub, source)
    finally:
        subprocess.run(["dropdb", *PG_ADMIN, "--force", name], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat everything, interleaved; report medians"
    )
    parser.add_argument(
        "--before",
        metavar="PYTHONPATH",
        help="also run another copy of the code (e.g. an unpacked older commit) first",
    )
    parser.add_argument(
        "--reply-pii",
        action="store_true",
        help="the stub bot's reply carries an e-mail address and a phone number",
    )
    parser.add_argument("--stub", type=int, help=argparse.SUPPRESS)  # internal: run the stub
    args = parser.parse_args()
    if args.stub:
        if args.reply_pii:
            REPLY_TEXT[0] = REPLY_PII
        run_stub(args.stub)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    with tempfile.TemporaryDirectory(prefix="cc_bench_") as tmpdir:
        tmp = Path(tmpdir)
        script = tmp / "pii.lua"
        script.write_text(LUA)
        stub_port, base_port = free_port(), free_port()
        bot_url = f"http://127.0.0.1:{stub_port}/webhooks/rest/webhook"
        stub_cmd = [sys.executable, __file__, "--stub", str(stub_port)]
        procs = [start(stub_cmd + (["--reply-pii"] if args.reply_pii else []))]
        base_cmd = [sys.executable, "-m", "uvicorn", "bench.proxy_baseline:create_app"]
        base_cmd += ["--factory", "--port", str(base_port), "--log-level", "warning"]
        procs.append(start(base_cmd, {"BASELINE_BOT_URL": bot_url}))
        try:
            wait_http(f"http://127.0.0.1:{stub_port}/")
            wait_http(f"http://127.0.0.1:{base_port}/docs")
            print(f"{args.duration}s per run, wrk c50 (throughput) and c1 (latency)")
            base_url = f"http://127.0.0.1:{base_port}/webhooks/rest/webhook"
            sources = ([args.before] if args.before else []) + [None]
            runs: dict[str, list[Result]] = {}
            for round_no in range(1, args.rounds + 1):
                if args.rounds > 1:
                    print(f"round {round_no}/{args.rounds}")
                runs.setdefault("stub", []).append(measure("stub bot", bot_url, args, script, None))
                runs.setdefault("base", []).append(
                    measure("pass-through", base_url, args, script, None)
                )
                for db in args.db.split(","):
                    for source in sources:
                        cc = run_db(db, args, script, bot_url, tmp, source)
                        runs.setdefault(f"{db} ({'before' if source else 'this tree'})", []).append(
                            cc
                        )
            med = {name: _median(results) for name, results in runs.items()}
            if args.rounds > 1:
                print(f"medians of {args.rounds} rounds")
                for name, result in med.items():
                    _line(name, result)
            for name, result in med.items():
                if name not in ("stub", "base"):
                    report(med["stub"], med["base"], result, name)
        finally:
            for proc in procs:
                stop(proc)


if __name__ == "__main__":
    main()
