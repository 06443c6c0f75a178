"""Fixtures for the actions tests: a live coatcheck (uvicorn) and a live rasa-sdk server.

Both run as real subprocesses on loopback ports; coatcheck uses a temp SQLite file and a
temp key file. Async tests run on asyncio through anyio.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine

from coatcheck.vault import Vault, load_master_key, make_engine

ROOT = Path(__file__).resolve().parents[2]
LIVE_PKG = Path(__file__).resolve().parent / "live_pkg"
WEBHOOK_SAMPLE = Path("/work/shared/data/rasa36_action_webhook_request.json")
GRANT_TTL = 2.0

ACTIONS_ALLOW = {
    "action_peek": ["EMAIL_ADDRESS"],
    "action_greedy": ["EMAIL_ADDRESS"],
    "action_send_receipt": ["EMAIL_ADDRESS"],
    "action_shapes": ["EMAIL_ADDRESS", "PIN"],
    "action_card_last4": ["CARD", "CARD_PIN"],
}


# `validate_payment_form` (actions/examples.py) and the secure-capture test name these.
CHECKS_DECLARED = {"card_luhn": {"type": "CREDIT_CARD", "op": "luhn"}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}: {url}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not healthy in time: {url}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass(frozen=True)
class Coatcheck:
    url: str
    action_key: str
    database_url: str
    log_path: Path
    key_file: Path
    channel_key: str
    grant_ttl: float = GRANT_TTL

    def cid(self, sender: str) -> str:
        """The conversation id a channel sender is kept under (its pseudonym, on the same
        database and key): what the bot, its actions and their trackers name it by."""
        engine = make_engine(self.database_url)
        try:
            return Vault(engine, load_master_key(None, self.key_file)).pseudonym(sender)
        finally:
            engine.dispose()


# The real sender behind each conversation id `new_conversation` handed out: the channel
# key (what `seed_text` seeds with) speaks real sender ids, the actions their pseudonyms.
_SENDERS: dict[str, str] = {}


def new_conversation(cc: Coatcheck, prefix: str) -> str:
    """A fresh conversation as the bot and its actions know it: a new sender's pseudonym."""
    sender = f"{prefix}-{uuid.uuid4().hex[:12]}"
    conversation = cc.cid(sender)
    _SENDERS[conversation] = sender
    return conversation


def _create_action_key(env: dict[str, str], database_url: str) -> str:
    """An action-server key, via `coatcheck apikey create` when the CLI has it."""
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "coatcheck.middleware.cli",
            "apikey",
            "create",
            "--role",
            "action-server",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    for word in cli.stdout.split():
        if word.startswith("cck_"):
            return word
    from coatcheck.middleware.gateway.apikeys import Role
    from coatcheck.middleware.gateway.store import GatewayStore

    engine = create_engine(database_url)
    try:
        return GatewayStore(engine).keys.create(Role.ACTION_SERVER)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def coatcheck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coatcheck]:
    tmp = tmp_path_factory.mktemp("coatcheck")
    config = tmp / "coatcheck.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "actions": ACTIONS_ALLOW,
                "grants": {"ttl_seconds": GRANT_TTL},
                "checks": {"declared": CHECKS_DECLARED},
            }
        ),
        encoding="utf-8",
    )
    database_url = f"sqlite:///{tmp / 'cc.db'}"
    port = _free_port()
    env = {
        **os.environ,
        "COATCHECK_DATABASE_URL": database_url,
        "COATCHECK_KEY_FILE": str(tmp / "master.key"),
        "COATCHECK_APIKEYS_FILE": str(tmp / "apikeys.txt"),
        "COATCHECK_CONFIG": str(config),
        "COATCHECK_HOST": "127.0.0.1",
        "COATCHECK_PORT": str(port),
    }
    log_path = tmp / "coatcheck.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "coatcheck.middleware.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "info",
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(f"{url}/health", proc)
        key = _create_action_key(env, database_url)
        starter = (tmp / "apikeys.txt").read_text(encoding="utf-8").splitlines()
        channel = next(line.split("=", 1)[1] for line in starter if line.startswith("channel="))
        yield Coatcheck(url, key, database_url, log_path, tmp / "master.key", channel)
    finally:
        _stop(proc)


@pytest.fixture
def audit_vault(coatcheck: Coatcheck) -> Iterator[Vault]:
    """The live service's vault, opened from its database and key file to read audit rows."""
    engine = make_engine(coatcheck.database_url)
    try:
        yield Vault(engine, load_master_key(None, coatcheck.key_file))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def action_server(
    coatcheck: Coatcheck, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """The real rasa-sdk server with the live test actions; yields (url, log path)."""
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(LIVE_PKG), str(ROOT)]),
        "SANIC_HOST": "127.0.0.1",  # rasa-sdk binds 0.0.0.0 otherwise
        "COATCHECK_URL": coatcheck.url,
        "COATCHECK_ACTION_KEY": coatcheck.action_key,
    }
    log_path = tmp_path_factory.mktemp("rasa_sdk") / "action_server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rasa_sdk",
                "--actions",
                "cc_live_actions",
                "-p",
                str(port),
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(f"{url}/health", proc)
        yield url, log_path
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def webhook() -> Callable[..., dict[str, Any]]:
    """The Rasa 3.6 webhook payload builder (a fixture, so no test imports conftest)."""
    return webhook_payload


def webhook_payload(
    action: str,
    sender: str,
    slots: dict[str, Any],
    entities: list[dict[str, Any]] | None = None,
    slot_events: dict[str, Any] | None = None,
    forms: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Rasa 3.6 action webhook request, from the captured sample, with our slots."""
    payload: dict[str, Any] = copy.deepcopy(json.loads(WEBHOOK_SAMPLE.read_text()))
    payload["next_action"] = action
    payload["sender_id"] = sender
    tracker = payload["tracker"]
    tracker["sender_id"] = sender
    tracker["slots"] = {**tracker["slots"], **slots}
    tracker["latest_message"]["entities"] = entities or []
    for name, value in (slot_events or {}).items():
        tracker["events"].append({"event": "slot", "timestamp": 0.0, "name": name, "value": value})
    domain = payload["domain"]
    domain["slots"].update(
        {name: {"type": "any", "mappings": [{"type": "custom"}]} for name in slots}
    )
    domain["forms"].update(forms or {})
    return payload


async def seed_text(cc: Coatcheck, conversation: str, text: str, entity_type: str) -> str:
    """`text` vaulted whole as `entity_type` through `/v1/redact` with the channel's key:
    the leg that holds user values (an action server's key gets `[TYPE]` back without a
    grant, issue 14); the redacted text.  `conversation` comes from `new_conversation`:
    the channel names it by its real sender id."""
    body = {
        "text": text,
        "conversation_id": _SENDERS[conversation],
        "context": {"expect": entity_type, "capture": "whole"},
    }
    async with httpx.AsyncClient(base_url=cc.url, timeout=10) as http:
        response = await http.post(
            "/v1/redact", json=body, headers={"Authorization": f"Bearer {cc.channel_key}"}
        )
    assert response.status_code == 200, response.text
    redacted: str = response.json()["text"]
    return redacted
