"""The key provider behind the service: chosen by settings, one-line start-up errors naming
the setting, every provider end to end through the real app, older roots chained."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coatcheck.middleware.cli import app as cli
from coatcheck.middleware.config import ConfigError
from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.render import parse_references
from coatcheck.middleware.settings import load_settings
from coatcheck.vault import KeyConfigError
from coatcheck.vault.keys import ProviderChain, ProviderSettings, open_provider
from tests.harness import open_gateway
from tests.keys.conftest import TransitMount
from tests.keys.softhsm import SoftToken
from tests.service.gateway_helpers import Service, make_settings


def _round_trip(tmp_path: Path, **settings: object) -> str:
    """A message through the real app on this provider, then an audited staff reveal."""
    client, keys, clock = open_gateway(make_settings(tmp_path, **settings))
    service = Service(client, keys, clock)
    try:
        answer = service.say("u1", "mail me at jane@example.org")
        [ref] = parse_references(answer.json()[0]["text"])
        body = {"conversation_id": service.cid("u1"), "ref": ref.reference, "purpose": "ticket 1"}
        shown = client.post("/v1/reveal", json=body, headers=service.auth(Role.AUDITOR))
        assert shown.status_code == 200 and shown.json()["value"] == "jane@example.org"
        kind = service.services.vault.provider.kind
    finally:
        client.__exit__(None, None, None)
    return kind


def test_the_service_runs_on_pkcs11(tmp_path: Path, soft_token: SoftToken) -> None:
    kind = _round_trip(
        tmp_path,
        key_provider="pkcs11",
        pkcs11_module=soft_token.module,
        pkcs11_token=soft_token.label,
        pkcs11_pin=soft_token.pin,
    )
    assert kind == "pkcs11"
    assert not (tmp_path / "coatcheck.key").exists()  # no root beside the data


def test_the_service_runs_on_transit(tmp_path: Path, transit_mount: TransitMount) -> None:
    kind = _round_trip(
        tmp_path,
        key_provider="transit",
        transit_addr=transit_mount.address,
        transit_token=transit_mount.token,
        transit_mount=transit_mount.mount,
    )
    assert kind == "transit"


def test_the_key_file_stays_the_default(tmp_path: Path) -> None:
    assert _round_trip(tmp_path) == "file"
    assert (tmp_path / "coatcheck.key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"COATCHECK_KEY_PROVIDER": "hsm"}, "COATCHECK_KEY_PROVIDER"),
        ({"COATCHECK_KEY_PROVIDER": "pkcs11"}, "COATCHECK_PKCS11_MODULE"),
        (
            {"COATCHECK_KEY_PROVIDER": "pkcs11", "COATCHECK_PKCS11_MODULE": "/nowhere/p11.so"},
            "COATCHECK_PKCS11_TOKEN",
        ),
        ({"COATCHECK_KEY_PROVIDER": "transit"}, "COATCHECK_TRANSIT_ADDR"),
        ({"COATCHECK_PREVIOUS_KEY_FILES": "/nowhere/old.key"}, "COATCHECK_PREVIOUS_KEY_FILES"),
    ],
)
def test_serve_refuses_a_bad_key_setting_in_one_line(
    tmp_path: Path, env: dict[str, str], setting: str
) -> None:
    base = {
        "COATCHECK_DATABASE_URL": f"sqlite:///{tmp_path / 'cc.db'}",
        "COATCHECK_KEY_FILE": str(tmp_path / "coatcheck.key"),
        "COATCHECK_PKCS11_PIN": "1234",
    }
    result = CliRunner().invoke(cli, ["serve"], env={**base, **env})
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and setting in lines[0], result.output
    assert "1234" not in result.output
    assert not (tmp_path / "cc.db").exists()  # refused before the database was touched


def test_settings_map_to_a_provider_chain_for_older_roots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "old.key"
    old.write_text(base64.b64encode(os.urandom(32)).decode())
    old.chmod(0o600)
    monkeypatch.setenv("COATCHECK_KEY_FILE", str(tmp_path / "new.key"))
    monkeypatch.setenv("COATCHECK_PREVIOUS_KEY_FILES", str(old))
    monkeypatch.setenv("COATCHECK_PKCS11_PIN", "secret-pin")
    settings = load_settings()
    assert "secret-pin" not in repr(settings.provider_settings())
    with open_provider(settings.provider_settings()) as provider:
        assert isinstance(provider, ProviderChain)
        assert [p.kind for p in provider.providers] == ["file", "file"]
    monkeypatch.setenv("COATCHECK_KEY_PROVIDER", "nope")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert err.value.name == "COATCHECK_KEY_PROVIDER"
    assert str(err.value) == ("COATCHECK_KEY_PROVIDER: must be one of file, env, pkcs11, transit")


def test_a_missing_older_root_is_never_made_up(tmp_path: Path) -> None:
    settings = ProviderSettings(
        key_file=tmp_path / "new.key", previous_key_files=(tmp_path / "gone.key",)
    )
    with pytest.raises(KeyConfigError) as err:
        open_provider(settings)
    assert err.value.setting == "COATCHECK_PREVIOUS_KEY_FILES"
    assert not (tmp_path / "gone.key").exists()
