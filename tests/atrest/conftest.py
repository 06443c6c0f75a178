"""Fixtures for the at-rest tests: providers (a fresh SoftHSM2 token, OpenBao transit), a
vault factory, copies of a database as a backup or a thief would take them."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from coatcheck.vault import Vault, make_engine
from coatcheck.vault.db import normalise_url, sqlite_path
from coatcheck.vault.keys import FileKeyProvider, KeyProvider
from tests.conftest import PG_URL, FakeClock
from tests.keys.conftest import bao_server, soft_token, transit_mount  # noqa: F401  (fixtures)
from tests.keys.softhsm import SoftToken

DAY = 86_400.0
GRACE = 3_600.0
PAST_BOUND = DAY + GRACE + 1  # from any time in a bucket to past its KEK's destroy


@pytest.fixture
def file_provider(tmp_path: Path) -> Iterator[KeyProvider]:
    with FileKeyProvider(tmp_path / f"root-{uuid.uuid4().hex[:6]}.key") as provider:
        yield provider


@pytest.fixture
def token_provider(soft_token: SoftToken) -> Iterator[KeyProvider]:  # noqa: F811
    from coatcheck.vault.keys.pkcs11 import Pkcs11KeyProvider

    with Pkcs11KeyProvider(soft_token.module, soft_token.label, soft_token.pin) as provider:
        yield provider


VaultFactory = Callable[..., Vault]


@pytest.fixture
def make_vault(clock: FakeClock) -> Iterator[VaultFactory]:
    """Vaults over URLs (their engines disposed after the test)."""
    engines: list[Engine] = []

    def build(url: str, keys: bytes | KeyProvider, **kwargs: Any) -> Vault:
        engine = make_engine(url)
        engines.append(engine)
        kwargs.setdefault("tenant", "t1")
        kwargs.setdefault("clock", clock)
        return Vault(engine, keys, **kwargs)

    yield build
    for engine in engines:
        engine.dispose()


@pytest.fixture
def copy_database(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A consistent copy of a database (a backup, or a thief's copy); the copy's URL."""
    schemas: list[str] = []

    def copy(url: str) -> str:
        path = sqlite_path(url)
        if path is not None:
            target = tmp_path / f"copy-{uuid.uuid4().hex[:6]}.db"
            with sqlite3.connect(path) as source, sqlite3.connect(target) as dest:
                source.backup(dest)
            return f"sqlite:///{target}"
        return _copy_pg(url, schemas)

    yield copy
    if schemas:
        assert PG_URL is not None
        admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _copy_pg(url: str, schemas: list[str]) -> str:
    """Every table of the URL's schema copied into a new schema (rows, keys, sequences)."""
    assert PG_URL is not None
    source_engine = create_engine(normalise_url(url))
    schema = f"cc_copy_{uuid.uuid4().hex[:10]}"
    schemas.append(schema)
    with source_engine.begin() as conn:
        source = conn.execute(text("SELECT current_schema()")).scalar_one()
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        for table in inspect(conn).get_table_names(schema=source):
            conn.execute(
                text(f'CREATE TABLE "{schema}"."{table}" (LIKE "{source}"."{table}" INCLUDING ALL)')
            )
            conn.execute(
                text(f'INSERT INTO "{schema}"."{table}" SELECT * FROM "{source}"."{table}"')
            )
    source_engine.dispose()
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


def sqlite_file(url: str) -> Path:
    path = sqlite_path(url)
    assert path is not None
    return path


def is_pg(url: str) -> bool:
    return make_url(normalise_url(url)).get_backend_name() == "postgresql"
