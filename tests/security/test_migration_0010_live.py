"""Migration 0010 against a running service: an existing deployment upgrades in place.

The database is written the way the version before pseudonyms did (values vaulted under
the raw phone number, history and state keyed by it); then `coatcheck serve` starts on it.
Before this step existed the start failed (0010 refused such a database); now each worker
moves the conversation to its pseudonym before it serves: staff find the old history by
the real number, the same value said again gets the reference it had before the move (the
renamed epoch still deduplicates), `coatcheck audit verify` reads ok with one `migrate`
event per step (0010's move, 0013's sealing of the audit row that was chained with the
number), and the number is in no file the service keeps (database, WAL, DEBUG log, export).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.models import ConversationState, HistoryEntry
from coatcheck.vault import Vault, make_engine, upgrade
from coatcheck.vault.keys import FileKeyProvider
from tests.security.live_gateway import CLI, ROOT, found_in, live_gateway

SENDER = "+14155550199"
FORMS = [SENDER, "14155550199", "4155550199"]
EMAIL = "old.user@example.org"
CONFIG: dict[str, Any] = {"types": {"EMAIL_ADDRESS": {"confirm": False}}}


def _allow(_state: Any) -> None:
    return None


def _echo(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"recipient_id": payload["sender"], "text": "noted"}]


def _old_deployment(refs: dict[str, str]) -> Any:
    def prepare(database_url: str, key_file: Path) -> None:
        upgrade(database_url, "0007")  # the schema of the version before pseudonyms
        engine = make_engine(database_url)
        with FileKeyProvider(key_file) as provider:
            vault = Vault(engine, provider)
            ref = vault.tokenize(SENDER, "EMAIL_ADDRESS", EMAIL)
            refs["email"] = "CC_EMAIL_ADDRESS_" + ref
            # an audited reveal: its audit row is chained with the raw number (0013 seals it)
            assert vault.reveal_for(SENDER, ref, actor="agent", purpose="p", policy=_allow)
        with engine.begin() as conn:
            line = f"mail me at {refs['email']}"
            conn.execute(
                insert(HistoryEntry.__table__).values(
                    conversation_id=SENDER, direction="in", text=line, created_at=1.0
                )
            )
            conn.execute(
                insert(ConversationState.__table__).values(
                    conversation_id=SENDER, updated_at=1.0, status="active", started_at=1.0,
                    last_activity=1.0,
                )
            )  # fmt: skip
        engine.dispose()

    return prepare


def test_an_existing_deployment_moves_to_pseudonyms_at_start(tmp_path: Path) -> None:
    refs: dict[str, str] = {}
    with live_gateway(tmp_path, _echo, CONFIG, _old_deployment(refs)) as live:
        found = live.post("/v1/senders/history", Role.VIEWER, {"sender": SENDER})
        assert found.status_code == 200, found.text
        body = found.json()
        assert refs["email"] in json_text(body)  # the old line, under the pseudonym
        live.say(SENDER, f"it is still {EMAIL}")
        meta = live.bot.received[-1]["metadata"]["coatcheck"]
        assert [e["ref"] for e in meta["entities"]] == [refs["email"]]  # deduplicated
        assert live.bot.received[-1]["sender"].startswith("p_")
        engine = make_engine(f"sqlite:///{live.dir / 'cc.db'}")
        with engine.connect() as conn:  # the move vaulted it; the message found it there
            senders = conn.execute(
                text("SELECT ref FROM stored_values WHERE entity_type = 'SENDER_ID'")
            ).all()
            events = conn.execute(
                text("SELECT purpose, conversation_id FROM audit_log WHERE action = 'migrate'")
            ).all()
        engine.dispose()
        assert [f"CC_SENDER_ID_{r.ref}" for r in senders] == [meta["sender"]]
        assert [tuple(e) for e in events] == [("pseudonyms:1", None), ("audit-ids:1", None)]
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "COATCHECK_DATABASE_URL": f"sqlite:///{live.dir / 'cc.db'}",
            "COATCHECK_KEY_FILE": str(tmp_path / "cc.key"),
        }
        env.pop("COATCHECK_MASTER_KEY", None)
        verify = subprocess.run(
            [*CLI, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120
        )
        assert verify.returncode == 0 and "audit chain ok" in verify.stdout, verify.stderr
        log = (live.dir / "server.log").read_text()
        assert "migration 0010: 1 conversations moved to pseudonyms" in log
        bot = json_text(live.bot.received)
        assert found_in(live, FORMS, ("history", found.text), ("bot", bot)) == []


def json_text(body: Any) -> str:
    return json.dumps(body)
