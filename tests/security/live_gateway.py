"""A live `coatcheck serve` (uvicorn on loopback) behind a scripted stub bot, with its log,
database, export file and keys: what the at-rest attacks of issue 14 (findings 6 and 7) scan.

The server runs at DEBUG with every store this repository writes on a SQLite file in the
test's directory, so "no raw value at rest" is checked on the bytes of all of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiohttp import web
from sqlalchemy import create_engine

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.store import GatewayStore
from tests.harness import serving
from tests.ops.live import wait_healthy

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from coatcheck.middleware.cli import main; main()"]
Script = Callable[[dict[str, Any]], list[dict[str, Any]]]


@dataclass
class Bot:
    """A real HTTP bot on 127.0.0.1: records each payload, answers `script(payload)`."""

    script: Script
    received: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.received.append(payload)
        return web.json_response(self.script(payload))


@dataclass
class Live:
    """The running gateway: URL, a key per role, and its files."""

    url: str
    keys: dict[Role, str]
    dir: Path
    bot: Bot

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def say(self, sender: str, message: str) -> list[dict[str, Any]]:
        response = httpx.post(
            f"{self.url}/webhooks/rest/webhook",
            json={"sender": sender, "message": message},
            headers=self.auth(Role.CHANNEL),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        answer: list[dict[str, Any]] = response.json()
        return answer

    def post(self, path: str, role: Role, body: Any = None) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, headers=self.auth(role), timeout=30)

    def get(self, path: str, role: Role) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=self.auth(role), timeout=30)

    def at_rest(self) -> dict[str, bytes]:
        """Every file the service wrote (database and WAL, log, export), by name."""
        return {p.name: p.read_bytes() for p in self.dir.iterdir() if p.is_file()}


def _keys(database_url: str, files: Path) -> dict[Role, str]:
    """The starter keys (channel, admin) plus one per other role the tests use."""
    first = dict(line.split("=", 1) for line in files.read_text().split())
    keys = {Role.CHANNEL: first["channel"], Role.ADMIN: first["admin"]}
    engine = create_engine(database_url)
    try:
        store = GatewayStore(engine)
        for role in (Role.VIEWER, Role.AUDITOR, Role.BOT, Role.ACTION_SERVER):
            keys[role] = store.keys.create(role)
    finally:
        engine.dispose()
    return keys


@contextmanager
def live_gateway(
    tmp: Path,
    script: Script,
    config: dict[str, Any],
    prepare: Callable[[str, Path], None] | None = None,
) -> Iterator[Live]:
    """`coatcheck serve` at DEBUG on a free port, its bot answering `script`; an export
    sink (`export.jsonl`) is added to `config`.  `prepare(database_url, key_file)` writes
    the database before the service first starts (an existing deployment's)."""
    bot = Bot(script)
    store = tmp / "store"
    store.mkdir()
    config = {**config, "export": {"sinks": [{"jsonl": str(store / "export.jsonl")}]}}
    config_file = tmp / "coatcheck.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    with serving("/webhooks/rest/webhook", bot.handle) as bot_url:
        from tests.ops.live import free_port

        port = free_port()
        database_url = f"sqlite:///{store / 'cc.db'}"
        if prepare is not None:
            prepare(database_url, tmp / "cc.key")
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "COATCHECK_DATABASE_URL": database_url,
            "COATCHECK_KEY_FILE": str(tmp / "cc.key"),
            "COATCHECK_APIKEYS_FILE": str(tmp / "cc.apikeys"),
            "COATCHECK_APIKEY_CACHE_SECONDS": "0",
            "COATCHECK_BOT_URL": bot_url,
            "COATCHECK_CONFIG": str(config_file),
            "COATCHECK_LOG_LEVEL": "DEBUG",
        }
        env.pop("COATCHECK_MASTER_KEY", None)
        log = store / "server.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [*CLI, "serve", "--port", str(port), "--log-level", "debug"],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(proc, url, log)
            yield Live(url, _keys(database_url, tmp / "cc.apikeys"), store, bot)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def found_in(live: Live, forms: list[str], *extra: tuple[str, str]) -> list[str]:
    """Where any of `forms` shows up: each file at rest, and the `extra` (name, text)
    pairs (API answers); names only, never the value."""
    places = [
        name
        for name, data in live.at_rest().items()
        for form in forms
        if form.encode() in data or json.dumps(form)[1:-1].encode() in data
    ]
    places += [name for name, text in extra for form in forms if form in text]
    return sorted(set(places))
