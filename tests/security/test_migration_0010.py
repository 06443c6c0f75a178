"""Migration 0010: a database whose conversations use raw sender ids is refused, whole.

Rewriting those ids (re-sealing the values bound to them, one audit event) needs the root
key and is not built; the migration must say so, name no id, and change nothing, while a
fresh database or one holding only pseudonymous conversations upgrades.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import insert, select, text

from coatcheck.middleware.models import ConversationState, HistoryEntry, RateCounter
from coatcheck.vault import make_engine, upgrade
from coatcheck.vault.db import ALEMBIC_DIR

SENDER = "+14155550123"
PSEUDONYM = "p_" + "a" * 26


def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    return ScriptDirectory.from_config(config)


# The revision 0010 follows (the lead re-chains migrations at merge time) and the head.
BEFORE = str(_scripts().get_revision("0010").down_revision)
HEAD = str(_scripts().get_current_head())


def _before_0010(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, BEFORE)
    return url


def _write(url: str, cid: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            insert(HistoryEntry.__table__).values(
                conversation_id=cid, direction="in", text="hi", created_at=1.0
            )
        )
        conn.execute(
            insert(ConversationState.__table__).values(
                conversation_id=cid, updated_at=1.0, status="active", started_at=1.0,
                last_activity=1.0,
            )
        )  # fmt: skip
        conn.execute(insert(RateCounter.__table__).values(sender=cid, window_start=0, count=1))
    engine.dispose()


def _version(url: str) -> str:
    engine = make_engine(url)
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    return str(version)


def test_raw_sender_ids_are_refused_and_nothing_changes(tmp_path: Path) -> None:
    url = _before_0010(tmp_path)
    _write(url, SENDER)
    with pytest.raises(CommandError) as refused:
        upgrade(url)
    message = str(refused.value)
    assert "1 conversation id(s)" in message and "subject erase" in message
    assert SENDER not in message and "4155550123" not in message
    assert _version(url) == BEFORE
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(select(HistoryEntry.conversation_id)).scalars().all() == [SENDER]
    engine.dispose()


@pytest.mark.parametrize("cid", [PSEUDONYM, None])  # pseudonymous rows; no rows at all
def test_pseudonymous_or_empty_databases_upgrade(tmp_path: Path, cid: str | None) -> None:
    url = _before_0010(tmp_path)
    if cid is not None:
        _write(url, cid)
    upgrade(url)
    assert _version(url) == HEAD  # 0010 and every migration after it


@pytest.mark.parametrize("cid", ["p_" + "a" * 25, "P_" + "A" * 26, "p_" + "1" * 26, "u1"])
def test_near_pseudonyms_count_as_raw(tmp_path: Path, cid: str) -> None:
    url = _before_0010(tmp_path)
    _write(url, cid)
    with pytest.raises(CommandError):
        upgrade(url)
