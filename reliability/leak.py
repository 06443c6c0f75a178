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

Issue 14 (findings 6 and 7): every conversation's sender is a phone number as an
SMS/WhatsApp channel sends it (`+1628...`, planted as a canary in all its forms: the bot
must only ever see its pseudonym, the replies must go back to it), and with `--bot stub`
(no Rasa needed) a loopback stub bot answers each conversation's first message with a
CRM-style reply carrying six more canaries of its own, in its text, a button's title and
payload, a quick reply, a `custom` payload and an attachment: none may reach coatcheck's
database, log, history API or exports.  The stub bot's own record of what it was sent is
scanned too (the senders and user canaries must not be in it).
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
PSEUDONYM = re.compile(r"^p_[a-z2-7]{26}$")
SHAPES_RAN = re.compile(r'"name": "shapes_revealed", "value": 2\b')
MARK = re.compile(r"\bconversation (\d+)\b")  # how the stub bot knows which CRM row to send


def phone_sender(seed: int, i: int) -> str:
    """An E.164 sender id as a WhatsApp-style channel sends it, unique per conversation."""
    return f"+1628{(seed * 7919 + i // 10000) % 800 + 200:03d}{i % 10000:04d}"


def crm_reply(v: dict[str, str]) -> list[dict[str, Any]]:
    """A bot that writes what its CRM holds into every field a Rasa reply has."""
    return [
        {"text": f"On file: {v['EMAIL_ADDRESS']}, {v['PHONE_NUMBER']}"},
        {
            "text": "Which card?",
            "buttons": [
                {"title": f"card {v['CREDIT_CARD']}", "payload": f'/pay{{"ssn": "{v["US_SSN"]}"}}'}
            ],
            "quick_replies": [{"title": v["IBAN_CODE"], "payload": "/iban"}],
        },
        {"custom": {"account": {"iban": v["IBAN_CODE"], "login_ip": v["IP_ADDRESS"]}}},
        {
            "attachment": {
                "type": "file",
                "payload": {"src": f"https://crm.example/{v['EMAIL_ADDRESS']}"},
            }
        },
    ]


@contextlib.contextmanager
def stub_bot(replies: dict[int, dict[str, str]], received: list[bytes]) -> Iterator[str]:
    """A loopback Rasa-REST bot: records each body, answers `crm_reply` to a message that
    names its conversation (`conversation N`), an echo otherwise; yields its URL."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock:
                received.append(raw)
            payload = json.loads(raw)
            mark = MARK.search(payload.get("message", ""))
            if mark is not None and int(mark.group(1)) in replies:
                answer = crm_reply(replies[int(mark.group(1))])
            else:
                answer = [{"text": "noted"}]
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/rest/webhook"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


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


def run_stub(conversations: int, threads: int, seed: int) -> dict[str, Any]:
    """The leak audit without Rasa: a stub bot that writes CRM canaries into its replies."""
    with tempfile.TemporaryDirectory(prefix="cc_leak_") as tmp:
        work = Path(tmp)
        receiver = contextlib.ExitStack()
        hook_url = receiver.enter_context(webhook_receiver(work / "webhook.jsonl"))
        config = {
            "actions": {"action_reliability_check": TYPES},
            "grants": {"ttl_seconds": 60},
            "export": {
                "sinks": [
                    {"jsonl": str(work / "export.jsonl")},
                    {"webhook": hook_url, "allow_private_network": True},
                ]
            },
        }
        (work / "coatcheck.yml").write_text(yaml.safe_dump(config))
        crm = Canaries(seed=seed + 104_729)
        replies = {i: crm.make(i) for i in range(conversations)}
        received: list[bytes] = []
        bot_url = receiver.enter_context(stub_bot(replies, received))
        cluster = Cluster(
            workdir=work, database_url=f"sqlite:///{work}/coatcheck.db", bot_url=bot_url,
            workers=1, log_level="debug",
        )  # fmt: skip
        try:
            cluster.start()
            figures = drive_and_scan(cluster, work, None, conversations, threads, seed, replies)
        finally:
            cluster.stop()
            receiver.close()
        (work / "bot.jsonl").write_bytes(b"\n".join(received) + b"\n")  # scanned as a file
        history_out = work / "coatcheck.db"
        figures["bot_reply_refs_all_types"] = all(
            f"CC_{t}_".encode() in history_out.read_bytes() for t in TYPES
        )
        return final_scan(work, figures, rasa=False)


def bot_with_shapes(work: Path) -> tuple[Path, Path]:
    """The example bot's domain plus the shapes additions (a domain folder), and their data."""
    domain, data = work / "domain", work / "shapes_data"
    domain.mkdir()
    data.mkdir()
    shutil.copy(BOT / "domain.yml", domain / "domain.yml")
    (domain / "shapes.yml").write_text(yaml.safe_dump(SHAPES_DOMAIN, sort_keys=False))
    (data / "shapes.yml").write_text(yaml.safe_dump(SHAPES_DATA, sort_keys=False))
    return domain, data


