"""Finding 8: `COATCHECK_TENANT` separated vault values but not the gateway's tables.

The attack: two "tenants" on one database, `acme` and `globex`.  Globex's staff read
acme's transcripts through the history API (the gateway's tables have no tenant column).
The setting is removed: where it is set, `coatcheck serve` (and every command that reads
the settings) stops at start with one line naming it and exit 2, so no second tenant can
be started on a shared database.  Unset, the service runs, and values stored under the
old default tenant stay readable (the vault's tenant name is fixed at `default`).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.vault import Vault
from coatcheck.vault.keys import FileKeyProvider
from tests.ops.live import free_port
from tests.security.served import run_cli, serve

SECRET = "tenant.canary@example.org"


def test_a_second_tenant_cannot_read_the_firsts_transcripts(tmp_path: Path) -> None:
    with serve(tmp_path) as acme:  # tenant one (the default)
        assert acme.say("acme-user", f"write to {SECRET}").status_code == 200
    result = run_cli(
        tmp_path,
        "serve",
        "--port",
        str(free_port()),
        env={"COATCHECK_TENANT": "globex"},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: COATCHECK_TENANT: removed")
    assert "database" in lines[0] and "globex" not in lines[0]
    assert "Traceback" not in result.stderr and "Uvicorn running" not in result.stdout


@pytest.mark.parametrize(
    "command",
    [["apikey", "list"], ["redact"], ["audit", "verify"]],
    ids=["apikey", "redact", "audit"],
)
def test_every_command_refuses_the_setting(tmp_path: Path, command: list[str]) -> None:
    result = run_cli(tmp_path, *command, env={"COATCHECK_TENANT": "default"})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: COATCHECK_TENANT: removed")


def test_values_stored_under_the_old_default_tenant_stay_readable(tmp_path: Path) -> None:
    """A value the vault stored as tenant `default` (what every deployment without the
    variable wrote) is revealed by the service, through a granted reveal."""
    with serve(tmp_path):  # creates the database, its key file and the schema
        pass
    engine = create_engine(f"sqlite:///{tmp_path / 'sec.db'}")
    with FileKeyProvider(tmp_path / "sec.key") as provider:
        vault = Vault(engine, provider, tenant="default")
        # under the sender's pseudonym, as the channel edge stores it (a raw id would be
        # moved to it at the next start: tests/security/test_migration_0010.py)
        conversation = vault.pseudonym("old-user")
        ref_id = vault.tokenize(conversation, "EMAIL_ADDRESS", SECRET)
    engine.dispose()
    config = {"actions": {"action_mail": ["EMAIL_ADDRESS"]}}
    with serve(tmp_path, config=config) as live:
        grant = httpx.post(
            f"{live.url}/v1/grants",
            json={
                "conversation_id": conversation,
                "entity_types": ["EMAIL_ADDRESS"],
                "purpose": "tenant check",
                "action": "action_mail",
            },
            headers=live.auth(Role.ACTION_SERVER),
            timeout=30,
        )
        assert grant.status_code == 200, grant.text
        shown = httpx.post(
            f"{live.url}/v1/reveal",
            json={
                "conversation_id": conversation,
                "ref": f"CC_EMAIL_ADDRESS_{ref_id}",
                "grant": grant.json()["grant"],
            },
            headers=live.auth(Role.ACTION_SERVER),
            timeout=30,
        )
        assert shown.status_code == 200, shown.text
        assert shown.json()["value"] == SECRET
