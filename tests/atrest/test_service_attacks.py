"""The issue's attacks on a running gateway (the real app, its lifespan, its own files).

A reader with the key file and the database files tries the recovery methods of issue 15;
a database writer rewrites the audit trail the way the issue did (recomputing every link
with SHA-256, as the old chain had them).  Each attack succeeds on the code before this
change (checked once: see the branch's report) and fails here.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from coatcheck.middleware.cli import app as cli
from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.render import parse_references
from coatcheck.vault.keyfile import read_key_file
from coatcheck.vault.keys import FileKeyProvider
from tests.atrest.recovery import read_files, recover, sqlite_findings
from tests.harness import open_gateway
from tests.service.gateway_helpers import Service, make_settings

VICTIM = "victim.canary@example.org"
BYSTANDER = "bystander.canary@example.org"
REVEALS = 450


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Service]:
    client, keys, clock = open_gateway(make_settings(tmp_path))  # the built-in echo bot
    yield Service(client, keys, clock)
    client.__exit__(None, None, None)


def _db(tmp_path: Path) -> Path:
    return tmp_path / "cc.db"


def _reference(service: Service, sender: str, message: str) -> str:
    answer = service.say(sender, message)
    assert answer.status_code == 200, answer.text
    [ref] = parse_references(answer.json()[0]["text"])
    return ref.reference


def test_a_shredded_value_does_not_come_back_from_the_wal(gateway: Service, tmp_path: Path) -> None:
    for n in range(20):
        _reference(gateway, f"n{n}", f"I am user{n}@example.org")
    _reference(gateway, "victim", f"mail me at {VICTIM}")
    _reference(gateway, "bystander", f"mail me at {BYSTANDER}")
    ended = gateway.client.post("/v1/conversations/victim/end", headers=gateway.auth(Role.CHANNEL))
    assert ended.status_code == 200 and ended.json()["status"] == "shredded"

    key_file = tmp_path / "coatcheck.key"
    db, wal, _ = read_files(_db(tmp_path))
    with FileKeyProvider(key_file) as root:
        opened = recover(sqlite_findings([(db, wal)]), root, read_key_file(key_file))
    assert BYSTANDER in opened  # the method reads what is kept
    assert VICTIM not in opened


def test_the_database_files_are_private(gateway: Service, tmp_path: Path) -> None:
    _reference(gateway, "someone", f"mail me at {BYSTANDER}")
    for suffix in ("", "-wal", "-shm"):
        path = tmp_path / f"cc.db{suffix}"
        assert path.exists(), suffix
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, suffix


# -- the audit trail -------------------------------------------------------------------------


def _attacker_link(row: dict[str, Any], prev: str) -> str:
    """The old chain's link: SHA-256 over the row's canonical JSON (no secret)."""
    fields = [
        row["id"],
        repr(row["at"]),
        row["tenant"],
        row["actor"],
        row["action"],
        row["conversation_id"],
        row["ref"],
        row["entity_type"],
        row["purpose"],
        row["outcome"],
        prev,
    ]
    canonical = json.dumps(fields, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _relink(conn: sqlite3.Connection, start: int) -> None:
    """Recompute every link from row `start` on and move the head to the last row."""
    conn.row_factory = sqlite3.Row
    before = conn.execute("SELECT row_hash FROM audit_log WHERE id = ?", (start - 1,)).fetchone()
    prev = before["row_hash"] if before else "0" * 64
    rows = [
        dict(r) for r in conn.execute("SELECT * FROM audit_log WHERE id >= ? ORDER BY id", (start,))
    ]
    for row in rows:
        link = _attacker_link(row, prev)
        conn.execute(
            "UPDATE audit_log SET prev_hash = ?, row_hash = ? WHERE id = ?", (prev, link, row["id"])
        )
        prev = link
    last = rows[-1]["id"] if rows else start - 1
    conn.execute("UPDATE audit_head SET last_id = ?, last_hash = ? WHERE id = 1", (last, prev))


def _edit_reveals_into_refusals(conn: sqlite3.Connection) -> None:
    first = conn.execute("SELECT MIN(id) FROM audit_log WHERE action = 'reveal'").fetchone()[0]
    conn.execute(
        "UPDATE audit_log SET outcome = 'refused:forbidden' WHERE action = 'reveal' AND id % 3 = 0"
    )
    _relink(conn, first)


def _delete_and_renumber(conn: sqlite3.Connection) -> None:
    first = conn.execute("SELECT MIN(id) FROM audit_log WHERE action = 'reveal'").fetchone()[0] + 10
    conn.execute("DELETE FROM audit_log WHERE id >= ? AND id < ?", (first, first + 366))
    ids = [
        r[0] for r in conn.execute("SELECT id FROM audit_log WHERE id > ? ORDER BY id", (first,))
    ]
    for old in ids:
        conn.execute("UPDATE audit_log SET id = ? WHERE id = ?", (old - 366, old))
    _relink(conn, first)


def _truncate_and_move_head(conn: sqlite3.Connection) -> None:
    last = conn.execute("SELECT MAX(id) FROM audit_log").fetchone()[0] - 100
    conn.execute("DELETE FROM audit_log WHERE id > ?", (last,))
    link = conn.execute("SELECT row_hash FROM audit_log WHERE id = ?", (last,)).fetchone()[0]
    conn.execute("UPDATE audit_head SET last_id = ?, last_hash = ? WHERE id = 1", (last, link))
    conn.execute("DELETE FROM audit_verifications")  # and every trace of a later verification


@pytest.fixture
def audited(gateway: Service, tmp_path: Path) -> dict[str, str]:
    """A database with a few hundred audited reveals, the gateway stopped; the CLI's env."""
    ref = _reference(gateway, "victim", f"mail me at {VICTIM}")
    body = {"conversation_id": gateway.cid("victim"), "ref": ref, "purpose": "ticket 7"}
    for _ in range(REVEALS):
        done = gateway.client.post("/v1/reveal", json=body, headers=gateway.auth(Role.AUDITOR))
        assert done.status_code == 200
    return {
        "COATCHECK_DATABASE_URL": f"sqlite:///{_db(tmp_path)}",
        "COATCHECK_KEY_FILE": str(tmp_path / "coatcheck.key"),
    }


