"""Fixtures: every key provider, and a fresh SoftHSM2 token per test.

The token lives in `tmp_path` (its own `softhsm2.conf`, `softhsm2-util --init-token`, a root
key made by `create_root_key`).  Without the softhsm2 module or python-pkcs11 the PKCS#11
cases are skipped with the reason, unless `COATCHECK_REQUIRE_PKCS11=1` (CI sets it): then
they fail, so CI cannot pass without having run them.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from coatcheck.vault.keys import EnvKeyProvider, FileKeyProvider, KeyProvider
from tests.keys.softhsm import SoftToken, init_token, missing

__all__ = ["PROVIDERS", "SoftToken", "make_provider"]

PROVIDERS = ["file", "env", "pkcs11"]


@pytest.fixture
def soft_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftToken:
    """A new SoftHSM2 token with a root key, reachable through SOFTHSM2_CONF."""
    reason = missing()
    if reason is not None:
        if os.environ.get("COATCHECK_REQUIRE_PKCS11") == "1":
            pytest.fail(f"COATCHECK_REQUIRE_PKCS11=1 but {reason}")
        pytest.skip(reason)
    token = init_token(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    return token


def make_provider(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> KeyProvider:
    """A provider of `kind` with a fresh root key."""
    if kind == "file":
        return FileKeyProvider(tmp_path / f"root-{os.urandom(4).hex()}.key")
    if kind == "env":
        return EnvKeyProvider(base64.b64encode(os.urandom(32)).decode())
    from coatcheck.vault.keys.pkcs11 import Pkcs11KeyProvider

    token: SoftToken = request.getfixturevalue("soft_token")
    return Pkcs11KeyProvider(token.module, token.label, token.pin)


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyProvider]:
    """Each provider in turn (closed after the test, so the next token starts clean)."""
    with make_provider(request.param, request, tmp_path) as opened:
        yield opened
