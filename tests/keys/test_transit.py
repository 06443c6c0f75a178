"""Transit (OpenBao) specifics: keys the server will not export, a destroy every worker sees."""

from __future__ import annotations

import os

import httpx
import pytest

from coatcheck.vault import KeyConfigError
from coatcheck.vault.keys import KeyDestroyed
from coatcheck.vault.keys.transit import TransitKeyProvider, create_transit_root
from tests.keys.conftest import TransitMount

DEK = os.urandom(32)
CTX = b"dek|default|conv-7|epoch-1"


def _provider(where: TransitMount) -> TransitKeyProvider:
    return TransitKeyProvider(where.address, where.token, where.mount)


def _client(where: TransitMount) -> httpx.Client:
    return httpx.Client(
        base_url=where.address + "/v1/", headers={"X-Vault-Token": where.token}, timeout=10
    )


def test_the_server_refuses_to_export_the_keys(transit_mount: TransitMount) -> None:
    with _provider(transit_mount) as provider:
        record = provider.create_kek("default/live/2025-01-07/0")
    name = record[-len("coatcheck-kek-") - 40 :].decode()
    with _client(transit_mount) as client:
        for key in ("coatcheck-root", name):
            info = client.get(f"{transit_mount.mount}/keys/{key}").json()["data"]
            assert info["exportable"] is False and info["type"] == "aes256-gcm96"
            exported = client.get(f"{transit_mount.mount}/export/encryption-key/{key}")
            assert exported.status_code == 400
            assert "not exportable" in exported.text


def test_a_destroy_by_another_worker_is_seen_at_once(transit_mount: TransitMount) -> None:
    kek_id = "default/live/2025-01-08/0"
    with _provider(transit_mount) as worker_a, _provider(transit_mount) as worker_b:
        record = worker_a.create_kek(kek_id)
        kek = worker_a.open_kek(kek_id, record)
        wrapped = kek.wrap(DEK, CTX)
        assert worker_b.open_kek(kek_id, record).unwrap(wrapped, CTX) == DEK
        worker_b.destroy_kek(kek_id, record)
        with pytest.raises(KeyDestroyed) as err:
            kek.unwrap(wrapped, CTX)
        assert err.value.kek_id == kek_id
        with pytest.raises(KeyDestroyed):
            worker_a.open_kek(kek_id, record)  # a database copy taken before the destroy
        # Two workers creating the same bucket's KEK get the same key, never two.
        again = worker_a.create_kek("default/live/2025-01-09/0")
        assert worker_b.create_kek("default/live/2025-01-09/0") == again


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"token": "s.not-a-token"}, "COATCHECK_TRANSIT_TOKEN"),
        ({"address": "http://127.0.0.1:9"}, "COATCHECK_TRANSIT_ADDR"),
        ({"root_key": "no-such-root"}, "COATCHECK_TRANSIT_KEY"),
    ],
)
def test_configuration_errors_name_the_setting(
    transit_mount: TransitMount, change: dict[str, str], setting: str
) -> None:
    with pytest.raises(KeyConfigError) as err:
        TransitKeyProvider(
            change.get("address", transit_mount.address),
            change.get("token", transit_mount.token),
            transit_mount.mount,
            change.get("root_key", "coatcheck-root"),
        )
    assert err.value.setting == setting
    assert transit_mount.token not in str(err.value) and "not-a-token" not in str(err.value)


def test_a_second_root_is_refused(transit_mount: TransitMount) -> None:
    with pytest.raises(KeyConfigError) as err:
        create_transit_root(transit_mount.address, transit_mount.token, transit_mount.mount)
    assert err.value.setting == "COATCHECK_TRANSIT_KEY"