def _verify(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli, ["audit", "verify", *args], env=env)


@pytest.mark.parametrize(
    "rewrite",
    [_edit_reveals_into_refusals, _delete_and_renumber, _truncate_and_move_head],
    ids=["edit", "delete-renumber", "truncate-move-head"],
)
def test_a_database_writer_cannot_rewrite_the_audit_trail(
    audited: dict[str, str], tmp_path: Path, rewrite: Any
) -> None:
    runner = CliRunner()
    clean = _verify(audited)
    assert clean.exit_code == 0 and "audit chain ok" in clean.output, clean.output
    checkpoint = runner.invoke(cli, ["audit", "checkpoint"], env=audited)
    assert checkpoint.exit_code == 0
    kept = tmp_path / "checkpoints.jsonl"  # the operator keeps it outside the database
    kept.write_text(checkpoint.output)

    with sqlite3.connect(_db(tmp_path)) as conn:
        rewrite(conn)

    broken = _verify(audited, "--checkpoint", str(kept))
    assert broken.exit_code == 1 and "BROKEN" in broken.output, broken.output
    if rewrite is not _truncate_and_move_head:  # a truncation needs something from outside
        assert _verify(audited).exit_code == 1
    # The viewer shows the newest recorded result: the broken one.
    engine = create_engine(audited["COATCHECK_DATABASE_URL"])
    with engine.connect() as conn:
        newest = conn.execute(text("SELECT ok FROM audit_verifications ORDER BY id DESC")).first()
    engine.dispose()
    assert newest is not None and not newest.ok
