"""Fixtures: every key provider, and a fresh SoftHSM2 token per test.

The token lives in `tmp_path` (its own `softhsm2.conf`, `softhsm2-util --init-token`, a root
key made by `create_root_key`).  Without the softhsm2 module or python-pkcs11 the PKCS#11
cases are skipped with the reason, unless `COATCHECK_REQUIRE_PKCS11=1` (CI sets it): then
they fail, so CI cannot pass without having run them.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from coatcheck.vault.keys import EnvKeyProvider, FileKeyProvider, KeyProvider

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
PROVIDERS = ["file", "env", "pkcs11"]


@dataclass(frozen=True)
class SoftToken:
    """A fresh token: where its module is, its label and PINs, its config file."""

    module: str
    label: str
    pin: str
    so_pin: str
    conf: Path

    def env(self) -> dict[str, str]:
        """The environment a subprocess needs to reach this token."""
        return {**os.environ, "SOFTHSM2_CONF": str(self.conf)}


def _softhsm_module() -> str | None:
    configured = os.environ.get("COATCHECK_TEST_PKCS11_MODULE")
    candidates = (configured,) if configured else MODULE_CANDIDATES
    return next((path for path in candidates if path and Path(path).is_file()), None)


def _missing() -> str | None:
    if importlib.util.find_spec("pkcs11") is None:
        return "python-pkcs11 is not installed (pip install 'coatcheck[pkcs11]')"
    if _softhsm_module() is None:
        return "the SoftHSM2 module is missing (apt-get install softhsm2)"
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util is missing (apt-get install softhsm2)"
    return None


@pytest.fixture
def soft_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftToken:
    """A new SoftHSM2 token with a root key, reachable through SOFTHSM2_CONF."""
    reason = _missing()
    if reason is not None:
        if os.environ.get("COATCHECK_REQUIRE_PKCS11") == "1":
            pytest.fail(f"COATCHECK_REQUIRE_PKCS11=1 but {reason}")
        pytest.skip(reason)
    from coatcheck.vault.keys.pkcs11 import create_root_key

    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    module = _softhsm_module()
    assert module is not None
    token = SoftToken(module, "coatcheck-test", "4711-user", "4711-so", conf)
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            token.label,
            "--pin",
            token.pin,
            "--so-pin",
            token.so_pin,
        ],
        env=token.env(),
        check=True,
        capture_output=True,
    )
    create_root_key(token.module, token.label, token.pin)
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
