"""The CLI: `--version`, `apikey list|revoke` against a running gateway, `redact`'s input
documentation, line limit and progress bar."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coatcheck import __version__
from coatcheck.middleware.cli import app
from coatcheck.middleware.detect import compiled
from coatcheck.middleware.gateway.apikeys import Role
from tests.export.gateway_app import GatewayFactory
from tests.ops.live import CLI, env_for
from tests.ui.ui_live import CSRF_RE

EMAIL = "jane.cli@example.com"


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    build = "compiled (mypyc)" if compiled() else "Python"
    assert result.exit_code == 0
    assert result.stdout.strip() == f"coatcheck {__version__} (detector: {build})"


def test_apikey_list_and_revoke_against_a_running_gateway(
    gateways: GatewayFactory, tmp_path: Path
) -> None:
    gw = gateways.build({})
    env = {
        "COATCHECK_DATABASE_URL": f"sqlite:///{tmp_path / 'cc.db'}",
        "COATCHECK_KEY_FILE": str(tmp_path / "coatcheck.key"),
    }
    channel, viewer = gw.keys[Role.CHANNEL], gw.keys[Role.VIEWER]
    prefix = channel.split("_")[1]
    ui = gw.client.get("/ui/login")  # a viewer signs in to the log viewer
    token = CSRF_RE.search(ui.text)
    assert token is not None
    signed_in = gw.client.post(
        "/ui/login", data={"api_key": viewer, "csrf": token.group(1)}, follow_redirects=False
    )
    assert signed_in.status_code == 303
    listed = CliRunner().invoke(app, ["apikey", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert f"{prefix}  channel" in listed.stdout.replace("   ", "  ")
    for role in Role:
        assert role.value in listed.stdout
        assert gw.keys[role].split("_", 2)[2] not in listed.stdout  # never the secret part

    body = {"sender": "u1", "message": "hi"}
    assert gw.say("u1", "hi")  # the key works, and is now in the worker's key cache
    revoked = CliRunner().invoke(app, ["apikey", "revoke", prefix], env=env)
    assert revoked.exit_code == 0 and "revoked channel key" in revoked.stdout
    gw.clock.now += 11  # past COATCHECK_APIKEY_CACHE_SECONDS (10 s): the cache lets go
    refused = gw.call("POST", "/webhooks/rest/webhook", Role.CHANNEL, json=body)
    assert refused.status_code == 401

    viewer_prefix = viewer.split("_")[1]
    ended = CliRunner().invoke(app, ["apikey", "revoke", viewer_prefix], env=env)
    assert ended.exit_code == 0 and "1 log-viewer session(s) ended" in ended.stdout
    assert gw.client.get("/ui/", follow_redirects=False).headers["location"] == "/ui/login"
    again = CliRunner().invoke(app, ["apikey", "revoke", prefix], env=env)
    assert again.exit_code == 1 and "no API key has that prefix" in again.output


def test_redact_help_documents_its_input() -> None:
    result = CliRunner().invoke(app, ["redact", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for needle in ('"text"', '"conversation_id"', '"context"', '"expect"', '"capture"'):
        assert needle in result.stdout, needle
    assert "Output" in result.stdout and "--max-line-bytes" in result.stdout


def test_redact_refuses_long_and_non_utf8_lines_and_goes_on(tmp_path: Path) -> None:
    env = {
        "COATCHECK_DATABASE_URL": f"sqlite:///{tmp_path / 'cc.db'}",
        "COATCHECK_KEY_FILE": str(tmp_path / "cc.key"),
    }
    long_line = json.dumps({"text": f"{EMAIL} " + "x" * 5000})
    stdin = (
        json.dumps({"text": f"mail {EMAIL}"}).encode()
        + b"\n"
        + long_line.encode()
        + b"\n"
        + b'{"text": "caf\xe9"}\n'
        + json.dumps({"text": f"again {EMAIL}"}).encode()
    )
    result = CliRunner().invoke(app, ["redact", "--max-line-bytes", "1000"], input=stdin, env=env)
    assert result.exit_code == 1
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o.get("error") for o in out] == [None, "line_too_long", "invalid_input", None]
    assert out[1] == {"error": "line_too_long", "line": 2, "message": "longer than 1000 bytes"}
    assert out[0]["entities"][0]["ref"] == out[3]["entities"][0]["ref"]
    assert EMAIL not in result.stdout


def _drain(fd: int, proc: subprocess.Popen[bytes]) -> bytes:
    """Everything written to the pty until the process ends (a full pty would block it)."""
    shown = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the other side closed
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    return shown


@pytest.mark.parametrize("terminal", [True, False])
def test_redact_shows_progress_on_a_terminal_only(tmp_path: Path, terminal: bool) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": f"{n} {EMAIL}"}) + "\n" for n in range(50)))
    out = tmp_path / "out.jsonl"
    master, slave = pty.openpty()
    with source.open("rb") as stdin, out.open("wb") as stdout:
        proc = subprocess.Popen(
            [*CLI, "redact"],
            env=env_for(tmp_path, TERM="xterm", COLUMNS="120"),
            stdin=stdin,
            stdout=stdout,
            stderr=slave if terminal else subprocess.PIPE,
        )
        os.close(slave)
        if terminal:
            screen = _drain(master, proc).decode(errors="replace")
            assert "redacting" in screen and "50 lines, 50 entities" in screen
        else:
            assert proc.communicate(timeout=120)[1] == b""
        assert proc.wait(timeout=120) == 0
    os.close(master)
    assert len(out.read_text().splitlines()) == 50
