"""Master key validation, key file creation, grant tokens."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from coatcheck.vault import (
    Grant,
    GrantSigner,
    InvalidGrant,
    KeyConfigError,
    KeyRing,
    load_master_key,
)

GOOD = base64.b64encode(os.urandom(32)).decode()


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (GOOD, True),
        (base64.b64encode(b"changeme" * 4).decode(), False),
        (base64.b64encode(b"secret" + bytes(range(40))).decode(), False),
        (base64.b64encode(b"\x00" * 32).decode(), False),
        (base64.b64encode(os.urandom(16)).decode(), False),
        ("not base64 !!", False),
    ],
)
def test_env_master_key(value: str, ok: bool, tmp_path: Path) -> None:
    if ok:
        assert len(load_master_key(value, tmp_path / "k")) == 32
        return
    with pytest.raises(KeyConfigError) as err:
        load_master_key(value, tmp_path / "k")
    assert err.value.setting == "COATCHECK_MASTER_KEY"
    assert value not in str(err.value)


def test_key_file_created_once_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "coatcheck.key"
    first = load_master_key(None, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key(None, path) == first
    assert list(path.parent.iterdir()) == [path]


def test_bad_key_file_names_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text(base64.b64encode(b"changeme" * 4).decode())
    path.chmod(0o600)  # private, so the placeholder check is what refuses it
    with pytest.raises(KeyConfigError) as err:
        load_master_key(None, path)
    assert err.value.setting == "COATCHECK_KEY_FILE"
    assert "placeholder" in str(err.value)


def test_keyring_refuses_short_keys() -> None:
    with pytest.raises(KeyConfigError):
        KeyRing.from_master_key(b"x" * 31)


def _signer() -> GrantSigner:
    return GrantSigner(KeyRing(os.urandom(32)))


GRANT = Grant("c1", frozenset({"EMAIL", "PHONE"}), "support", "action_x", 1000.0)


def test_grant_token_round_trip() -> None:
    signer = _signer()
    assert signer.verify(signer.issue(GRANT), now=999.0) == GRANT


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1],
        lambda t: "e" + t[1:] if t[0] != "e" else "f" + t[1:],
        lambda t: t.replace(".", ""),
        lambda t: t + ".x",
        lambda t: "",
        lambda t: "%%%.%%%",
    ],
    ids=["tag", "body", "no-dot", "extra-part", "empty", "garbage"],
)
def test_mangled_tokens_are_one_opaque_error(mangle: object) -> None:
    signer = _signer()
    token = mangle(signer.issue(GRANT))  # type: ignore[operator]
    with pytest.raises(InvalidGrant) as err:
        signer.verify(token, now=0.0)
    assert str(err.value) == "invalid grant"


def test_expired_and_foreign_tokens_refused() -> None:
    signer = _signer()
    token = signer.issue(GRANT)
    with pytest.raises(InvalidGrant):
        signer.verify(token, now=1000.0)
    with pytest.raises(InvalidGrant):
        _signer().verify(token, now=0.0)
