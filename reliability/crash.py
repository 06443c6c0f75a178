"""Crash safety: kill -9 a uvicorn worker at random moments under load, then check.

    PYTHONPATH=$PWD python -m reliability.crash --pg postgresql://postgres@127.0.0.1:5432/test \
        --messages 600 --kills 10

Two workers (`coatcheck serve --workers 2`, DEBUG logs) on a PostgreSQL database of their
own (created and dropped here), a stub bot on loopback, client threads sending unique
canaries of every type. A killer thread SIGKILLs a random worker N times (uvicorn's
supervisor starts a new one). Afterwards: every message the client got a 2xx for is in
history; every reference forwarded to the bot reveals (with a grant) to a value planted in
that conversation; no canary in any form in `pg_dump` of the database or in the log;
`coatcheck audit verify` passes. Exit 1 on any failure; prints one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from reliability.harness import (
    Canaries,
    Cluster,
    exit_on_term,
    pg_database,
    pg_dump,
    read_all,
    running_bot,
    running_cluster,
    scan,
)
from reliability.load import (
    Load,
    check_history,
    forwarded_refs,
    planted_by_conversation,
    reveal_all,
)


def _killer(cluster: Cluster, kills: int, rng: random.Random, busy: threading.Event,
            record: list[dict[str, Any]]) -> None:  # fmt: skip
    try:
        _kill_loop(cluster, kills, rng, record)
    finally:
        busy.clear()


def _kill_loop(cluster: Cluster, kills: int, rng: random.Random,
               record: list[dict[str, Any]]) -> None:  # fmt: skip
    for _ in range(kills):
        time.sleep(rng.uniform(0.2, 1.0))
        pids = cluster.worker_pids()
        if not pids:
            continue
        victim = rng.choice(pids)
        os.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:  # bounded: wait for the supervisor's new worker
            now = cluster.worker_pids()
            if victim not in now and len(now) >= cluster.workers:
                break
            time.sleep(0.1)
        record.append({"pid": victim, "restart_s": round(time.monotonic() - t0, 2)})


def run(server_url: str, messages: int, kills: int, threads: int, conversations: int,
        seed: int) -> dict[str, Any]:  # fmt: skip
    rng = random.Random(seed)
    with (
        tempfile.TemporaryDirectory(prefix="cc_crash_") as tmp,
        pg_database(server_url) as db_url,
        running_bot() as bot,
        running_cluster(workdir=Path(tmp), database_url=db_url, bot_url=bot.url) as cluster,
    ):
        canaries = Canaries(seed=seed)
        load = Load(cluster, canaries, conversations, prefix=f"crash{canaries.tag}")
        busy = threading.Event()  # set while the killer works: the load keeps going
        busy.set()
        killed: list[dict[str, Any]] = []
        killer = threading.Thread(target=_killer, args=(cluster, kills, rng, busy, killed))
        killer.start()
        t0 = time.monotonic()
        load.run(messages, threads, keep_going=busy)
        elapsed = time.monotonic() - t0
        killer.join(120)
        missing = check_history(cluster, load.sent)
        refs = forwarded_refs(bot)
        revealed, failed = reveal_all(cluster, refs, planted_by_conversation(cluster, load.sent))
        audit = cluster.cli("audit", "verify", check=False)
        dump = pg_dump(db_url)
        cluster.stop()
        log = read_all(cluster.log_path)
        found_db = scan(dump, canaries.planted)
        found_log = scan(log, canaries.planted)
        ok_count = sum(1 for s in load.sent if 200 <= s.status < 300)
        markers = sum(1 for s in load.sent if 200 <= s.status < 300 and s.marker in dump)
        echoed = [s.seq for s in load.sent if scan(s.body, list(s.values.values()))]
        figures = {
            "messages": len(load.sent),
            "ok_2xx": ok_count,
            "dropped_or_error": len(load.sent) - ok_count,
            "statuses": sorted({s.status for s in load.sent}),
            "kills": len(killed),
            "restart_s_max": max((k["restart_s"] for k in killed), default=None),
            "load_seconds": round(elapsed, 1),
            "missing_from_history": len(missing),
            "refs_forwarded": sum(len(v) for v in refs.values()),
            "refs_revealed": revealed,
            "refs_failed": len(failed),
            "canaries_planted": len(canaries.planted),
            "canaries_found_db": len(found_db),
            "canaries_found_log": len(found_log),
            "raw_in_replies": len(echoed),
            "ok_markers_in_dump": markers,
            "dump_bytes": len(dump),
            "log_bytes": len(log),
            "audit_verify": audit.stdout.strip() or audit.stderr.strip(),
            "audit_ok": audit.returncode == 0,
        }
        figures["ok"] = (
            figures["kills"] == kills
            and not missing
            and not failed
            and revealed > 0
            and not found_db
            and not found_log
            and not echoed
            and audit.returncode == 0
            and ok_count > 0
            and markers == ok_count  # the scan saw the history: it is not vacuous
            and len(log) > 0
        )
        return figures


def main() -> None:
    exit_on_term()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    a = parser.parse_args()
    figures = run(a.pg, a.messages, a.kills, a.threads, a.conversations, a.seed)
    print(json.dumps(figures))
    sys.exit(0 if figures["ok"] else 1)


if __name__ == "__main__":
    main()
