"""Shared fixtures: a vault on SQLite (tmp file) and on PostgreSQL (own schema per test).

PostgreSQL params run when `COATCHECK_TEST_PG_URL` is set (CI sets it and fails when the
server is unreachable); otherwise they are skipped with a reason.

`COATCHECK_TEST_KEY_PROVIDER=pkcs11` runs every vault built from the `master_key` fixture
on a fresh SoftHSM2 token instead of a host root (CI runs the vault suite once that way):
`master_key` is then a `Pkcs11KeyProvider`, and `key_spec` the picklable settings that
open the same token in another process.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from coatcheck.vault import Vault, make_engine, upgrade
from coatcheck.vault.db import normalise_url
from coatcheck.vault.keys import KeyProvider, ProviderSettings, open_provider

PG_URL = os.environ.get("COATCHECK_TEST_PG_URL")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not PG_URL, reason="COATCHECK_TEST_PG_URL not set"),
        ],
    ),
]


class FakeClock:
    """A settable clock to inject into the vault (no monkeypatching)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


KEY_PROVIDER = os.environ.get("COATCHECK_TEST_KEY_PROVIDER", "env")


@pytest.fixture
def key_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes | ProviderSettings:
    """Raw master-key bytes, or (PKCS#11 runs) the settings of a fresh SoftHSM2 token."""
    if KEY_PROVIDER != "pkcs11":
        return os.urandom(32)
    from tests.keys.softhsm import init_token, missing

    reason = missing()
    if reason is not None:
        pytest.fail(f"COATCHECK_TEST_KEY_PROVIDER=pkcs11 but {reason}")
    token = init_token(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    return ProviderSettings(
        kind="pkcs11", pkcs11_module=token.module, pkcs11_token=token.label, pkcs11_pin=token.pin
    )


def open_keys(spec: bytes | ProviderSettings) -> bytes | KeyProvider:
    """What `Vault` takes for a `key_spec` (a provider opened here: close it when done)."""
    return spec if isinstance(spec, bytes) else open_provider(spec)


@pytest.fixture
def master_key(key_spec: bytes | ProviderSettings) -> Iterator[bytes | KeyProvider]:
    """The vault's keys: master-key bytes, or an open PKCS#11 provider (closed after)."""
    keys = open_keys(key_spec)
    yield keys
    if isinstance(keys, KeyProvider):
        keys.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL (sqlite file, or a fresh `cc_test_*` PG schema)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'vault.db'}"
        upgrade(url)
        yield url
        return
    assert PG_URL is not None
    schema = f"cc_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def kill_pooled_backend(engine: Engine) -> int:
    """Terminate the server backend of `engine`'s pooled connection (pool_size=1); its pid."""
    assert PG_URL is not None
    with engine.connect() as conn:
        pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    killer = make_engine(PG_URL)
    try:
        with killer.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    finally:
        killer.dispose()
    return pid


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """The engine under the `vault` fixture (the vault does not hand its engine out)."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def vault(engine: Engine, master_key: bytes | KeyProvider, clock: FakeClock) -> Vault:
    return Vault(engine, master_key, tenant="t1", clock=clock)
