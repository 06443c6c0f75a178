"""Migration 0003: matches the models, downgrades, and backfills data written before it."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import text

import coatcheck.middleware.models  # noqa: F401  (the gateway tables join the metadata)
from alembic import command
from coatcheck.vault import Base, make_engine, upgrade
from coatcheck.vault.db import ALEMBIC_DIR

TOUCHED = {"conversations", "stored_values", "gw_conversation_state"}


def _table_of(item: object) -> str | None:
    """The table a `compare_metadata` difference is about."""
    if isinstance(item, tuple):
        if isinstance(item[0], str) and item[0].startswith(("add_column", "remove_column")):
            return str(item[2])
        if isinstance(item[0], str) and item[0].startswith("modify_"):
            return str(item[2])
        item = item[1]
    table = getattr(item, "table", None)
    name = getattr(table, "name", None) or getattr(item, "name", None)
    return name if isinstance(name, str) else None


def test_migration_matches_models(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    flat = [d for group in diff for d in (group if isinstance(group, list) else [group])]
    assert [d for d in flat if _table_of(d) in TOUCHED] == []


def _downgrade(url: str, revision: str) -> None:
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
        conn.commit()
    engine.dispose()


def test_backfill_of_data_written_before_0003(db_url: str) -> None:
    _downgrade(db_url, "0002")
    engine = make_engine(db_url)
    with engine.begin() as conn:
        insert_conv = text(
            "INSERT INTO conversations (tenant, conversation_id, epoch, kek_version, "
            "wrapped_dek, created_at, shredded_at) VALUES ('t', :c, 1, 1, :w, 100, :s)"
        )
        conn.execute(insert_conv, {"c": "old-ended", "w": None, "s": 200.0})
        conn.execute(insert_conv, {"c": "old-live", "w": b"wrapped", "s": None})
        conn.execute(
            text(
                "INSERT INTO stored_values (conversation_pk, ref, entity_type, blind_index, "
                "ciphertext, created_at) SELECT id, 'abcdefghjk', 'EMAIL', NULL, NULL, 100 "
                "FROM conversations WHERE conversation_id = 'old-ended'"
            )
        )
        for conv, at in [("old-ended", 100), ("old-ended", 150), ("old-live", 120)]:
            conn.execute(
                text(
                    "INSERT INTO gw_history (conversation_id, direction, text, created_at) "
                    "VALUES (:c, 'in', 'x', :at)"
                ),
                {"c": conv, "at": at},
            )
        conn.execute(
            text(
                "INSERT INTO gw_history (conversation_id, direction, text, created_at) "
                "VALUES ('old-live', 'out', 'y', 180), ('no-pii', 'in', 'z', 130)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO gw_conversation_state (conversation_id, context_json, updated_at) "
                "VALUES ('old-ended', NULL, 200), ('ctx-only', '{}', 90)"
            )
        )
    upgrade(engine, "0007")  # the 0003 backfill is what this test is about
    with engine.connect() as conn:
        state = {
            row.conversation_id: tuple(row)[1:]
            for row in conn.execute(
                text(
                    "SELECT conversation_id, status, started_at, last_activity, ended_at "
                    "FROM gw_conversation_state"
                )
            )
        }
        epochs = dict(
            conn.execute(text("SELECT conversation_id, end_status FROM conversations")).all()
        )
        statuses = conn.execute(text("SELECT status FROM stored_values")).scalars().all()
    engine.dispose()
    assert state == {
        "old-ended": ("shredded", 100, 150, 200),
        "old-live": ("active", 120, 180, None),
        "no-pii": ("active", 130, 130, None),
        "ctx-only": ("active", 90, 90, None),
    }
    assert epochs == {"old-ended": "shredded", "old-live": None}
    assert statuses == ["shredded"]
