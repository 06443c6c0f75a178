"""The operator commands of issue 15 through the real typer app: keys, audit, subject."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from coatcheck.middleware.cli import app as cli
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.vault import make_engine

SENDER = "+14155550123"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "COATCHECK_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "COATCHECK_KEY_FILE": str(tmp_path / "coatcheck.key"),
    }


def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_subject_pseudonym_export_and_erase(env: dict[str, str]) -> None:
    code, pseudonym = _run(env, "subject", "pseudonym", "--sender", SENDER)
    pseudonym = pseudonym.strip()
    assert code == 0 and pseudonym.startswith("p_") and SENDER not in pseudonym
    from coatcheck.vault import open_vault
    from coatcheck.vault.keys import ProviderSettings

    vault = open_vault(
        env["COATCHECK_DATABASE_URL"],
        ProviderSettings(key_file=Path(env["COATCHECK_KEY_FILE"])),
        "default",
    )
    vault.tokenize(pseudonym, "EMAIL_ADDRESS", "jane@example.org")
    vault.tokenize("someone-else", "EMAIL_ADDRESS", "other@example.org")
    vault.close()
    engine = make_engine(env["COATCHECK_DATABASE_URL"])
    history = text(
        "INSERT INTO gw_history (conversation_id, direction, text, created_at) "
        "VALUES (:cid, 'in', 'hi', 1)"
    )
    with engine.begin() as conn:  # the gateway's rows of the person (raw id, legacy edge)
        conn.execute(history, [{"cid": SENDER}, {"cid": "someone-else"}])
    GatewayStore(engine).conversations.set_rule(SENDER, None)

    code, out = _run(env, "subject", "export", "--sender", SENDER, "--actor", "dpo")
    doc = json.loads(out)
    assert code == 0 and doc["subject"] == pseudonym
    assert [v["value"] for v in doc["values"]] == ["jane@example.org"]
    code, out = _run(env, "subject", "erase", "--sender", SENDER, "--actor", "dpo")
    assert code == 0 and "1 conversations" in out and "final for the live database" in out
    assert "gateway: 1 history lines, 1 states, 0 rate rows" in out
    with engine.connect() as conn:
        left = conn.execute(text("SELECT conversation_id FROM gw_history")).scalars().all()
        states = conn.execute(text("SELECT count(*) FROM gw_conversation_state")).scalar_one()
    engine.dispose()
    assert (left, states) == (["someone-else"], 0)
    code, out = _run(env, "subject", "export", "--sender", SENDER)
    assert code == 0 and json.loads(out)["values"] == []


def test_audit_checkpoint_against_a_pinned_key(env: dict[str, str], tmp_path: Path) -> None:
    assert _run(env, "keys", "maintain")[0] == 0  # some activity: a pass, audited or not
    code, public = _run(env, "audit", "public-key")
    assert code == 0 and len(base64.b64decode(public.strip())) == 32
    code, line = _run(env, "audit", "checkpoint")
    assert code == 0 and json.loads(line)["v"] == 1
    kept = tmp_path / "checkpoints"
    kept.write_text(line)
    code, out = _run(
        env, "audit", "verify", "--checkpoint", str(kept), "--public-key", public.strip()
    )
    assert code == 0 and "1 checkpoints hold" in out
    other = base64.b64encode(os.urandom(32)).decode()
    code, out = _run(env, "audit", "verify", "--checkpoint", str(kept), "--public-key", other)
    assert code == 2 and "not signed by the pinned key" in out
    code, out = _run(
        env, "audit", "verify", "--public-key", "not base64!", "--checkpoint", str(kept)
    )
    assert code == 2 and "--public-key" in out


def test_keys_rotate_root_from_a_previous_key_file(env: dict[str, str], tmp_path: Path) -> None:
    assert _run(env, "keys", "rotate")[0] == 0
    old = Path(env["COATCHECK_KEY_FILE"])
    rotated = {**env, "COATCHECK_KEY_FILE": str(tmp_path / "new.key")}
    code, out = _run({**rotated, "COATCHECK_PREVIOUS_KEY_FILES": str(old)}, "keys", "rotate-root")
    assert code == 0 and "nothing names an older root" in out, out
    code, out = _run(rotated, "audit", "verify")  # the new key file alone
    assert code == 0 and "audit chain ok" in out
