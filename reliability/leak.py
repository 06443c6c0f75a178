"""Leak audit at scale through the real stack: coatcheck -> real Rasa 3.6 (+ its action
server), thousands of unique canaries of every global type over many conversations.

    PYTHONPATH=$PWD python -m reliability.leak --conversations 250

Starts on loopback (free ports, temp dir, every process in its own session, stopped at the
end): `coatcheck serve` (DEBUG log, SQLite), the example bot's action server with
`reliability/leak_actions.py`, and `rasa run` (SQL tracker store in SQLite, telemetry off)
after training the example bot plus a `shapes` intent whose rule runs
`action_reveal_shapes`. Each conversation says two free-text messages carrying one canary of
each of the six types (email, phone, card, SSN, IBAN, IP); the second starts with "shapes",
so that action opts in to its email and phone and hands them back in every dispatcher
argument and slot shape (re-tokenized into references by coatcheck.actions;
`shapes_revealed` in the tracker counts what it was given). Then every byte at rest is
searched for every canary in raw, compact and digits-only form: Rasa's tracker store (each
table's rows and the raw file bytes with journal/WAL), coatcheck's database (rows, incl.
audit, and raw bytes), coatcheck's history API, coatcheck's DEBUG log, Rasa's log and
output, the action server's log, the exported records (a JSONL export sink and a loopback
webhook sink, the export config set to deny nothing; odd conversations are exported when
they end, even ones by the admin export route); plus every other file in the work dir.
Non-vacuity: a control canary sent straight to Rasa (around coatcheck) must be found in the
tracker; the tracker, the history and the exports must hold references of every type, one
record per conversation at each sink, every conversation ran the shapes action with both
values, and its `name=` template variable reached Rasa's reply as a reference. The Rasa venv
is `${COATCHECK_RASA_VENV:-~/.cache/coatcheck/rasa-3.6.21}` (built by e2e/run.sh; this
script does not build it). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from coatcheck.middleware.render import parse_references
from reliability.harness import (
    TYPES,
    Canaries,
    Cluster,
    exit_on_term,
    free_port,
    read_all,
    scan,
    scan_hits,
)

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "examples" / "rasa_bot"
RASA_VENV = Path(
    os.environ.get("COATCHECK_RASA_VENV", Path.home() / ".cache/coatcheck/rasa-3.6.21")
)
E2E_CONFIG = (ROOT / "e2e" / "coatcheck.yml").read_text()
SHAPES_TYPES = ["EMAIL_ADDRESS", "PHONE_NUMBER"]  # what action_reveal_shapes opts in to
# The bot additions for action_reveal_shapes (reliability/leak_actions.py).
SHAPES_DOMAIN: dict[str, Any] = {
    "version": "3.1",
    "intents": ["shapes"],
    "slots": {
        name: {"type": "any", "influence_conversation": False, "mappings": [{"type": "custom"}]}
        for name in ("shapes_copy", "shapes_contact", "shapes_raw", "shapes_revealed")
    },
    "responses": {"utter_shapes_receipt": [{"text": "Receipt for {name}."}]},
    "actions": ["action_reveal_shapes"],
}
SHAPES_DATA: dict[str, Any] = {
    "version": "3.1",
    "nlu": [{"intent": "shapes", "examples": "- shapes\n"}],
    "rules": [
        {
            "rule": "hand revealed values back in every shape",
            "steps": [{"intent": "shapes"}, {"action": "action_reveal_shapes"}],
        }
    ],
}
SHAPES_RAN = re.compile(r'"name": "shapes_revealed", "value": 2\b')


@contextlib.contextmanager
def process(cmd: list[str], log: Path, **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, **kwargs,
        )  # fmt: skip
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def wait_http(url: str, proc: subprocess.Popen[bytes], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 400:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{url}: not ready after {limit}s")


@contextlib.contextmanager
def webhook_receiver(out: Path) -> Iterator[str]:
    """A loopback export webhook: appends each body it is sent to `out`; yields its URL."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock, out.open("ab") as f:
                f.write(body.replace(b"\n", b" ") + b"\n")
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/collect"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def sqlite_rows(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def run(conversations: int, threads: int, seed: int) -> dict[str, Any]:
    rasa = RASA_VENV / "bin" / "rasa"
    if not rasa.exists():
        raise SystemExit(f"no Rasa venv at {RASA_VENV} (e2e/run.sh builds it)")
    with tempfile.TemporaryDirectory(prefix="cc_leak_") as tmp:
        work = Path(tmp)
        rasa_port, actions_port = free_port(), free_port()
        (work / "endpoints.yml").write_text(
            f'action_endpoint:\n  url: "http://127.0.0.1:{actions_port}/webhook"\n'
            f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{work}/tracker.db"\n'
        )
        receiver = contextlib.ExitStack()
        hook_url = receiver.enter_context(webhook_receiver(work / "webhook.jsonl"))
        config = yaml.safe_load(E2E_CONFIG)
        config["actions"]["action_reliability_check"] = TYPES
        config["actions"]["action_reveal_shapes"] = SHAPES_TYPES
        hook = {"webhook": hook_url, "allow_private_network": True}  # a loopback receiver
        config["export"] = {"sinks": [{"jsonl": str(work / "export.jsonl")}, hook]}
        (work / "coatcheck.yml").write_text(yaml.safe_dump(config))
        domain, data = bot_with_shapes(work)
        renv = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
        t0 = time.monotonic()
        subprocess.run(
            [str(rasa), "train", "--config", str(BOT / "config.yml"), "--domain", str(domain),
             "--data", str(BOT / "data"), str(data), "--out", str(work / "models"),
             "--fixed-model-name", "bot"],
            cwd=work, env=renv, stdout=(work / "train.log").open("wb"), stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, timeout=600, check=True,
        )  # fmt: skip
        cluster = Cluster(
            workdir=work,
            database_url=f"sqlite:///{work}/coatcheck.db",
            bot_url=f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook",
            workers=1,
            log_level="debug",
        )
        try:
            cluster.start()
            aenv = {
                **cluster.env(),
                "SANIC_HOST": "127.0.0.1",
                "COATCHECK_URL": cluster.url,
                "COATCHECK_ACTION_KEY": cluster.keys["action-server"],
                "PYTHONPATH": f"{BOT}{os.pathsep}{cluster.env()['PYTHONPATH']}",
            }
            with (
                process(
                    [sys.executable, "-m", "rasa_sdk", "--actions", "reliability.leak_actions",
                     "-p", str(actions_port)],
                    work / "actions.log", cwd=BOT, env=aenv,
                ) as actions,
                process(
                    [str(rasa), "run", "--model", str(work / "models" / "bot.tar.gz"),
                     "--endpoints", str(work / "endpoints.yml"), "--credentials",
                     str(BOT / "credentials.yml"), "--interface", "127.0.0.1", "--port",
                     str(rasa_port), "--log-file", str(work / "rasa.log")],
                    work / "rasa.out", cwd=work, env=renv,
                ) as rasa_proc,
            ):  # fmt: skip
                wait_http(f"http://127.0.0.1:{actions_port}/health", actions, 60)
                wait_http(f"http://127.0.0.1:{rasa_port}/", rasa_proc, 240)
                setup_s = time.monotonic() - t0
                figures = drive_and_scan(cluster, work, rasa_port, conversations, threads, seed)
                figures["setup_seconds"] = round(setup_s, 1)
        finally:
            cluster.stop()
            receiver.close()
        # after every process stopped: the files as they rest
        return final_scan(work, figures)


