"""A throw-away SoftHSM2 token in a directory: for the tests' fixture and bench/keys.py.

SoftHSM2 reads `SOFTHSM2_CONF` when the module is initialised, so the caller sets it to
`token.conf` (a `monkeypatch.setenv` in tests) before opening a provider.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


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


def module_path() -> str | None:
    """The SoftHSM2 module (`COATCHECK_TEST_PKCS11_MODULE`, else Debian's paths)."""
    configured = os.environ.get("COATCHECK_TEST_PKCS11_MODULE")
    candidates = (configured,) if configured else MODULE_CANDIDATES
    return next((path for path in candidates if path and Path(path).is_file()), None)


def missing() -> str | None:
    """Why a SoftHSM2 token cannot be made here, or None."""
    if importlib.util.find_spec("pkcs11") is None:
        return "python-pkcs11 is not installed (pip install 'coatcheck[pkcs11]')"
    if module_path() is None:
        return "the SoftHSM2 module is missing (apt-get install softhsm2)"
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util is missing (apt-get install softhsm2)"
    return None


def init_token(directory: Path, label: str = "coatcheck-test") -> SoftToken:
    """A new token (with coatcheck's root key) whose files live in `directory`."""
    from coatcheck.vault.keys.pkcs11 import create_root_key

    module = module_path()
    assert module is not None, missing()
    tokens = directory / "tokens"
    tokens.mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    token = SoftToken(module, label, "4711-user", "4711-so", conf)
    argv = ["softhsm2-util", "--init-token", "--free", "--label", label]
    argv += ["--pin", token.pin, "--so-pin", token.so_pin]
    subprocess.run(argv, env=token.env(), check=True, capture_output=True)
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        create_root_key(module, label, token.pin)
    finally:
        if previous is None:
            del os.environ["SOFTHSM2_CONF"]
        else:
            os.environ["SOFTHSM2_CONF"] = previous
    return token
