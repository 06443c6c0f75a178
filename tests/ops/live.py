"""A live `coatcheck serve` (uvicorn, loopback) for the operations tests, with its log."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.store import GatewayStore

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from coatcheck.middleware.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    """A `coatcheck` environment on a SQLite file in `tmp` (no bot: the echo bot)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COATCHECK_DATABASE_URL": f"sqlite:///{tmp / 'ops.db'}",
        "COATCHECK_KEY_FILE": str(tmp / "ops.key"),
        "COATCHECK_APIKEYS_FILE": str(tmp / "ops.apikeys"),
        "COATCHECK_APIKEY_CACHE_SECONDS": "0",
        **extra,
    }
    for name in ("COATCHECK_BOT_URL", "COATCHECK_CONFIG", "COATCHECK_MASTER_KEY"):
        env.pop(name, None)
    return env


@dataclass
class Live:
    url: str
    port: int
    keys: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes]

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Until `GET /health` answers 200 (fails the test if the server exits or hangs)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"coatcheck serve exited with {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail("coatcheck serve did not start")


@contextmanager
def serve(tmp: Path, *args: str) -> Iterator[Live]:
    """`coatcheck serve ARGS` on a free port; keys for the channel, admin and monitor roles."""
    port = free_port()
    env = env_for(tmp)
    log = tmp / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), *args],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url, log)
        keys = dict(line.split("=", 1) for line in (tmp / "ops.apikeys").read_text().split())
        engine = create_engine(env["COATCHECK_DATABASE_URL"])
        keys["monitor"] = GatewayStore(engine).keys.create(Role.MONITOR)
        engine.dispose()
        yield Live(url, port, keys, log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
