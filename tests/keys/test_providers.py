"""The same contract for every provider: file, env, PKCS#11 (SoftHSM2)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from coatcheck.vault import DecryptionError
from coatcheck.vault.keys import (
    EnvKeyProvider,
    FileKeyProvider,
    KeyDestroyed,
    KeyProvider,
    MemoryKeyStore,
    ProviderSettings,
    ServiceKeys,
    UnknownRoot,
)
from coatcheck.vault.keys.provider import SEALED, header, split
from tests.keys.conftest import PROVIDERS, make_provider

DEK = os.urandom(32)
CTX = b"dek|default|conv-1|epoch-1"


def _flip(blob: bytes, index: int) -> bytes:
    out = bytearray(blob)
    out[index] ^= 1
    return bytes(out)


def test_seal_round_trip_bound_to_context(provider: KeyProvider) -> None:
    blob = provider.seal(DEK, CTX)
    assert provider.holds(blob)
    assert provider.unseal(blob, CTX) == DEK
    assert DEK not in blob
    assert provider.seal(DEK, CTX) != blob  # a fresh nonce every time


@pytest.mark.parametrize("mangle", ["context", "first byte of body", "last byte (tag)"])
def test_seal_failures_are_one_opaque_error(provider: KeyProvider, mangle: str) -> None:
    blob = provider.seal(DEK, CTX)
    head_len = len(split(blob, SEALED)[0])
    cases = {
        "context": (blob, CTX + b"x"),
        "first byte of body": (_flip(blob, head_len), CTX),
        "last byte (tag)": (_flip(blob, -1), CTX),
    }
    bad_blob, context = cases[mangle]
    with pytest.raises(DecryptionError) as err:
        provider.unseal(bad_blob, context)
    assert str(err.value) == "decryption failed"


def test_another_root_cannot_unseal(
    provider: KeyProvider, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A blob names its root: honestly labelled it is refused by name, relabelled opaquely."""
    other = make_provider("file", request, tmp_path)
    blob = other.seal(DEK, CTX)
    assert not provider.holds(blob)
    with pytest.raises(UnknownRoot) as err:
        provider.unseal(blob, CTX)
    assert err.value.root_id == other.root_id
    _, _, body = split(blob, SEALED)
    relabelled = header(SEALED, provider.root_id) + body
    with pytest.raises(DecryptionError):
        provider.unseal(relabelled, CTX)


def test_kek_wraps_and_unwraps_bound_to_context(provider: KeyProvider) -> None:
    record = provider.create_kek("default/live/2025-01-02/0")
    kek = provider.open_kek("default/live/2025-01-02/0", record)
    wrapped = kek.wrap(DEK, CTX)
    assert len(wrapped) == 12 + 32 + 16  # nonce | ciphertext | tag, the vault's format
    assert kek.unwrap(wrapped, CTX) == DEK
    # A second open of the same record (another worker) unwraps what the first wrapped.
    assert provider.open_kek("default/live/2025-01-02/0", record).unwrap(wrapped, CTX) == DEK
    with pytest.raises(DecryptionError):
        kek.unwrap(wrapped, CTX + b"x")
    with pytest.raises(DecryptionError):
        kek.unwrap(_flip(wrapped, 20), CTX)


def test_a_kek_opens_nothing_of_another_kek(provider: KeyProvider) -> None:
    day1 = provider.open_kek("t/live/d1/0", provider.create_kek("t/live/d1/0"))
    day2_record = provider.create_kek("t/live/d2/0")
    day2 = provider.open_kek("t/live/d2/0", day2_record)
    with pytest.raises(DecryptionError):
        day2.unwrap(day1.wrap(DEK, CTX), CTX)
    # A record moved to another KEK's name (a database writer's swap) opens nothing.
    with pytest.raises(DecryptionError):
        provider.open_kek("t/live/d1/0", day2_record)


def test_destroyed_kek_cannot_unwrap(provider: KeyProvider) -> None:
    """After the destroy the live database (record erased) opens nothing; an older copy of
    the record opens the KEK again exactly when the provider says its destroy is not final."""
    kek_id = "default/live/2025-01-03/0"
    record = provider.create_kek(kek_id)
    kek = provider.open_kek(kek_id, record)
    wrapped = kek.wrap(DEK, CTX)
    provider.destroy_kek(kek_id, record)
    provider.destroy_kek(kek_id, record)  # idempotent
    with pytest.raises(KeyDestroyed) as err:
        provider.open_kek(kek_id, b"")  # the live database: the record was erased
    assert err.value.kek_id == kek_id
    old_copy = record  # a backup taken before the destroy, with the root key in hand
    if provider.destroy_is_final:
        with pytest.raises(KeyDestroyed):
            provider.open_kek(kek_id, old_copy)
        with pytest.raises(KeyDestroyed):
            kek.unwrap(wrapped, CTX)  # a handle opened before the destroy is dead too
    else:
        assert provider.open_kek(kek_id, old_copy).unwrap(wrapped, CTX) == DEK


def test_destroy_is_final_per_kind(provider: KeyProvider) -> None:
    assert provider.destroy_is_final is (provider.kind in ("pkcs11", "transit"))


@pytest.mark.parametrize("kind", PROVIDERS)
def test_repr_and_errors_show_no_key_material(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    master_b64 = base64.b64encode(os.urandom(32)).decode()
    secrets = [master_b64, base64.b64decode(master_b64).hex(), DEK.hex()]
    secrets.append(base64.b64encode(DEK).decode())
    provider: KeyProvider
    if kind == "file":
        path = tmp_path / "root.key"
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        path.write_text(master_b64 + "\n")
        provider = FileKeyProvider(path)
    elif kind == "env":
        provider = EnvKeyProvider(master_b64)
    elif kind == "transit":
        from coatcheck.vault.keys.transit import TransitKeyProvider

        where = request.getfixturevalue("transit_mount")
        secrets.append(where.token)
        provider = TransitKeyProvider(where.address, where.token, where.mount)
    else:
        from coatcheck.vault.keys.pkcs11 import Pkcs11KeyProvider

        token = request.getfixturevalue("soft_token")
        secrets += [token.pin, token.so_pin]
        provider = Pkcs11KeyProvider(token.module, token.label, token.pin)
    with provider:
        kek = provider.open_kek("t/live/d/0", provider.create_kek("t/live/d/0"))
        service = ServiceKeys(provider, MemoryKeyStore())
        service.audit_mac_key  # noqa: B018  (loads a key: repr must still hide it)
        shown = [repr(provider), str(provider), repr(kek), repr(service)]
        shown.append(repr(service.checkpoint_signer))
        settings = ProviderSettings(
            kind, master_key_b64=master_b64, pkcs11_pin="4711", transit_token="4711"
        )
        shown.append(repr(settings))
        for attempt in (lambda: provider.unseal(provider.seal(DEK, CTX), b"wrong"),):
            with pytest.raises(DecryptionError) as err:
                attempt()
            shown.append(str(err.value))
    text = "\n".join(shown)
    for secret in [*secrets, service.audit_mac_key.hex(), "4711"]:
        assert secret not in text
    assert "t/live/d/0" in text and provider.root_id in text
