"""A live gateway for the attack tests: `uvicorn` on loopback, a config of the test's own.

Each attack runs against the real service as an outsider holding one API key would: over
HTTP, with the keys the roles get (`bot`, `action-server`, `channel`).  The vault is opened
beside it (same database and key file) only to read what the attack left behind: audit
rows and stored values.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.vault import AuditRecord, Vault, load_master_key, make_engine
from tests.ops.live import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Gateway:
    """A running gateway: its URL, one key per role, its database and key file."""

    url: str
    keys: dict[Role, str]
    database_url: str
    key_file: Path
    log: Path
    http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def post(self, path: str, body: dict[str, Any], role: Role) -> httpx.Response:
        return self.http.post(
            path, json=body, headers={"Authorization": f"Bearer {self.keys[role]}"}
        )

    def say(self, sender: str, message: str) -> httpx.Response:
        """One user message through the channel webhook (the echo bot answers)."""
        body = {"sender": sender, "message": message}
        return self.post("/webhooks/rest/webhook", body, Role.CHANNEL)

    def cid(self, sender: str) -> str:
        """The conversation id a channel sender (or a channel key's id) is kept under: its
        pseudonym, what every non-channel caller names the conversation by."""
        engine = make_engine(self.database_url)
        try:
            return Vault(engine, load_master_key(None, self.key_file)).pseudonym(sender)
        finally:
            engine.dispose()

    def audit(self, conversation_id: str, action: str) -> list[AuditRecord]:
        engine = make_engine(self.database_url)
        try:
            vault = Vault(engine, load_master_key(None, self.key_file))
            return vault.audit_rows(conversation_id=conversation_id, action=action)
        finally:
            engine.dispose()

    def stored_values(self, conversation_id: str) -> int:
        """How many values the vault holds for the conversation (any epoch, any state)."""
        engine = create_engine(self.database_url)
        query = text(
            "SELECT count(*) FROM stored_values v JOIN conversations c"
            " ON v.conversation_pk = c.id WHERE c.conversation_id = :cid"
        )
        try:
            with engine.connect() as conn:
                return int(conn.execute(query, {"cid": conversation_id}).scalar_one())
        finally:
            engine.dispose()


@contextmanager
def live_gateway(tmp: Path, config: dict[str, Any]) -> Iterator[Gateway]:
    """`uvicorn coatcheck.middleware.app:create_app` on a free loopback port with `config`."""
    config_path = tmp / "coatcheck.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    database_url = f"sqlite:///{tmp / 'cc.db'}"
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COATCHECK_DATABASE_URL": database_url,
        "COATCHECK_KEY_FILE": str(tmp / "master.key"),
        "COATCHECK_APIKEYS_FILE": str(tmp / "apikeys.txt"),
        "COATCHECK_CONFIG": str(config_path),
        "COATCHECK_RATE_LIMIT": "100000",
    }
    env.pop("COATCHECK_BOT_URL", None)
    env.pop("COATCHECK_MASTER_KEY", None)
    log = tmp / "server.log"
    command = [sys.executable, "-m", "uvicorn", "coatcheck.middleware.app:create_app"]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*command, "--factory", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        engine = create_engine(database_url)
        store = GatewayStore(engine)
        keys = {role: store.keys.create(role) for role in Role}
        engine.dispose()
        gateway = Gateway(url, keys, database_url, tmp / "master.key", log)
        yield gateway
        gateway.http.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the gateway exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail("the gateway did not start")
