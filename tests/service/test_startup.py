"""Settings validation, first-run bootstrap, the echo bot and the `coatcheck` CLI commands."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from gateway_helpers import make_settings
from typer.testing import CliRunner

from coatcheck.middleware.app import create_app
from coatcheck.middleware.cli import app as cli_app
from coatcheck.middleware.config import ConfigError
from coatcheck.middleware.render import parse_references
from coatcheck.middleware.settings import load_settings

EMAIL = "jane.doe@example.com"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"COATCHECK_PORT": "0"}, "COATCHECK_PORT"),
        ({"COATCHECK_DATABASE_URL": "mysql://x"}, "COATCHECK_DATABASE_URL"),
        ({"COATCHECK_RATE_LIMIT": "-1"}, "COATCHECK_RATE_LIMIT"),
        ({"COATCHECK_MAX_JSON_DEPTH": "zero"}, "COATCHECK_MAX_JSON_DEPTH"),
        ({"COATCHECK_IDLE_TIMEOUT_SECONDS": "5"}, "COATCHECK_IDLE_TIMEOUT_SECONDS"),
        ({"COATCHECK_IDLE_TIMEOUT_SECONDS": "-1"}, "COATCHECK_IDLE_TIMEOUT_SECONDS"),
        ({"COATCHECK_IDLE_TIMEOUT_SECONDS": "soon"}, "COATCHECK_IDLE_TIMEOUT_SECONDS"),
        ({"COATCHECK_SWEEP_INTERVAL_SECONDS": "-3"}, "COATCHECK_SWEEP_INTERVAL_SECONDS"),
        ({"COATCHECK_SWEEP_INTERVAL_SECONDS": "7200"}, "COATCHECK_SWEEP_INTERVAL_SECONDS"),
    ],
)
def test_settings_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], name: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.name == name
    assert str(caught.value).startswith(f"{name}: ")
    assert next(iter(env.values())) not in str(caught.value)  # names, never echoes


def test_settings_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COATCHECK_PORT", "9001")
    assert load_settings().port == 9001


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [("actions: [1, 2]\n", "actions"), ("grants: {ttl_seconds: -5}\n", "grants.ttl_seconds")],
)
def test_bad_yaml_sections_name_the_field(tmp_path: Path, yaml_text: str, field: str) -> None:
    config = tmp_path / "bad.yml"
    config.write_text(yaml_text)
    with pytest.raises(ValueError, match=field):
        create_app(make_settings(tmp_path, config=config))


def test_first_run_writes_private_key_files(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, bot_url=None)
    with TestClient(create_app(settings)) as client:
        assert settings.apikeys_file.exists() and settings.key_file.exists()
        for path in (settings.apikeys_file, settings.key_file):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        keys = dict(line.split("=", 1) for line in settings.apikeys_file.read_text().split())
        assert sorted(keys) == ["admin", "channel"]
        response = client.post(
            "/webhooks/rest/webhook",
            json={"sender": "new", "message": f"hello, I am {EMAIL}"},
            headers={"Authorization": f"Bearer {keys['channel']}"},
        )
        # The built-in echo bot answers with the redacted text.
        [reply] = response.json()
        assert reply["recipient_id"] == "new"
        assert EMAIL not in reply["text"]
        assert parse_references(reply["text"])[0].entity_type == "EMAIL_ADDRESS"
    # A second start finds keys and creates nothing new.
    before = settings.apikeys_file.read_text()
    with TestClient(create_app(settings)):
        assert settings.apikeys_file.read_text() == before


@pytest.mark.parametrize(("role", "code"), [("viewer", 0), ("root", 2)])
def test_cli_apikey_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, role: str, code: int
) -> None:
    monkeypatch.setenv("COATCHECK_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COATCHECK_KEY_FILE", str(tmp_path / "cli.key"))
    result = CliRunner().invoke(cli_app, ["apikey", "create", "--role", role])
    assert result.exit_code == code
    if code == 0:
        assert result.stdout.strip().startswith("cck_")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_refuses_a_bad_config_before_any_worker(tmp_path: Path, workers: str) -> None:
    """One line naming the field and exit 2; no traceback, no worker restart loop."""
    config = tmp_path / "bad.yml"
    config.write_text("types:\n  EMAIL_ADDRESS:\n    retention: forever\n")
    env = {
        **os.environ,
        "COATCHECK_CONFIG": str(config),
        "COATCHECK_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "COATCHECK_KEY_FILE": str(tmp_path / "serve.key"),
        "COATCHECK_APIKEYS_FILE": str(tmp_path / "serve.apikeys"),
        "COATCHECK_PORT": "1",  # never bound: the config is refused first
    }
    argv = [sys.executable, "-c", "from coatcheck.middleware.cli import main; main()", "serve"]
    done = subprocess.run(
        [*argv, "--workers", workers], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "types.EMAIL_ADDRESS.retention" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
