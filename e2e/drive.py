"""End-to-end driver: talk to the real Rasa bot through coatcheck, then hunt for canaries.

Run by e2e/run.sh with coatcheck's venv once the gateway, the action server and Rasa are
up.  Each conversation plants unique canary values (email, phone, PIN, plus a credit card
and an SSN in free text) and checks what the user sees; afterwards every place that must
hold references only (Rasa's tracker store, Rasa's log, the action server's log,
coatcheck's history and log) is searched for each canary, raw and digits-only.
Exit status 0 only when every conversation went as expected and no canary was found.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sqlite3
import sys
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REFERENCE = re.compile(r"CC_[A-Z][A-Z0-9_]*_[0-9a-hjkmnp-tv-z]{10}")


@dataclass(frozen=True)
class Canaries:
    """One conversation's planted values; `forms` are the strings that must never leak."""

    email: str
    phone: str
    pin: str
    card: str
    ssn: str

    def forms(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, value in vars(self).items():
            found[f"{name}:raw"] = value
            digits = re.sub(r"\D", "", value)
            if len(digits) >= 6 and digits != value:
                found[f"{name}:digits"] = digits
        phone_digits = re.sub(r"\D", "", self.phone)
        found["phone:national"] = phone_digits[1:]
        return found


def _luhn_complete(prefix: str) -> str:
    """`prefix` plus the check digit that makes it pass Luhn."""
    total = 0
    for i, ch in enumerate(reversed(prefix)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return prefix + str((10 - total % 10) % 10)


def make_canaries(rng: random.Random, index: int) -> Canaries:
    """Unique, valid-looking values: the detectors must see them as what they are."""
    tag = "".join(rng.choice("abcdefghijkmnpqrstuvwxyz") for _ in range(8))
    card = _luhn_complete("4" + "".join(str(rng.randrange(10)) for _ in range(14)))
    area = rng.randrange(101, 665)
    ssn = f"{area:03d}-{rng.randrange(10, 99):02d}-{rng.randrange(1001, 9999):04d}"
    exchange = rng.randrange(201, 989)
    line = rng.randrange(1000, 9999)
    area_code = "415-" if index % 2 else "(415) "
    phone = f"+1 {area_code}{exchange:03d}-{line:04d}"
    return Canaries(
        email=f"canary.{tag}{index}@example.org",
        phone=phone,
        pin="".join(str(rng.randrange(1, 10)) for _ in range(8)),
        card=" ".join(card[i : i + 4] for i in range(0, 16, 4)) if index % 2 else card,
        ssn=ssn,
    )


@dataclass
class Report:
    conversations: int = 0
    planted: int = 0
    failures: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"FAIL {message}", flush=True)


class Gateway:
    """The channel side of coatcheck (what a chat widget would do)."""

    def __init__(self, base: str, channel_key: str, admin_key: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=60.0)
        self.channel = {"Authorization": f"Bearer {channel_key}"}
        self.admin = {"Authorization": f"Bearer {admin_key}"}

    def say(self, sender: str, message: str) -> list[dict[str, Any]]:
        resp = self.http.post(
            "/webhooks/rest/webhook",
            json={"sender": sender, "message": message},
            headers=self.channel,
        )
        if resp.status_code != 200:
            raise RuntimeError(f"webhook answered {resp.status_code}: {resp.text[:300]}")
        replies = resp.json()
        assert isinstance(replies, list)
        return replies

    def history(self, sender: str) -> Any:
        """A sender's history, found by the real id (conversations are kept by pseudonym)."""
        resp = self.http.post("/v1/senders/history", json={"sender": sender}, headers=self.admin)
        if resp.status_code != 200:
            raise RuntimeError(f"history answered {resp.status_code}: {resp.text[:300]}")
        return resp.json()


def _texts(replies: list[dict[str, Any]]) -> list[str]:
    return [str(r["text"]) for r in replies if "text" in r]


# (what the user types, a substring the bot's text reply must contain)
def _script(c: Canaries, index: int) -> list[tuple[str, str]]:
    confirm = f"You gave {c.email}, is that right?"
    form = [
        (f"sure, it is {c.email}" if index % 2 else c.email, "phone number"),
        (c.phone if index % 2 else f"call me on {c.phone} please", "PIN"),
        (c.pin if index % 2 else f"my PIN is {c.pin}", confirm),
    ]
    # every third conversation says "no" first: the slots are reset and the form asks again
    retry = [("no", "email address"), *form] if index % 3 == 2 else []
    return [
        ("hi" if index % 2 else "Hello there, I need to update my contact", "email address"),
        *form,
        *retry,
        ("yes", "a receipt is on its way"),
        (f"my card is {c.card} and my ssn is {c.ssn}", "Noted"),
    ]


def converse(gw: Gateway, sender: str, c: Canaries, index: int, report: Report) -> str:
    """Run one conversation; return everything the user saw (for the scanner self-check)."""
    seen: list[str] = []
    for turn, (said, expected) in enumerate(_script(c, index), start=1):
        replies = gw.say(sender, said)
        texts = _texts(replies)
        seen.extend(texts)
        if not any(expected in t for t in texts):
            report.fail(f"{sender} turn {turn}: expected a reply containing {expected!r}")
        if any("custom" in r for r in replies):
            report.fail(f"{sender} turn {turn}: a directive reached the channel")
        if any(REFERENCE.search(t) for t in texts):
            report.fail(f"{sender} turn {turn}: the user was shown a reference")
    return "\n".join(seen)


def scan_text(where: str, text: str, forms: dict[str, str], report: Report) -> int:
    """Count canary forms in `text` (case-insensitive); every hit is a leak."""
    hits = 0
    lowered = text.lower()
    for name, value in forms.items():
        if value.lower() in lowered:
            hits += 1
            report.leaks.append(f"{name} in {where}")
    return hits


def sqlite_dump(path: Path) -> str:
    """Every row of every table, as text (what a support engineer could query)."""
    uri = f"file:{path}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        parts = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):  # noqa: S608  (names from the schema)
                parts.append(json.dumps([table, *map(str, row)]))
    return "\n".join(parts)


def raw_files(paths: Iterable[Path]) -> Iterable[tuple[str, str]]:
    """The raw bytes of each existing file (SQLite pages, WAL, logs), decoded leniently."""
    for path in paths:
        if path.exists():
            yield str(path), path.read_bytes().decode("latin-1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--keys", type=Path, required=True, help="coatcheck starter key file")
    parser.add_argument("--tracker-db", type=Path, required=True)
    parser.add_argument("--coatcheck-db", type=Path, required=True)
    parser.add_argument("--log", type=Path, action="append", default=[], help="file to scan")
    parser.add_argument("--scan-dir", type=Path, default=None, help="scan every file under it")
    parser.add_argument("--conversations", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--rasa-direct",
        default=None,
        help="Rasa's REST webhook: a control canary is sent there around coatcheck, and the "
        "tracker scan must find it (proves the scan looks where the data really lands)",
    )
    args = parser.parse_args()

    keys = dict(line.split("=", 1) for line in args.keys.read_text().split())
    gw = Gateway(args.gateway, keys["channel"], keys["admin"])
    rng = random.Random(args.seed)
    report = Report()
    forms: dict[str, str] = {}
    senders: list[str] = []
    seen: list[str] = []
    run_tag = "".join(rng.choice("abcdefghijkmnpqrstuvwxyz") for _ in range(6))
    for index in range(args.conversations):
        canaries = make_canaries(rng, index)
        sender = f"e2e-{run_tag}-{index}"
        senders.append(sender)
        for name, value in canaries.forms().items():
            forms[f"{sender}/{name}"] = value
        report.planted += len(vars(canaries))
        seen.append(converse(gw, sender, canaries, index, report))
        report.conversations += 1

    # Self-check: the scanner finds what the user legitimately saw (their own email).
    probe = Report()
    if scan_text("channel replies", "\n".join(seen), forms, probe) < args.conversations:
        report.fail("scanner self-check: the confirmation values were not found in the replies")

    control = f"control.{run_tag}@example.org"
    if args.rasa_direct:
        httpx.post(args.rasa_direct, json={"sender": f"e2e-{run_tag}-control", "message": control})
    tracker = sqlite_dump(args.tracker_db)
    if args.rasa_direct and scan_text("control", tracker, {"control": control}, Report()) != 1:
        report.fail("control: a canary sent straight to Rasa was not found in its tracker store")
    if "CC_EMAIL_ADDRESS_" not in tracker or "CC_PIN_" not in tracker:
        report.fail("Rasa's tracker store holds no references: the bot never saw the slots")
    scan_text(f"{args.tracker_db} (tables)", tracker, forms, report)
    history = json.dumps([gw.history(s) for s in senders])
    if "CC_CREDIT_CARD_" not in history or "CC_US_SSN_" not in history:
        report.fail("coatcheck history lacks the card/SSN references: free text was not redacted")
    scan_text("coatcheck history", history, forms, report)
    sidecars = [
        Path(f"{db}{suffix}")
        for db in (args.tracker_db, args.coatcheck_db)
        for suffix in ("", "-wal", "-journal")
    ]
    everything = {*sidecars, *args.log}
    if args.scan_dir is not None:
        everything |= {p for p in args.scan_dir.rglob("*") if p.is_file()}
    for where, text in raw_files(sorted(everything)):
        scan_text(where, text, forms, report)
        if args.rasa_direct and where == str(args.tracker_db) and control not in text:
            report.fail("control: the tracker store's raw bytes do not show the control canary")
    for log in args.log:
        if not log.exists() or log.stat().st_size == 0:
            report.fail(f"log file {log} is missing or empty: nothing was really checked")

    for log in args.log:
        lost = log.read_bytes().count(b"--- Logging error ---") if log.exists() else 0
        if lost:
            print(f"WARN {log}: {lost} log records failed to format (lines lost)")

    found = len(report.leaks)
    print(
        f"e2e summary: conversations={report.conversations} canaries planted={report.planted} "
        f"(forms searched={len(forms)}, files scanned={len(everything)}) "
        f"canaries found={found} failures={len(report.failures)}"
    )
    for leak in report.leaks:
        print(f"LEAK {leak}")
    return 0 if found == 0 and not report.failures else 1


if __name__ == "__main__":
    sys.exit(main())
