"""The key file: made private, refused when it is not, in one line naming the file and fix."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from coatcheck.middleware.app import create_app
from coatcheck.vault import KeyConfigError, load_master_key
from coatcheck.vault.keys import (
    EnvKeyProvider,
    FileKeyProvider,
    ProviderSettings,
    open_provider,
)
from tests.service.gateway_helpers import make_settings


def _key_file(path: Path, mode: int) -> Path:
    path.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602, 0o610])
def test_a_key_file_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = _key_file(tmp_path / "coatcheck.key", mode)
    for load in (lambda: FileKeyProvider(path), lambda: load_master_key(None, path)):
        with pytest.raises(KeyConfigError) as err:
            load()
        message = str(err.value)
        assert err.value.setting == "COATCHECK_KEY_FILE"
        assert "\n" not in message
        assert str(path) in message and f"chmod 600 {path}" in message
        assert f"{mode:04o}" in message
        assert path.read_text().strip() not in message


def test_the_service_refuses_to_start_on_a_key_file_others_can_read(tmp_path: Path) -> None:
    """The attack: a key file left 0644, so any account on the host reads every value."""
    settings = make_settings(tmp_path)
    _key_file(settings.key_file, 0o644)
    with pytest.raises(KeyConfigError) as err, TestClient(create_app(settings)):
        pass
    assert f"chmod 600 {settings.key_file}" in str(err.value)
    assert not Path(settings.database_url.removeprefix("sqlite:///")).exists()


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_private_key_file_is_accepted(tmp_path: Path, mode: int) -> None:
    path = _key_file(tmp_path / "coatcheck.key", mode)
    assert FileKeyProvider(path).root_id == FileKeyProvider(path).root_id


def test_first_use_creates_the_file_0600_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "coatcheck.key"
    first = FileKeyProvider(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = FileKeyProvider(path)
    assert again.root_id == first.root_id
    assert again.unseal(first.seal(b"k" * 32, b"ctx"), b"ctx") == b"k" * 32


def test_the_same_master_key_is_the_same_root_from_file_or_env(tmp_path: Path) -> None:
    """Moving the key from the file to the environment is not a rotation."""
    path = _key_file(tmp_path / "coatcheck.key", 0o600)
    from_file = FileKeyProvider(path)
    from_env = EnvKeyProvider(path.read_text())
    assert from_env.root_id == from_file.root_id
    assert from_env.unseal(from_file.seal(b"k" * 32, b"ctx"), b"ctx") == b"k" * 32
    record = from_file.create_kek("t/live/d/0")
    wrapped = from_file.open_kek("t/live/d/0", record).wrap(b"d" * 32, b"c")
    assert from_env.open_kek("t/live/d/0", record).unwrap(wrapped, b"c") == b"d" * 32


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        (ProviderSettings(kind="env"), "COATCHECK_MASTER_KEY"),
        (ProviderSettings(master_key_b64="bm90IGEga2V5"), "COATCHECK_MASTER_KEY"),
        (ProviderSettings(kind="pkcs11"), "COATCHECK_PKCS11_MODULE"),
        (ProviderSettings(kind="pkcs11", pkcs11_module="/m.so"), "COATCHECK_PKCS11_TOKEN"),
        (ProviderSettings(kind="transit"), "COATCHECK_TRANSIT_ADDR"),
        (ProviderSettings(kind="transit", transit_addr="http://x"), "COATCHECK_TRANSIT_TOKEN"),
        (ProviderSettings(kind="kms"), "COATCHECK_KEY_PROVIDER"),
    ],
)
def test_open_provider_names_the_setting(settings: ProviderSettings, setting: str) -> None:
    with pytest.raises(KeyConfigError) as err:
        open_provider(settings)
    assert err.value.setting == setting


def test_open_provider_defaults_to_env_then_file(tmp_path: Path) -> None:
    master = base64.b64encode(os.urandom(32)).decode()
    key_file = tmp_path / "coatcheck.key"
    assert open_provider(ProviderSettings(master_key_b64=master, key_file=key_file)).kind == "env"
    assert not key_file.exists()
    assert open_provider(ProviderSettings(key_file=key_file)).kind == "file"
    assert key_file.exists()


def test_env_provider_from_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COATCHECK_MASTER_KEY", raising=False)
    with pytest.raises(KeyConfigError) as err:
        EnvKeyProvider.from_environ()
    assert err.value.setting == "COATCHECK_MASTER_KEY"
    monkeypatch.setenv("COATCHECK_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    assert EnvKeyProvider.from_environ().kind == "env"