def bot_with_shapes(work: Path) -> tuple[Path, Path]:
    """The example bot's domain plus the shapes additions (a domain folder), and their data."""
    domain, data = work / "domain", work / "shapes_data"
    domain.mkdir()
    data.mkdir()
    shutil.copy(BOT / "domain.yml", domain / "domain.yml")
    (domain / "shapes.yml").write_text(yaml.safe_dump(SHAPES_DOMAIN, sort_keys=False))
    (data / "shapes.yml").write_text(yaml.safe_dump(SHAPES_DATA, sort_keys=False))
    return domain, data


def drive_and_scan(cluster: Cluster, work: Path, rasa_port: int, conversations: int,
                   threads: int, seed: int) -> dict[str, Any]:  # fmt: skip
    canaries = Canaries(seed=seed)
    admin = {"Authorization": f"Bearer {cluster.keys['admin']}"}
    whole = {"type": "deny", "fields": []}  # deny nothing: whole records, every turn
    set_export = httpx.put(
        f"{cluster.url}/v1/config/export-redaction", json=whole, headers=admin, timeout=60
    )
    set_export.raise_for_status()
    plans = []
    for i in range(conversations):
        v = canaries.make(i)
        plans.append((
            f"leak{canaries.tag}-{i}",
            [f"my card is {v['CREDIT_CARD']} and my ssn is {v['US_SSN']}",
             f"shapes: write to {v['EMAIL_ADDRESS']} or call {v['PHONE_NUMBER']}, iban "
             f"{v['IBAN_CODE']}, I am at {v['IP_ADDRESS']}"],
        ))  # fmt: skip
    headers = {"Authorization": f"Bearer {cluster.keys['channel']}"}

    def converse(plan: tuple[str, list[str]]) -> list[int]:
        sender, texts = plan
        with httpx.Client(headers=headers, timeout=60) as client:
            return [
                client.post(
                    f"{cluster.url}/webhooks/rest/webhook", json={"sender": sender, "message": t}
                ).status_code
                for t in texts
            ]

    t0 = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        statuses = [s for ss in pool.map(converse, plans) for s in ss]
    drive_s = time.monotonic() - t0
    with httpx.Client(headers=admin, timeout=60) as client:
        history = json.dumps(
            [client.get(f"{cluster.url}/v1/conversations/{p[0]}/history").json() for p in plans]
        )
    # audited reads at rest too: reveal every reference with a grant, then end (shred and
    # export) every second conversation and export the others while active
    reveals, exported = reveal_and_end(cluster, [p[0] for p in plans], history)
    control = f"control.{canaries.tag}@example.org"
    httpx.post(
        f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook",
        json={"sender": f"leak{canaries.tag}-control", "message": f"hi {control}"},
        timeout=60,
    )
    return {
        "conversations": conversations,
        "messages": len(statuses),
        "messages_2xx": statuses.count(200),
        "drive_seconds": round(drive_s, 1),
        "canaries_planted": len(canaries.planted),
        "_planted": canaries.planted,
        "_control": control,
        "found_history": len(scan(history, canaries.planted)),
        "reveals_ok": reveals,
        "exports_by_route_2xx": exported,
        "history_refs_all_types": all(f"CC_{t}_" in history for t in TYPES),
    }


