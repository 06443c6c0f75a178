"""Fail closed: PostgreSQL stopped mid-load, then started again.

    PYTHONPATH=$PWD python -m reliability.failclosed --down 4

A throwaway PostgreSQL cluster of its own (initdb as `postgres`, free port, removed at the
end), `coatcheck serve --workers 2` on it, a stub bot on loopback, client threads sending
unique canaries. Mid-load the cluster is stopped (`pg_ctl -m fast stop`) for `--down`
seconds, then started again; the service is not restarted. Promises checked:
- every message answered while the database was down got 503, and the bot received none
  of them; no canary in any form in anything the bot ever received;
- `/health` says 503 while down;
- the service recovers by itself: the same processes answer 200 again within the bound.
Prints one JSON line; exit 1 when a promise fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from reliability.harness import (
    Canaries,
    exit_on_term,
    own_cluster,
    running_bot,
    running_cluster,
    scan,
)
from reliability.load import Load


def run(down: float, threads: int, recover_within: float) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="cc_failclosed_") as tmp,
        own_cluster() as pg,
        running_bot() as bot,
        running_cluster(
            workdir=Path(tmp), database_url=pg.url, bot_url=bot.url, workers=2,
            log_level="warning",
        ) as cluster,
    ):  # fmt: skip
        assert cluster.proc is not None
        supervisor, workers_before = cluster.proc.pid, sorted(cluster.worker_pids())
        canaries = Canaries(seed=3)
        load = Load(cluster, canaries, conversations=10, prefix=f"fc{canaries.tag}")
        busy = threading.Event()
        busy.set()
        loader = threading.Thread(target=load.run, args=(0, threads, busy, 50_000))
        loader.start()
        time.sleep(2.0)
        up_count = len(load.sent)
        pg.stop("fast")
        t_down = time.monotonic()
        bot_at_down = len(bot.received)
        mark_down = len(load.sent)
        health_down = []
        while time.monotonic() - t_down < down:
            try:
                health_down.append(httpx.get(f"{cluster.url}/health", timeout=5).status_code)
            except httpx.HTTPError:
                health_down.append(0)
            time.sleep(0.5)
        mark_up = len(load.sent)
        bot_before_start = len(bot.received)
        pg.start()
        t_up = time.monotonic()
        recovered_after = None
        while time.monotonic() - t_up < recover_within:
            recent = load.sent[-5:]
            if len(load.sent) > mark_up + 5 and all(s.status == 200 for s in recent):
                recovered_after = round(time.monotonic() - t_up, 2)
                break
            time.sleep(0.1)
        time.sleep(1.0)
        busy.clear()
        loader.join(120)
        down_window = load.sent[mark_down + threads : mark_up]  # skip requests in flight at stop
        statuses_down = sorted({s.status for s in down_window})
        forwarded_text = json.dumps(bot.received)
        down_markers = [s.marker for s in down_window if s.marker in forwarded_text]
        raw_at_bot = scan(forwarded_text, canaries.planted)
        after = load.sent[-20:]
        figures = {
            "messages": len(load.sent),
            "before_stop": up_count,
            "answered_while_down": len(down_window),
            "statuses_while_down": statuses_down,
            "down_503": sum(1 for s in down_window if s.status == 503),
            "bot_payloads_while_down": bot_before_start - bot_at_down,
            "down_messages_at_bot": len(down_markers),
            "canaries_planted": len(canaries.planted),
            "canaries_at_bot": len(raw_at_bot),
            "health_while_down": sorted(set(health_down)),
            "recovered_after_s": recovered_after,
            "last_20_statuses": sorted({s.status for s in after}),
            "same_processes": cluster.proc.pid == supervisor
            and sorted(cluster.worker_pids()) == workers_before,
        }
        figures["ok"] = (
            len(down_window) > 0
            and statuses_down == [503]
            and not down_markers
            and not raw_at_bot
            and bot_before_start - bot_at_down <= threads  # only requests already in flight
            and set(health_down) == {503}
            and recovered_after is not None
            and figures["last_20_statuses"] == [200]
            and figures["same_processes"]
            and up_count > 0
        )
        return figures


def main() -> None:
    exit_on_term()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--down", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--recover-within", type=float, default=30.0)
    a = parser.parse_args()
    figures = run(a.down, a.threads, a.recover_within)
    print(json.dumps(figures))
    sys.exit(0 if figures["ok"] else 1)


if __name__ == "__main__":
    main()
