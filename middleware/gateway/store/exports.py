"""The export redaction config: one row per tenant, its version bumped on every change."""

from __future__ import annotations

from sqlalchemy import select

from coatcheck.middleware.gateway.store.db import Db
from coatcheck.middleware.gateway.store.statements import EXPORT, dialect_insert

__all__ = ["ExportConfigs"]


class ExportConfigs:
    """Read (lock-free, one indexed row) and write (one upsert) the stored config JSON."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def read(self, tenant: str) -> tuple[str | None, int] | None:
        """`(config JSON or None for the default, version)`, or None when never set."""
        rows = self._db.read(
            select(EXPORT.c.config_json, EXPORT.c.version).where(EXPORT.c.tenant == tenant)
        )
        return (rows[0].config_json, int(rows[0].version)) if rows else None

    def write(self, tenant: str, config_json: str | None) -> int:
        """Store `config_json` (None: the default) and bump the version; the new version."""
        with self._db.transaction() as tx:
            stmt = dialect_insert(tx.dialect, EXPORT).values(
                tenant=tenant, config_json=config_json, version=1, updated_at=self._db.clock()
            )
            upsert = stmt.on_conflict_do_update(
                index_elements=[EXPORT.c.tenant],
                set_={
                    "config_json": stmt.excluded.config_json,
                    "version": EXPORT.c.version + 1,
                    "updated_at": stmt.excluded.updated_at,
                },
            ).returning(EXPORT.c.version)
            return int(tx.execute(upsert).scalar_one())