def reveal_and_end(cluster: Cluster, senders: list[str], history: str) -> tuple[int, int]:
    refs = dict(zip(senders, [set() for _ in senders], strict=True))
    for item in json.loads(history):
        for message in item["messages"]:
            for ref in parse_references(message["text"]):
                refs[item["conversation_id"]].add(ref.reference)
    ok = exported = 0
    action = {"Authorization": f"Bearer {cluster.keys['action-server']}"}
    admin = {"Authorization": f"Bearer {cluster.keys['admin']}"}
    with httpx.Client(timeout=60) as client:
        for i, sender in enumerate(senders):
            grant = client.post(
                f"{cluster.url}/v1/grants",
                json={"conversation_id": sender, "entity_types": TYPES, "purpose": "leak audit",
                      "action": "action_reliability_check"},
                headers=action,
            ).json()["grant"]  # fmt: skip
            for ref in sorted(refs[sender]):
                r = client.post(
                    f"{cluster.url}/v1/reveal",
                    json={"conversation_id": sender, "ref": ref, "grant": grant},
                    headers=action,
                )
                ok += r.status_code == 200
            if i % 2:
                client.post(f"{cluster.url}/v1/conversations/{sender}/end", headers=admin)
            else:
                r = client.post(f"{cluster.url}/v1/conversations/{sender}/export", headers=admin)
                exported += r.status_code == 200
    return ok, exported


