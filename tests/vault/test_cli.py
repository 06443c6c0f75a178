"""`coatcheck db upgrade`, `keys rotate`, `audit verify` through the real typer app."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from coatcheck.middleware.cli import app
from coatcheck.vault import make_engine
from coatcheck.vault.models import AuditRow


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "COATCHECK_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "COATCHECK_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
    }


def test_upgrade_rotate_verify_and_broken_chain(env: dict[str, str]) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    rotated = runner.invoke(app, ["keys", "rotate"], env=env)
    assert rotated.exit_code == 0 and "1 KEKs retired" in rotated.output
    ok = runner.invoke(app, ["audit", "verify"], env=env)  # kek_destroy, rotate
    assert ok.exit_code == 0 and "audit chain ok: 2 rows" in ok.output
    engine = make_engine(env["COATCHECK_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(update(AuditRow.__table__).values(actor="mallory"))
    engine.dispose()
    assert runner.invoke(app, ["audit", "verify", "--incremental"], env=env).exit_code == 0
    broken = runner.invoke(app, ["audit", "verify"], env=env)  # the whole chain
    assert broken.exit_code == 1 and "row 1" in broken.output


def test_placeholder_key_is_refused_naming_the_setting(env: dict[str, str]) -> None:
    env["COATCHECK_MASTER_KEY"] = base64.b64encode(b"changeme" * 4).decode()
    result = CliRunner().invoke(app, ["keys", "rotate"], env=env)
    assert result.exit_code == 2 and "COATCHECK_MASTER_KEY" in result.output
