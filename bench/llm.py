"""What the LLM gateway adds: time to first token and total time, and streamed answers per
second, against the same fake provider called directly, in the same run.

    PYTHONPATH=$PWD nice -n 10 python bench/llm.py --requests 200 --load 600

Four processes on loopback: the fake provider (tests/llm/fake_upstream.py, echoing the
prompt back 4 characters per SSE event, 250 events for the ~1 KB prompt), the real
`coatcheck serve` (one worker, SQLite, `COATCHECK_LLM_UPSTREAM_URL` at the fake, the
default settings otherwise: `--key-cache 0` turns the API key cache off), a bare
aiohttp streaming proxy (below: no auth, no redaction, no history; what any proxy costs)
and this client.

1. Latency at 1 connection: requests go in turn to the provider directly, through the
   bare proxy and through coatcheck (interleaved, so drift hits all alike); p50 of the
   time to the first non-empty content delta (TTFT) and of the total.  The prompt holds an
   e-mail address and a card number, so each request vaults two values, numbers two
   placeholders and stores the prompt line (one SQLite commit, before anything goes up),
   then the answer line (a second commit, after the stream).
2. CPU per request: the server process's own CPU time (user + system, /proc) over
   `--requests` sequential streams, for the bare proxy and coatcheck: a busy host
   inflates it far less than wall-clock times (it still does: caches are shared).
3. Throughput at `--connections` (50): `--load` streamed requests through the bare proxy,
   then through coatcheck; completed streams per second.

coatcheck is measured twice: `coatcheck` sends `X-Coatcheck-Conversation` (a chat's turns,
one conversation), `coatcheck_new_conversation` sends neither it nor `user` (a conversation,
so a new vault epoch, per request).  Answers are checked
(the client must get the prompt back, values restored) so a fast wrong answer cannot count.

`--baseline DIR` (a checkout of another revision: `git archive REV | tar -x -C DIR`) runs
that revision's `coatcheck serve` too, interleaved with the others, as `baseline`: a
before/after in one run, under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import aiohttp
import httpx
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = (
    "Please look at the order for jane.doe@example.com, paid with card 4111 1111 1111 1111. "
    + "The parcel was left at the door and nobody signed for it; the customer asks for a "
    "replacement and a note to the courier about where to leave parcels in future. " * 6
)[:1000]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the other processes ------------------------------------------------------------------


def serve_fake(port: int) -> None:
    from tests.llm.fake_upstream import FakeUpstream

    web.run_app(FakeUpstream(piece=4, usage=False).app(), host="127.0.0.1", port=port, print=None)


def proxy_app(upstream: str) -> web.Application:
    """A bare streaming proxy: the request body up as it came, the answer down as it comes."""

    async def start(app: web.Application) -> None:
        app["http"] = aiohttp.ClientSession()

    async def stop(app: web.Application) -> None:
        await app["http"].close()

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        session: aiohttp.ClientSession = request.app["http"]
        headers = {"Content-Type": "application/json"}
        async with session.post(upstream + "/chat/completions", data=body, headers=headers) as up:
            response = web.StreamResponse(
                status=up.status, headers={"Content-Type": up.headers["Content-Type"]}
            )
            await response.prepare(request)
            async for chunk in up.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application()
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_post("/v1/chat/completions", chat)
    return app


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited ({proc.returncode})")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not start")


@contextmanager
def process(
    args: list[str], url: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd
    )
    try:
        _wait(url, proc)
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)


# -- the client ---------------------------------------------------------------------------


def _content(line: bytes) -> str:
    if not line.startswith(b"data: {"):
        return ""
    chunk = json.loads(line[6:])
    return "".join(c.get("delta", {}).get("content") or "" for c in chunk.get("choices", ()))


async def one(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[float, float]:
    """(ms to the first content, ms to the end) of one streamed request, checked."""
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
    started = time.perf_counter()
    first = None
    text: list[str] = []
    async with session.post(url, json=body, headers=headers) as response:
        assert response.status == 200, response.status
        async for line in response.content:
            piece = _content(line)
            if piece:
                first = first or time.perf_counter()
                text.append(piece)
    end = time.perf_counter()
    assert "".join(text) == PROMPT, "".join(text)[:200]
    return ((first or end) - started) * 1000, (end - started) * 1000


async def latency(targets: dict[str, tuple[str, dict[str, str]]], n: int) -> dict[str, object]:
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
    async with aiohttp.ClientSession() as session:
        for url, headers in targets.values():  # warm-up
            for _ in range(5):
                await one(session, url, headers)
        for _ in range(n):
            for name, (url, headers) in targets.items():
                rows[name].append(await one(session, url, headers))
    p50 = {
        name: (statistics.median(t for t, _ in v), statistics.median(t for _, t in v))
        for name, v in rows.items()
    }
    return {
        "requests_each": n,
        "ttft_p50_ms": {k: round(v[0], 2) for k, v in p50.items()},
        "total_p50_ms": {k: round(v[1], 2) for k, v in p50.items()},
        "added_ttft_p50_ms": {
            k: round(p50[k][0] - p50["direct"][0], 2) for k in p50 if k != "direct"
        },
        "added_total_p50_ms": {
            k: round(p50[k][1] - p50["direct"][1], 2) for k in p50 if k != "direct"
        },
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cpu_per_request(pid: int, url: str, headers: dict[str, str], n: int) -> float:
    """CPU ms the process `pid` spends per streamed request (load on the host does not
    inflate it as it inflates wall-clock times)."""
    async with aiohttp.ClientSession() as session:
        before = cpu_seconds(pid)
        for _ in range(n):
            await one(session, url, headers)
        return (cpu_seconds(pid) - before) * 1000 / n


async def throughput(url: str, headers: dict[str, str], total: int, connections: int) -> float:
    """Completed streamed answers per second, `connections` at a time."""
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = list(range(total))

        async def worker() -> None:
            while queue:
                queue.pop()
                await one(session, url, headers)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return total / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200, help="per target, 1 connection")
    parser.add_argument("--load", type=int, default=600, help="streams per throughput run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument(
        "--key-cache", type=float, default=10.0, help="COATCHECK_APIKEY_CACHE_SECONDS"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of another revision (`git archive REV | tar -x -C DIR`): its"
        " `coatcheck serve` is measured beside this one, as `baseline`",
    )
    parser.add_argument("--serve-fake", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-proxy", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake(args.serve_fake)
        return
    if args.serve_proxy:
        web.run_app(proxy_app(args.upstream), host="127.0.0.1", port=args.serve_proxy, print=None)
        return
    run(args)


def gateway(
    stack: ExitStack, root: Path, upstream: str, key_cache: float
) -> tuple[int, str, dict[str, str]]:
    """`coatcheck serve` from the tree at `root` on a SQLite file of its own: (pid, the
    chat completions URL, the channel key's header)."""
    from tests.ops.live import CLI, env_for

    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    env = env_for(tmp, COATCHECK_LLM_UPSTREAM_URL=upstream)
    env["PYTHONPATH"] = str(root)
    env["COATCHECK_RATE_LIMIT"] = "1000000"
    # the deployed default (10 s), not the tests' 0 (which makes every request read its
    # key row in a thread hop before anything else; --key-cache 0 measures that)
    env["COATCHECK_APIKEY_CACHE_SECONDS"] = str(key_cache)
    port = _free_port()
    cmd = [*CLI, "serve", "--port", str(port), "--log-level", "warning"]
    served = stack.enter_context(process(cmd, f"http://127.0.0.1:{port}/health", env, root))
    keys = dict(line.split("=", 1) for line in (tmp / "ops.apikeys").read_text().split())
    route = f"http://127.0.0.1:{port}/openai/v1/chat/completions"
    return served.pid, route, {"Authorization": f"Bearer {keys['channel']}"}


def run(args: argparse.Namespace) -> None:
    fake, proxy = _free_port(), _free_port()
    upstream = f"http://127.0.0.1:{fake}/v1"
    me = [sys.executable, __file__]
    with ExitStack() as stack:
        stack.enter_context(
            process([*me, "--serve-fake", str(fake)], f"http://127.0.0.1:{fake}/v1/models")
        )
        bare = stack.enter_context(
            process(
                [*me, "--serve-proxy", str(proxy), "--upstream", upstream],
                f"http://127.0.0.1:{proxy}/",
            )
        )
        pid, route, auth = gateway(stack, ROOT, upstream, args.key_cache)
        targets = {
            "direct": (f"{upstream}/chat/completions", {}),
            "bare_proxy": (f"http://127.0.0.1:{proxy}/v1/chat/completions", {}),
            # a chat's turns: one conversation (the header), its vault epoch open
            "coatcheck": (route, {**auth, "X-Coatcheck-Conversation": "bench"}),
            # no header, no `user`: every request a conversation (and a vault epoch) of its own
            "coatcheck_new_conversation": (route, auth),
        }
        pids = {"bare_proxy": bare.pid, "coatcheck": pid, "coatcheck_new_conversation": pid}
        if args.baseline:  # another revision, the same traffic, the same run
            old_pid, old_route, old_auth = gateway(
                stack, args.baseline.resolve(), upstream, args.key_cache
            )
            targets["baseline"] = (old_route, {**old_auth, "X-Coatcheck-Conversation": "bench"})
            pids["baseline"] = old_pid
        result = asyncio.run(latency(targets, args.requests))
        result["server_cpu_ms_per_request"] = {
            name: round(asyncio.run(cpu_per_request(pids[name], url, h, args.requests)), 2)
            for name, (url, h) in targets.items()
            if name != "direct"
        }
        result["connections"] = args.connections
        result["key_cache_seconds"] = args.key_cache
        result["streams_per_s"] = {
            name: round(asyncio.run(throughput(url, h, args.load, args.connections)), 1)
            for name, (url, h) in targets.items()
            if name != "direct"
        }
        result["prompt_chars"] = len(PROMPT)
        result["cpus"] = os.cpu_count()
        if args.baseline:
            result["baseline"] = str(args.baseline)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