def drive_and_scan(
    cluster: Cluster,
    work: Path,
    rasa_port: int | None,
    conversations: int,
    threads: int,
    seed: int,
    bot_replies: dict[int, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Drive every conversation from a phone-number sender, read each history back by the
    real number (staff's lookup), reveal, end or export; the figures and what was planted.
    `bot_replies` (stub mode): the CRM canaries the stub bot answers conversation i with."""
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
        sender = phone_sender(seed, i)
        canaries.planted.append(sender)
        plans.append((
            sender,
            [f"conversation {i}: my card is {v['CREDIT_CARD']} and my ssn is {v['US_SSN']}",
             f"shapes: write to {v['EMAIL_ADDRESS']} or call {v['PHONE_NUMBER']}, iban "
             f"{v['IBAN_CODE']}, I am at {v['IP_ADDRESS']}"],
        ))  # fmt: skip
    for values in (bot_replies or {}).values():
        canaries.planted.extend(values.values())
    headers = {"Authorization": f"Bearer {cluster.keys['channel']}"}

    def converse(plan: tuple[str, list[str]]) -> list[tuple[int, bool]]:
        sender, texts = plan
        out = []
        with httpx.Client(headers=headers, timeout=60) as client:
            for t in texts:
                r = client.post(
                    f"{cluster.url}/webhooks/rest/webhook", json={"sender": sender, "message": t}
                )
                routed = r.status_code == 200 and all(
                    item.get("recipient_id") == sender for item in r.json()
                )
                out.append((r.status_code, routed))
        return out

    t0 = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        results = [s for ss in pool.map(converse, plans) for s in ss]
    statuses = [status for status, _ in results]
    drive_s = time.monotonic() - t0
    with httpx.Client(headers=admin, timeout=60) as client:
        answers = [
            client.post(f"{cluster.url}/v1/senders/history", json={"sender": p[0]}).json()
            for p in plans
        ]
    history = json.dumps(answers)
    # audited reads at rest too: reveal every reference with a grant, then end (shred and
    # export) every second conversation and export the others while active
    reveals, exported = reveal_and_end(cluster, answers)
    control = f"control.{canaries.tag}@example.org"
    if rasa_port is not None:
        httpx.post(
            f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook",
            json={"sender": f"leak{canaries.tag}-control", "message": f"hi {control}"},
            timeout=60,
        )
    return {
        "conversations": conversations,
        "messages": len(statuses),
        "messages_2xx": statuses.count(200),
        "replies_to_real_sender": sum(routed for _, routed in results),
        "pseudonymous_ids": sum(bool(PSEUDONYM.match(a["conversation_id"])) for a in answers),
        "drive_seconds": round(drive_s, 1),
        "canaries_planted": len(canaries.planted),
        "_planted": canaries.planted,
        "_control": control,
        "found_history": len(scan(history, canaries.planted)),
        "reveals_ok": reveals,
        "exports_by_route_2xx": exported,
        "history_refs_all_types": all(f"CC_{t}_" in history for t in TYPES),
    }


def reveal_and_end(cluster: Cluster, answers: list[dict[str, Any]]) -> tuple[int, int]:
    """Reveal every user reference of each conversation (by its pseudonym), then end or
    export it; (reveals answered, exports answered)."""
    ok = exported = 0
    action = {"Authorization": f"Bearer {cluster.keys['action-server']}"}
    admin = {"Authorization": f"Bearer {cluster.keys['admin']}"}
    with httpx.Client(timeout=60) as client:
        for i, answer in enumerate(answers):
            cid = answer["conversation_id"]
            refs = {
                ref.reference
                for message in answer["messages"]
                if message["direction"] == "in"
                for ref in parse_references(message["text"])
            }
            grant = client.post(
                f"{cluster.url}/v1/grants",
                json={"conversation_id": cid, "entity_types": TYPES, "purpose": "leak audit",
                      "action": "action_reliability_check"},
                headers=action,
            ).json()["grant"]  # fmt: skip
            for ref in sorted(refs):
                r = client.post(
                    f"{cluster.url}/v1/reveal",
                    json={"conversation_id": cid, "ref": ref, "grant": grant},
                    headers=action,
                )
                ok += r.status_code == 200
            if i % 2:
                client.post(f"{cluster.url}/v1/conversations/{cid}/end", headers=admin)
            else:
                r = client.post(f"{cluster.url}/v1/conversations/{cid}/export", headers=admin)
                exported += r.status_code == 200
    return ok, exported


def final_scan(work: Path, figures: dict[str, Any], rasa: bool = True) -> dict[str, Any]:
    """Every file and row at rest searched for every canary; `rasa` False: the stub-bot
    run (no tracker, action server or Rasa log; the stub bot's received bodies instead)."""
    planted: list[str] = figures.pop("_planted")
    control: str = figures.pop("_control")
    tracker = sqlite_rows(work / "tracker.db") if rasa else ""
    coatcheck_rows = sqlite_rows(work / "coatcheck.db")
    contexts: list[str] = []
    found: dict[str, int] = {}
    everywhere: set[str] = set()
    tables = (("tracker_rows", tracker),) if rasa else ()
    for name, rows in (*tables, ("coatcheck_rows", coatcheck_rows)):
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
    names = ("coatcheck.log", "rasa.log", "actions.log") if rasa else ("coatcheck.log", "bot.jsonl")
    logs = {n: (work / n).stat().st_size for n in names}
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
    n = figures["conversations"]
    figures["ok"] = (
        figures["canaries_found"] == 0
        and not any(found.values())
        and figures["messages_2xx"] == figures["messages"]
        and figures["replies_to_real_sender"] == figures["messages"]
        and figures["pseudonymous_ids"] == n
        and figures["reveals_ok"] == len(TYPES) * n
        and figures["audit_rows_in_db"] >= figures["reveals_ok"]
        and (not rasa or figures["control_in_tracker"])
        and (not rasa or figures["tracker_refs_all_types"])
        and (not rasa or figures["shapes_runs_with_values"] == n)
        and (not rasa or figures["shapes_template_refs"] >= n)
        and (rasa or figures["bot_reply_refs_all_types"])
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
    parser.add_argument(
        "--bot",
        choices=("rasa", "stub"),
        default="rasa",
        help="rasa: the example bot behind Rasa 3.6; stub: a loopback bot writing CRM canaries",
    )
    a = parser.parse_args()
    runner = run if a.bot == "rasa" else run_stub
    figures = runner(a.conversations, a.threads, a.seed)
    print(json.dumps(figures))
    sys.exit(0 if figures["ok"] else 1)


if __name__ == "__main__":
    main()
