"""Shared parts of the reliability scripts: real processes on loopback, bounded waits.

- `pg_database(url)`: a fresh PostgreSQL database of its own, dropped afterwards.
- `own_cluster()`: a throwaway PostgreSQL cluster (initdb as `postgres`), stopped and removed.
- `RecordingBot`: a real aiohttp bot on 127.0.0.1 that echoes and records what it receives.
- `Cluster`: `coatcheck serve --workers N` in its own process group, its worker pids, keys.
- `Canaries`: unique values of every global type, checked against the real detector.
- `scan(haystack, canaries)`: raw, compact and digits-only forms of each canary.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiohttp import web
from sqlalchemy import create_engine, make_url, text

PG_BIN = Path("/usr/lib/postgresql/15/bin")
TYPES = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"]
ACTION = "action_reliability_check"
CONFIG = {"actions": {ACTION: TYPES}, "grants": {"ttl_seconds": 60}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def sa_url(url: str) -> str:
    return url if "+psycopg" in url else url.replace("postgresql://", "postgresql+psycopg://", 1)


@contextlib.contextmanager
def pg_database(server_url: str) -> Iterator[str]:
    """A fresh database on `server_url`'s server; yields its URL; dropped (FORCE) at the end."""
    name = f"cc_rel_{uuid.uuid4().hex[:12]}"
    admin = create_engine(sa_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(sa_url(server_url)).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class OwnCluster:
    """A throwaway PostgreSQL cluster (for stopping mid-load); `url`, `stop()`, `start()`."""

    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        data = str(self.root / "data")
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", data,
             "-w", "-t", "60", *args],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._ctl("-o", opts, "-l", str(self.root / "pg.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")


@contextlib.contextmanager
def own_cluster() -> Iterator[OwnCluster]:
    root = Path(tempfile.mkdtemp(prefix="cc_rel_pg_"))
    shutil.chown(root, "postgres", "postgres")
    cluster = OwnCluster(root, free_port())
    started = False
    try:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(root / "data"),
             "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        cluster.start()
        started = True
        yield cluster
    finally:
        if started:
            with contextlib.suppress(subprocess.CalledProcessError):
                cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


# -- the stub bot -------------------------------------------------------------------------


@dataclass
class RecordingBot:
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        with self.lock:
            self.received.append(payload)
        return web.json_response([{"recipient_id": payload["sender"], "text": payload["message"]}])


@contextlib.contextmanager
def threaded(app: web.Application) -> Iterator[str]:
    """Run `app` on a free loopback port in its own thread and event loop; the base URL.

    Also the gateway test suites' loopback peer (tests/harness.py re-exports it).
    """
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, web.AppRunner | str] = {}

    async def start() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        holder["runner"] = runner
        holder["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        ready.set()

    def run() -> None:
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        if not ready.wait(10):
            raise RuntimeError("loopback server did not start")
        yield str(holder["url"])
    finally:
        runner = holder.get("runner")
        if isinstance(runner, web.AppRunner):
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextlib.contextmanager
def running_bot() -> Iterator[RecordingBot]:
    bot = RecordingBot()
    app = web.Application()
    app.router.add_post("/webhooks/rest/webhook", bot.handle)
    with threaded(app) as base:
        bot.url = base + "/webhooks/rest/webhook"
        yield bot


# -- the service --------------------------------------------------------------------------

CLI = [sys.executable, "-c", "from coatcheck.middleware.cli import main; main()"]


@dataclass
class Cluster:
    """`coatcheck serve --workers N` with its own temp dir (key, API keys, config, log)."""

    workdir: Path
    database_url: str
    bot_url: str
    workers: int = 2
    log_level: str = "debug"
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    keys: dict[str, str] = field(default_factory=dict)
    _pseudonyms: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "coatcheck.log"

    def env(self) -> dict[str, str]:
        config = self.workdir / "coatcheck.yml"
        if not config.exists():
            config.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
        root = str(Path(__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "COATCHECK_DATABASE_URL": self.database_url,
            "COATCHECK_KEY_FILE": str(self.workdir / "coatcheck.key"),
            "COATCHECK_APIKEYS_FILE": str(self.workdir / "coatcheck.apikeys"),
            "COATCHECK_CONFIG": str(config),
            "COATCHECK_BOT_URL": self.bot_url,
            "COATCHECK_RATE_LIMIT": "1000000",
            "COATCHECK_BOT_TIMEOUT_SECONDS": "10",
        }
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], env=self.env(), capture_output=True, text=True, check=check, timeout=120
        )

    def start(self, timeout: float = 120) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--workers", str(self.workers), "--port", str(self.port),
             "--log-level", self.log_level],
            env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"coatcheck serve exited: see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                healthy = httpx.get(f"{self.url}/health", timeout=2).status_code == 200
                if healthy and len(self.worker_pids()) >= self.workers:
                    break
            time.sleep(0.3)
        else:
            raise RuntimeError("coatcheck serve did not become healthy")
        if not self.keys:
            path = self.workdir / "coatcheck.apikeys"
            self.keys = dict(line.split("=", 1) for line in path.read_text().split())
            for role in ("action-server", "viewer"):
                out = self.cli("apikey", "create", "--role", role).stdout
                self.keys[role] = next(w for w in out.split() if w.startswith("cck_"))

    def pseudonym(self, sender: str) -> str:
        """The conversation id of a channel sender (its keyed pseudonym), as staff find it."""
        if sender not in self._pseudonyms:
            r = httpx.post(
                f"{self.url}/v1/senders/history",
                json={"sender": sender},
                headers={"Authorization": f"Bearer {self.keys['admin']}"},
                timeout=30,
            )
            r.raise_for_status()
            self._pseudonyms[sender] = r.json()["conversation_id"]
        return self._pseudonyms[sender]

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes (spawned children), not the resource tracker."""
        if self.proc is None:
            return []
        if self.workers == 1:  # uvicorn serves in the supervisor process itself
            return [self.proc.pid] if self.proc.poll() is None else []
        pids = []
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        for pid in children.split():
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"spawn_main" in cmdline:
                    pids.append(int(pid))
        return pids

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


@contextlib.contextmanager
def running_cluster(**kwargs: Any) -> Iterator[Cluster]:
    cluster = Cluster(**kwargs)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


# -- canaries -----------------------------------------------------------------------------


def _luhn_complete(prefix: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(prefix)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return prefix + str((10 - total % 10) % 10)


def _iban_de(bank: str, account: str) -> str:
    bban = bank + account
    numeric = int(bban + "1314" + "00")  # D=13, E=14
    check = 98 - numeric % 97
    raw = f"DE{check:02d}{bban}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


@dataclass
class Canaries:
    """Unique canary values: `make(i)` gives one of each type, all distinct across i."""

    seed: int = 0
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    planted: list[str] = field(default_factory=list)

    def make(self, i: int) -> dict[str, str]:
        rnd = random.Random(self.seed * 1_000_003 + i)
        values = {
            "EMAIL_ADDRESS": f"cny{self.tag}{i}q{rnd.randrange(10**6):06d}@example.org",
            "PHONE_NUMBER": f"+1 415 {rnd.randrange(200, 1000)} {i % 10000:04d}",
            "CREDIT_CARD": _luhn_complete(f"4{rnd.randrange(10**8):08d}{i % 10**6:06d}"),
            "US_SSN": f"{rnd.randrange(100, 600)}-{rnd.randrange(10, 99)}-{1000 + i % 9000:04d}",
            "IBAN_CODE": _iban_de(f"{rnd.randrange(10**8):08d}", f"{i % 10**10:010d}"),
            "IP_ADDRESS": f"172.{rnd.randrange(16, 32)}.{i // 250 % 250}.{i % 250 + 1}",
        }
        self.planted.extend(values.values())
        return values


def forms(canary: str) -> set[str]:
    """Raw (case-insensitive), without separators, and digits-only (9+ digits) forms."""
    out = {canary.lower(), canary.lower().replace(" ", "").replace("-", "")}
    digits = "".join(c for c in canary if c.isdigit())
    if len(digits) >= 9:
        out.add(digits)
    if canary.startswith("+1 "):  # national phone digits
        out.add(digits[1:])
    return out


def scan(haystack: str, canaries: list[str]) -> list[str]:
    """The canaries found in `haystack` (case-insensitive) in any of their forms."""
    return sorted(scan_hits(haystack, canaries), key=canaries.index)


def scan_hits(haystack: str, canaries: list[str]) -> dict[str, str]:
    """{canary: the text around its first hit}, in one pass over `haystack`.

    A form matches where it occurs as a substring of the lower-cased text, except that a
    digits-only form must not touch another digit on either side: a 9-digit SSN inside a
    float timestamp or a hex digest is not that SSN (with thousands of canaries such chance
    matches do happen). Forms are indexed by their first k characters and each position of
    the text is looked up once.
    """
    index: dict[str, list[tuple[str, str]]] = {}
    all_forms = [(f, c) for c in canaries for f in forms(c)]
    if not all_forms:
        return {}
    k = min(8, *(len(f) for f, _ in all_forms))
    for f, c in all_forms:
        index.setdefault(f[:k], []).append((f, c))
    hay = haystack.lower()
    found: dict[str, str] = {}
    get = index.get
    for i in range(len(hay) - k + 1):
        hits = get(hay[i : i + k])
        if not hits:
            continue
        for f, c in hits:
            if c in found or not hay.startswith(f, i):
                continue
            end = i + len(f)
            if f.isdigit() and (
                (i > 0 and hay[i - 1].isdigit()) or (end < len(hay) and hay[end].isdigit())
            ):
                continue
            found[c] = haystack[max(0, i - 30) : end + 30]
    return found


def read_all(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace") if path.exists() else ""


def pg_dump(database_url: str) -> str:
    url = make_url(database_url)
    dsn = f"postgresql://{url.username}@{url.host}:{url.port or 5432}/{url.database}"
    return subprocess.run(
        [str(PG_BIN / "pg_dump"), "--no-owner", dsn],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout  # fmt: skip


def exit_on_term() -> None:
    """Turn SIGTERM (e.g. from `timeout`) into SystemExit so every `finally` cleans up."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
