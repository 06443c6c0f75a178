"""Fixtures: every key provider, and a fresh SoftHSM2 token per test.

The token lives in `tmp_path` (its own `softhsm2.conf`, `softhsm2-util --init-token`, a root
key made by `create_root_key`).  Without the softhsm2 module or python-pkcs11 the PKCS#11
cases are skipped with the reason, unless `COATCHECK_REQUIRE_PKCS11=1` (CI sets it): then
they fail, so CI cannot pass without having run them.  The transit provider runs against
one real OpenBao dev server per session (`bao` from the `kms` extra), a fresh transit mount
per test; `COATCHECK_REQUIRE_TRANSIT=1` makes its absence a failure.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from coatcheck.vault.keys import EnvKeyProvider, FileKeyProvider, KeyProvider
from tests.keys import openbao
from tests.keys.softhsm import SoftToken, init_token, missing

__all__ = ["PROVIDERS", "SoftToken", "TransitMount", "make_provider"]

PROVIDERS = ["file", "env", "pkcs11", "transit"]


def _need(reason: str | None, flag: str) -> None:
    """Skip with the reason, or fail when CI's `flag` says the provider must run."""
    if reason is None:
        return
    if os.environ.get(flag) == "1":
        pytest.fail(f"{flag}=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def soft_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftToken:
    """A new SoftHSM2 token with a root key, reachable through SOFTHSM2_CONF."""
    _need(missing(), "COATCHECK_REQUIRE_PKCS11")
    token = init_token(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    return token


@pytest.fixture(scope="session")
def bao_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openbao.BaoServer]:
    """One OpenBao dev server for the session (each test takes its own transit mount)."""
    _need(openbao.missing(), "COATCHECK_REQUIRE_TRANSIT")
    server = openbao.start(tmp_path_factory.mktemp("bao"))
    yield server
    server.stop()


@dataclass(frozen=True)
class TransitMount:
    """A fresh transit mount with a root key, on the session's server."""

    address: str
    token: str
    mount: str


@pytest.fixture
def transit_mount(bao_server: openbao.BaoServer) -> TransitMount:
    from coatcheck.vault.keys.transit import create_transit_root

    mount = bao_server.new_transit_mount()
    create_transit_root(bao_server.address, bao_server.token, mount)
    return TransitMount(bao_server.address, bao_server.token, mount)


def make_provider(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> KeyProvider:
    """A provider of `kind` with a fresh root key."""
    if kind == "file":
        return FileKeyProvider(tmp_path / f"root-{os.urandom(4).hex()}.key")
    if kind == "env":
        return EnvKeyProvider(base64.b64encode(os.urandom(32)).decode())
    if kind == "transit":
        from coatcheck.vault.keys.transit import TransitKeyProvider

        where: TransitMount = request.getfixturevalue("transit_mount")
        return TransitKeyProvider(where.address, where.token, where.mount)
    from coatcheck.vault.keys.pkcs11 import Pkcs11KeyProvider

    token: SoftToken = request.getfixturevalue("soft_token")
    return Pkcs11KeyProvider(token.module, token.label, token.pin)


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyProvider]:
    """Each provider in turn (closed after the test, so the next token starts clean)."""
    with make_provider(request.param, request, tmp_path) as opened:
        yield opened
