"""Scale-out and key rotation under load, on one PostgreSQL.

    PYTHONPATH=$PWD python -m reliability.scale --pg postgresql://postgres@127.0.0.1:5432/test

1. Throughput: `coatcheck serve --workers 1` and `--workers 2` (fresh database each, logs at
   WARNING), client threads sending messages that each carry six unique values; rounds
   interleaved (1, 2, 1, 2...) because the machine is shared. Reported: 2xx messages/s.
2. One value, one reference: with 2 workers, the same e-mail in one conversation sent by
   many concurrent clients (new connection each); every reference the bot received for it
   must be the same. Each worker's CPU time is read from /proc to show both served.
3. Rotation under load: with 2 workers, messages keep flowing and a revealer keeps revealing
   forwarded references (grant + reveal) while `coatcheck keys rotate` runs K times.
   Goal: 0 failed reveals, 0 failed messages.
Prints one JSON line; exit 1 when a promise fails.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from reliability.harness import (
    ACTION,
    TYPES,
    Canaries,
    Cluster,
    RecordingBot,
    exit_on_term,
    pg_database,
    running_bot,
    running_cluster,
)
from reliability.load import Load, forwarded_refs


@contextmanager
def service(
    server_url: str, workers: int, log_level: str = "warning"
) -> Iterator[tuple[Cluster, RecordingBot]]:
    with (
        tempfile.TemporaryDirectory(prefix="cc_scale_") as tmp,
        pg_database(server_url) as db_url,
        running_bot() as bot,
        running_cluster(
            workdir=Path(tmp), database_url=db_url, bot_url=bot.url, workers=workers,
            log_level=log_level,
        ) as cluster,
    ):  # fmt: skip
        yield cluster, bot


def throughput(server_url: str, workers: int, messages: int, threads: int) -> dict[str, Any]:
    with service(server_url, workers) as (cluster, _bot):
        canaries = Canaries(seed=workers)
        load = Load(cluster, canaries, conversations=50, prefix=f"tp{canaries.tag}")
        load.run(min(20, messages), threads)  # warm-up (imports, pools), not counted
        warm = len(load.sent)
        t0 = time.monotonic()
        load.run(messages + warm, threads)
        elapsed = time.monotonic() - t0
        measured = load.sent[warm:]
        ok = sum(1 for s in measured if s.status == 200)
        return {"workers": workers, "ok": ok, "sent": len(measured),
                "seconds": round(elapsed, 2), "msg_per_s": round(ok / elapsed, 1)}  # fmt: skip


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def one_reference(server_url: str, sends: int) -> dict[str, Any]:
    with service(server_url, 2) as (cluster, bot):
        pids = cluster.worker_pids()
        before = {pid: _cpu_ticks(pid) for pid in pids}
        value = f"same.value.{random.randrange(10**9)}@example.org"
        headers = {"Authorization": f"Bearer {cluster.keys['channel']}"}

        def send(i: int) -> int:
            with httpx.Client(headers=headers, timeout=30) as client:  # a new connection
                return client.post(
                    f"{cluster.url}/webhooks/rest/webhook",
                    json={"sender": "same-conv", "message": f"n{i} write to {value}"},
                ).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(send, range(sends)))
        after = {pid: _cpu_ticks(pid) for pid in pids}
        refs = forwarded_refs(bot).get(cluster.pseudonym("same-conv"), set())
        return {
            "sends": sends,
            "ok": statuses.count(200),
            "distinct_refs": len(refs),
            "worker_cpu_ticks": [after[p] - before[p] for p in pids],
        }


def rotation(server_url: str, rotations: int, threads: int) -> dict[str, Any]:
    with service(server_url, 2) as (cluster, bot):
        canaries = Canaries(seed=99)
        load = Load(cluster, canaries, conversations=20, prefix=f"rot{canaries.tag}")
        load.run(40, threads)  # something to reveal from the start
        busy = threading.Event()
        busy.set()
        reveals: list[int] = []
        wrong: list[str] = []
        errors: list[str] = []

        def revealer() -> None:
            headers = {"Authorization": f"Bearer {cluster.keys['action-server']}"}
            rng = random.Random(5)
            with httpx.Client(headers=headers, timeout=30) as client:
                while busy.is_set():
                    refs = forwarded_refs(bot)
                    with load.lock:
                        planned = {c: set(v) for c, v in load.planned.items()}
                    planted = {cluster.pseudonym(c): v for c, v in planned.items()}
                    conv = rng.choice(sorted(refs))
                    g = client.post(
                        f"{cluster.url}/v1/grants",
                        json={"conversation_id": conv, "entity_types": TYPES,
                              "purpose": "rotation", "action": ACTION},
                    )  # fmt: skip
                    if g.status_code != 200:
                        reveals.append(g.status_code)
                        errors.append(f"grant {g.status_code} {g.text[:80]}")
                        continue
                    for ref in rng.sample(sorted(refs[conv]), min(6, len(refs[conv]))):
                        r = client.post(
                            f"{cluster.url}/v1/reveal",
                            json={"conversation_id": conv, "ref": ref, "grant": g.json()["grant"]},
                        )
                        reveals.append(r.status_code)
                        if r.status_code != 200:
                            errors.append(f"reveal {r.status_code} {r.text[:80]}")
                        if r.status_code == 200:
                            got = r.json()["value"].replace(" ", "").lower()
                            if got not in planted.get(conv, set()):
                                wrong.append(ref)

        before = len(load.sent)
        rev = threading.Thread(target=revealer)
        loader = threading.Thread(target=load.run, args=(0, threads, busy, 100_000))
        rev.start()
        loader.start()
        outputs = []
        for _ in range(rotations):
            time.sleep(1.0)
            outputs.append(cluster.cli("keys", "rotate", "--actor", "reliability").stdout.strip())
        time.sleep(1.0)
        busy.clear()
        loader.join(120)
        rev.join(120)
        during = load.sent[before:]
        audit = cluster.cli("audit", "verify", check=False)
        return {
            "rotations": len(outputs),
            "last_rotation": outputs[-1] if outputs else None,
            "messages_during": len(during),
            "messages_failed": sum(1 for s in during if s.status != 200),
            "reveals": len(reveals),
            "reveals_failed": sum(1 for s in reveals if s != 200) + len(wrong),
            "failures": sorted(set(errors))[:10],
            "wrong_values": len(wrong),
            "audit_ok": audit.returncode == 0,
        }


def main() -> None:
    exit_on_term()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rotations", type=int, default=3)
    parser.add_argument("--same-value-sends", type=int, default=40)
    parser.add_argument("--only-rotation", action="store_true")
    a = parser.parse_args()
    if a.only_rotation:
        rot = rotation(a.pg, a.rotations, a.threads // 2 or 1)
        print(json.dumps(rot))
        sys.exit(0 if rot["reveals"] > 0 and rot["reveals_failed"] == 0 else 1)
    rounds = [throughput(a.pg, w, a.messages, a.threads) for _ in range(a.rounds) for w in (1, 2)]
    best = {w: max(r["msg_per_s"] for r in rounds if r["workers"] == w) for w in (1, 2)}
    same = one_reference(a.pg, a.same_value_sends)
    rot = rotation(a.pg, a.rotations, a.threads // 2 or 1)
    figures = {
        "throughput_rounds": rounds,
        "best_msg_per_s": best,
        "ratio_2_over_1": round(best[2] / best[1], 2),
        "one_reference": same,
        "rotation": rot,
    }
    figures["ok"] = (
        same["distinct_refs"] == 1
        and same["ok"] == same["sends"]
        and all(t > 0 for t in same["worker_cpu_ticks"])
        and rot["reveals"] > 0
        and rot["reveals_failed"] == 0
        and rot["messages_failed"] == 0
        and rot["audit_ok"]
    )
    print(json.dumps(figures))
    sys.exit(0 if figures["ok"] else 1)


if __name__ == "__main__":
    main()
