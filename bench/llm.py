"""Added latency of the LLM core (skeleton): time to first token and total, through the core
vs the same fake provider called directly, interleaved in one run.

    PYTHONPATH=$PWD python bench/llm.py --requests 200

The core is hosted by tests/llm/core_server.py (in-memory vault, real detector) until the
route exists; the 50-connection throughput beside a bare aiohttp streaming proxy comes with
the route (docs/llm.md, "Performance").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time

import aiohttp

from tests.harness import threaded
from tests.llm.core_server import build_app
from tests.llm.fake_upstream import FakeUpstream

_CONTENT = re.compile(rb'"content": ?"[^"]')
PROMPT = ("Please look at the order for jane.doe@example.com, card 4111 1111 1111 1111. " * 13)[
    :1000
]


async def one(session: aiohttp.ClientSession, url: str) -> tuple[float, float]:
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
    started = time.perf_counter()
    first = None
    async with session.post(url, json=body) as response:
        async for line in response.content:
            if (
                first is None
                and line.startswith(b"data: {")
                and b'"content":"' in line
                and b'"content":""' not in line
            ):
                first = time.perf_counter()
    end = time.perf_counter()
    return ((first or end) - started) * 1000, (end - started) * 1000


async def run(direct: str, core: str, n: int) -> None:
    rows: dict[str, list[tuple[float, float]]] = {"direct": [], "core": []}
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            rows["direct"].append(await one(session, direct))
            rows["core"].append(await one(session, core))
    p50 = {
        k: (statistics.median(t for t, _ in v), statistics.median(t for _, t in v))
        for k, v in rows.items()
    }
    print(
        json.dumps(
            {
                "ttft_p50_ms": {k: round(v[0], 3) for k, v in p50.items()},
                "total_p50_ms": {k: round(v[1], 3) for k, v in p50.items()},
                "added_ttft_p50_ms": round(p50["core"][0] - p50["direct"][0], 3),
                "added_total_p50_ms": round(p50["core"][1] - p50["direct"][1], 3),
            },
            indent=1,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    fake = FakeUpstream(piece=4, usage=False)
    with threaded(fake.app()) as upstream, threaded(build_app(upstream + "/v1")) as core:
        asyncio.run(
            run(upstream + "/v1/chat/completions", core + "/v1/chat/completions", args.requests)
        )


if __name__ == "__main__":
    main()
