"""Alembic environment: targets the shared `Base.metadata` (vault + gateway tables).

`coatcheck.vault.db.upgrade` hands over a connection through `config.attributes["connection"]`;
the alembic CLI falls back to `COATCHECK_DATABASE_URL`.
"""

from __future__ import annotations

import contextlib
import os

from sqlalchemy.engine import Connection

from alembic import context
from coatcheck.vault.db import make_engine
from coatcheck.vault.models import Base

with contextlib.suppress(ImportError):  # the gateway's tables join the metadata when present
    import coatcheck.middleware.models  # noqa: F401

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = os.environ.get("COATCHECK_DATABASE_URL", "sqlite:///coatcheck.db")
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()


run_online()
