"""Helpers for the log viewer tests: a live `coatcheck serve` (uvicorn, loopback).

The server is real and shared by the UI tests (starting it costs seconds); each test seeds
its own conversation through the channel webhook, so tests do not depend on each other.
Staff keys (viewer, agent, auditor, admin) are created in the server's database with the
same `GatewayStore.keys.create` the CLI uses.  The canary values below must never appear
in any page.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.vault.db import normalise_url

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("COATCHECK_TEST_PG_URL")
CANARY_EMAIL = "canary.viewer@example.com"
CANARY_CARD = "4111 1111 1111 1111"
CANARIES = (CANARY_EMAIL, CANARY_CARD, CANARY_CARD.replace(" ", ""), "canary.viewer")
STAFF = (Role.VIEWER, Role.AGENT, Role.AUDITOR, Role.ADMIN)
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Live:
    url: str
    keys: dict[str, str]  # role value -> API key
    log: Path
    env: dict[str, str]  # the server's environment (for the CLI on the same database)

    def verify_audit(self) -> str:
        """`coatcheck audit verify` on the server's database (what the sweeper runs every
        few minutes): the audit page shows the newest result, it never verifies itself."""
        cmd = [sys.executable, "-c", "from coatcheck.middleware.cli import main; main()"]
        done = subprocess.run(
            [*cmd, "audit", "verify"], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def seed(self, prefix: str = "ui") -> str:
        """A new conversation with both canaries, in both directions (the echo bot); its
        id as staff see it (the sender's pseudonym)."""
        sender = f"{prefix}-{uuid.uuid4().hex[:10]}"
        headers = {"Authorization": f"Bearer {self.keys['channel']}"}
        for message in (f"Hi, I am {CANARY_EMAIL}", f"my card is {CANARY_CARD} thanks"):
            reply = httpx.post(
                f"{self.url}/webhooks/rest/webhook",
                json={"sender": sender, "message": message},
                headers=headers,
                timeout=30,
            )
            assert reply.status_code == 200, reply.text
            assert CANARY_EMAIL not in reply.text
        return self.pseudonym(sender)

    def pseudonym(self, sender: str) -> str:
        """A sender's conversation id, as staff find it (`POST /v1/senders/history`)."""
        headers = {"Authorization": f"Bearer {self.keys['admin']}"}
        found = httpx.post(
            f"{self.url}/v1/senders/history", json={"sender": sender}, headers=headers, timeout=30
        )
        assert found.status_code == 200, found.text
        return str(found.json()["conversation_id"])

    def end(self, cid: str) -> None:
        """End a conversation by its pseudonym (an admin key: a channel key would name the
        real sender)."""
        headers = {"Authorization": f"Bearer {self.keys['admin']}"}
        reply = httpx.post(f"{self.url}/v1/conversations/{cid}/end", headers=headers, timeout=30)
        assert reply.status_code == 200, reply.text

    @contextmanager
    def sign_in(self, role: Role) -> Iterator[httpx.Client]:
        """An httpx client holding a signed-in session for `role` (form + CSRF, like a user)."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            form = client.get("/ui/login")
            token = CSRF_RE.search(form.text)
            assert token is not None
            done = client.post(
                "/ui/login", data={"api_key": self.keys[role.value], "csrf": token.group(1)}
            )
            assert done.status_code == 303 and done.headers["location"] == "/ui/"
            yield client


@contextmanager
def serve(tmp: Path, database_url: str) -> Iterator[Live]:
    """`coatcheck serve` on a free loopback port over `database_url`, staff keys added."""
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COATCHECK_DATABASE_URL": database_url,
        "COATCHECK_KEY_FILE": str(tmp / "ui.key"),
        "COATCHECK_APIKEYS_FILE": str(tmp / "ui.apikeys"),
        "COATCHECK_APIKEY_CACHE_SECONDS": "0",
    }
    env.pop("COATCHECK_BOT_URL", None)
    env.pop("COATCHECK_CONFIG", None)
    log = tmp / "server.log"
    cmd = [sys.executable, "-c", "from coatcheck.middleware.cli import main; main()"]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*cmd, "serve", "--port", str(port), "--log-level", "info"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"coatcheck serve exited with {proc.returncode}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail("coatcheck serve did not start")
        lines = (tmp / "ui.apikeys").read_text().split()
        keys = dict(line.split("=", 1) for line in lines)
        engine = create_engine(normalise_url(database_url))
        store = GatewayStore(engine)
        for role in (*STAFF, Role.BOT):
            keys[role.value] = store.keys.create(role)
        engine.dispose()
        yield Live(url, keys, log, env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        text_out = log.read_text(errors="replace")
        for canary in CANARIES:
            assert canary not in text_out, "a canary value reached the server log"