def final_scan(work: Path, figures: dict[str, Any]) -> dict[str, Any]:
    planted: list[str] = figures.pop("_planted")
    control: str = figures.pop("_control")
    tracker = sqlite_rows(work / "tracker.db")
    coatcheck_rows = sqlite_rows(work / "coatcheck.db")
    contexts: list[str] = []
    found: dict[str, int] = {}
    everywhere: set[str] = set()
    for name, rows in (("tracker_rows", tracker), ("coatcheck_rows", coatcheck_rows)):
        hits = scan_hits(rows, planted)
        found[name] = len(hits)
        everywhere.update(hits)
        contexts.extend(f"{name}: {ctx!r}" for ctx in hits.values())
    files = sorted(p for p in work.rglob("*") if p.is_file())
    for path in files:
        hits = scan_hits(read_all(path), planted)
        everywhere.update(hits)
        if hits:
            found[str(path.relative_to(work))] = len(hits)
            contexts.extend(f"{path.name}: {ctx!r}" for ctx in hits.values())
    logs = {n: (work / n).stat().st_size for n in ("coatcheck.log", "rasa.log", "actions.log")}
    exports = {n: read_all(work / n) for n in ("export.jsonl", "webhook.jsonl")}
    for name, text in exports.items():
        found[name] = len(scan_hits(text, planted))  # also in the file loop; named here
        figures[f"records_{name}"] = len(text.splitlines())
    figures["export_refs_all_types"] = all(
        f"CC_{t}_" in text for text in exports.values() for t in TYPES
    )
    figures.update(
        {
            "files_scanned": len(files),
            "bytes_scanned": sum(p.stat().st_size for p in files),
            "log_bytes": logs,
            "found": found,
            "hit_contexts": contexts[:10],
            "canaries_found": len(everywhere) + figures["found_history"],
            "control_in_tracker": control in tracker,
            "tracker_refs_all_types": all(f"CC_{t}_" in tracker for t in TYPES),
            "shapes_runs_with_values": len(SHAPES_RAN.findall(tracker)),
            "shapes_template_refs": tracker.count("Receipt for CC_EMAIL_ADDRESS_"),
            "audit_rows_in_db": coatcheck_rows.count('INSERT INTO "audit_log"'),
        }
    )
    figures["ok"] = (
        figures["canaries_found"] == 0
        and not any(found.values())
        and figures["messages_2xx"] == figures["messages"]
        and figures["reveals_ok"] == figures["canaries_planted"]
        and figures["audit_rows_in_db"] >= figures["canaries_planted"]
        and figures["control_in_tracker"]
        and figures["tracker_refs_all_types"]
        and figures["shapes_runs_with_values"] == figures["conversations"]
        and figures["shapes_template_refs"] >= figures["conversations"]
        and figures["history_refs_all_types"]
        and figures["export_refs_all_types"]
        and figures["exports_by_route_2xx"] == (figures["conversations"] + 1) // 2
        and figures["records_export.jsonl"] == figures["conversations"]
        and figures["records_webhook.jsonl"] == figures["conversations"]
        and all(size > 0 for size in logs.values())
    )
    return figures


def main() -> None:
    exit_on_term()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=250)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=11)
    a = parser.parse_args()
    figures = run(a.conversations, a.threads, a.seed)
    print(json.dumps(figures))
    sys.exit(0 if figures["ok"] else 1)


if __name__ == "__main__":
    main()
