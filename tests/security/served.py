"""A live `coatcheck serve` (uvicorn on loopback, its own process) for the attack tests.

Each attack runs against what an operator runs: the CLI's `serve`, its protocol class, its
log filter, a SQLite file in the test's directory.  `serve(tmp, config=..., bot_url=...)`
yields the URL, one API key per role (made in the same database after start), and the
server's combined output (its log).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, make_url, text

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.vault import Vault, load_master_key, make_engine
from coatcheck.vault.db import normalise_url
from tests.ops.live import free_port, wait_healthy

PG_URL = os.environ.get("COATCHECK_TEST_PG_URL")
ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from coatcheck.middleware.cli import main; main()"]


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    """A `coatcheck` environment on a SQLite file in `tmp`; `extra` as COATCHECK_* values."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COATCHECK_DATABASE_URL": f"sqlite:///{tmp / 'sec.db'}",
        "COATCHECK_KEY_FILE": str(tmp / "sec.key"),
        "COATCHECK_APIKEYS_FILE": str(tmp / "sec.apikeys"),
        "COATCHECK_RATE_LIMIT": "1000",
    }
    for name in ("COATCHECK_BOT_URL", "COATCHECK_CONFIG", "COATCHECK_MASTER_KEY"):
        env.pop(name, None)
    env.update(extra)
    return env


@dataclass
class Live:
    """The running server: base URL, a key per role, its log file, its database URL."""

    url: str
    keys: dict[Role, str]
    log: Path
    database_url: str
    proc: subprocess.Popen[bytes]
    key_file: Path

    def cid(self, sender: str) -> str:
        """The conversation id a channel sender's turns are kept under (its pseudonym, on
        the same database and key): what the bot and every non-channel route name it by."""
        engine = make_engine(self.database_url)
        try:
            return Vault(engine, load_master_key(None, self.key_file)).pseudonym(sender)
        finally:
            engine.dispose()

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def say(self, sender: str, message: str) -> httpx.Response:
        """One channel message through the webhook."""
        return httpx.post(
            f"{self.url}/webhooks/rest/webhook",
            json={"sender": sender, "message": message},
            headers=self.auth(Role.CHANNEL),
            timeout=30,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve(
    tmp: Path,
    *,
    config: dict[str, Any] | None = None,
    bot_url: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Live]:
    """`coatcheck serve` on a free loopback port, with `config` as its YAML file."""
    extra = dict(env or {})
    if config is not None:
        path = tmp / "sec.yml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        extra["COATCHECK_CONFIG"] = str(path)
    if bot_url is not None:
        extra["COATCHECK_BOT_URL"] = bot_url
    environment = env_for(tmp, **extra)
    port = free_port()
    log = tmp / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*CLI, "serve", "--port", str(port)],
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url, log)
        database_url = environment["COATCHECK_DATABASE_URL"]
        engine = create_engine(database_url)
        keys = {role: GatewayStore(engine).keys.create(role) for role in Role}
        engine.dispose()
        key_file = Path(environment["COATCHECK_KEY_FILE"])
        yield Live(url, keys, log, database_url, proc, key_file)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def run_cli(
    tmp: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`coatcheck ARGS` in the same environment as `serve` (same database, same files)."""
    return subprocess.run(
        [*CLI, *args],
        env=env_for(tmp, **(env or {})),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextmanager
def database(kind: str) -> Iterator[dict[str, str]]:
    """The env for a fresh database of `kind`: `sqlite` (the default file, no change) or
    `postgres` (a database of its own, dropped after; skipped without a server)."""
    if kind == "sqlite":
        yield {}
        return
    if not PG_URL:
        pytest.skip("COATCHECK_TEST_PG_URL not set")
    name = f"cc_sec_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(normalise_url(PG_URL)).set(database=name)
        yield {"COATCHECK_DATABASE_URL": url.render_as_string(hide_password=False)}
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
