"""Invalid config files, through `coatcheck serve` and `coatcheck redact` alike: each one is
refused with ONE line naming the dotted path (never the value) and exit 2.  The line has
the form of every start-up failure (docs/operations.md): `error: <what>: <why>`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coatcheck.middleware.cli import app as cli_app

LONG_TYPE = "T" * 70  # passed the config once, then failed every message in the vault
CANARY = "zq7canary"  # a value that must never be echoed

# (YAML text, the dotted path the error must name)
INVALID: list[tuple[str, str]] = [
    ("custom_type:\n  - {name: ACCT, regex: 'ACC\\d+'}\n", "custom_type"),
    ("types:\n  EMAIL_ADRESS: {display: mask}\n", "types.EMAIL_ADRESS"),
    ("types:\n  PIN: {colour: red}\n", "types.PIN.colour"),
    ("types:\n  bad-name: {}\n", "types.bad-name"),
    ("types:\n  PASSWORD: {display: replacement}\n", "types.PASSWORD.replacement"),
    (
        f"types:\n  PIN: {{display: replacement, replacement: '{CANARY} x'}}\n",
        "types.PIN.replacement",
    ),
    ("types:\n  EMAIL_ADDRESS: {mask: {first: -1}}\n", "types.EMAIL_ADDRESS.mask.first"),
    ("types:\n  PIN: {pattern: '\\d*'}\n", "types.PIN.pattern"),
    (f"types:\n  PIN: {{pattern: '({CANARY}'}}\n", "types.PIN.pattern"),
    ("types:\n  EMAIL_ADDRESS: {retention: forever}\n", "types.EMAIL_ADDRESS.retention"),
    (f"types:\n  PIN: {{retention: {{retain: {CANARY}}}}}\n", "types.PIN.retention.retain"),
    ("types:\n  PIN: {ttl: 1y}\n", "types.PIN.ttl"),
    ("custom_types:\n  - {name: ACCT, regex: '(?=ACC)'}\n", "custom_types.0.regex"),
    (f"custom_types:\n  - {{name: {LONG_TYPE}, regex: 'x+'}}\n", "custom_types.0.name"),
    ("custom_types:\n  - {name: ACCT, regex: 'x+', validator: nope}\n", "custom_types.0.validator"),
    ("detection: {default_region: usa}\n", "detection.default_region"),
    ("actions: [1, 2]\n", "actions"),
    ("actions:\n  action_send: [email]\n", "actions.action_send.0"),
    ("grants: {ttl_seconds: -5}\n", "grants.ttl_seconds"),
    ("grants: {ttl: 5}\n", "grants.ttl"),
    (f"llm: {{response_pii: {CANARY}}}\n", "llm.response_pii"),
    ("llm: {redact_responses: true}\n", "llm.redact_responses"),
    (
        "export:\n  sinks:\n    - {jsonl: /tmp/x.jsonl, webhook: 'https://x.example/h'}\n",
        "export.sinks.0",
    ),
    (
        "external:\n  CUST_REF: {name: crm, url_template: 'https://crm.example/{ref}'}\n",
        "external.CUST_REF",
    ),
    (
        "custom_types:\n  - {name: CUST_REF, regex: 'CUST-\\d+'}\n"
        "external:\n  CUST_REF: {name: crm, url_template: 'https://crm.example/{ref}',\n"
        f"    auth: {{type: {CANARY}}}}}\n",
        "external.CUST_REF.auth",
    ),
]


def _env(tmp_path: Path, yaml_text: str) -> dict[str, str]:
    config = tmp_path / "coatcheck.yml"
    config.write_text(yaml_text, encoding="utf-8")
    return {
        "COATCHECK_CONFIG": str(config),
        "COATCHECK_DATABASE_URL": f"sqlite:///{tmp_path / 'cc.db'}",
        "COATCHECK_KEY_FILE": str(tmp_path / "cc.key"),
        "COATCHECK_APIKEYS_FILE": str(tmp_path / "cc.apikeys"),
        "COATCHECK_PORT": "1",  # never bound: the config is refused first
    }


@pytest.mark.parametrize("command", ["serve", "redact"])
@pytest.mark.parametrize(("yaml_text", "path"), INVALID)
def test_one_line_naming_the_path(tmp_path: Path, command: str, yaml_text: str, path: str) -> None:
    result = CliRunner().invoke(cli_app, [command], env=_env(tmp_path, yaml_text), input="")
    assert result.exit_code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: COATCHECK_CONFIG: {path}: ")
    assert len(line) > len(f"error: COATCHECK_CONFIG: {path}: ") + 5  # a message follows
    assert CANARY not in line
    assert not (tmp_path / "cc.db").exists()  # refused before anything was opened


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("- a list\n", "error: COATCHECK_CONFIG: the file must hold a mapping at the top level"),
        (f"types: [{CANARY}\n", "error: COATCHECK_CONFIG: not valid YAML at line 2, column 1"),
    ],
)
def test_unreadable_files(tmp_path: Path, yaml_text: str, message: str) -> None:
    for command in ("serve", "redact"):
        result = CliRunner().invoke(cli_app, [command], env=_env(tmp_path, yaml_text), input="")
        assert (result.exit_code, result.stderr) == (2, message + "\n")


@pytest.mark.parametrize("command", ["serve", "redact"])
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COATCHECK_DATABASE_URL", f"mysql://{CANARY}"),
        ("COATCHECK_MASTER_KEY", CANARY),
        ("COATCHECK_LLM_UPSTREAM_URL", f"ftp://{CANARY}.example/v1"),
        ("COATCHECK_LLM_UPSTREAM_URL", f"https://{CANARY}.example/v2"),  # not a /v1 base URL
        ("COATCHECK_LLM_UPSTREAM_URL", f"https://user:{CANARY}@api.example/v1"),
        ("COATCHECK_LLM_TIMEOUT_SECONDS", "0"),
    ],
)
def test_environment_settings_share_the_error_style(
    tmp_path: Path, command: str, variable: str, value: str
) -> None:
    env = {**_env(tmp_path, "{}\n"), variable: value}
    result = CliRunner().invoke(cli_app, [command], env=env, input="")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {variable}: ") and CANARY not in line


@pytest.mark.parametrize("command", ["serve", "redact"])
def test_a_real_process_prints_the_line_and_no_traceback(tmp_path: Path, command: str) -> None:
    env = {**os.environ, **_env(tmp_path, "types:\n  PASSWORD: {display: replacement}\n")}
    argv = [sys.executable, "-c", "from coatcheck.middleware.cli import main; main()", command]
    done = subprocess.run(argv, env=env, input="", capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == (
        "error: COATCHECK_CONFIG: types.PASSWORD.replacement: required when display is "
        "replacement\n"
    )
    assert done.stdout == ""
