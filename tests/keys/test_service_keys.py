"""Service keys sealed under the root, signed checkpoints, and two roots during rotation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from coatcheck.vault import DecryptionError
from coatcheck.vault.keys import (
    AUDIT_MAC,
    CHECKPOINT,
    PSEUDONYM,
    Checkpoint,
    InvalidCheckpoint,
    KeyProvider,
    MemoryKeyStore,
    ProviderChain,
    ServiceKeys,
    UnknownRoot,
    verify_checkpoint,
)
from tests.keys.conftest import make_provider

NAMES = (AUDIT_MAC, PSEUDONYM, CHECKPOINT)


def test_service_keys_are_made_once_and_shared_by_workers(provider: KeyProvider) -> None:
    store = MemoryKeyStore()
    worker_a, worker_b = ServiceKeys(provider, store), ServiceKeys(provider, store)
    keys = [worker_a.key(name) for name in NAMES]
    assert len(set(keys)) == 3 and all(len(k) == 32 for k in keys)
    assert [worker_b.key(name) for name in NAMES] == keys
    for name, key in zip(NAMES, keys, strict=True):
        blob = store.get(name)
        assert blob is not None and key not in blob and provider.holds(blob)


def test_first_writer_wins_when_two_workers_race(provider: KeyProvider) -> None:
    store = MemoryKeyStore()
    loser_blob = provider.seal(os.urandom(32), b"whatever")
    winner = ServiceKeys(provider, store).audit_mac_key
    assert store.add(AUDIT_MAC, loser_blob) != loser_blob
    assert ServiceKeys(provider, store).audit_mac_key == winner


def test_a_blob_swapped_to_another_name_opens_nothing(provider: KeyProvider) -> None:
    """A database writer who moves the pseudonym key's blob to the audit key's name."""
    store = MemoryKeyStore()
    ServiceKeys(provider, store).pseudonym_key  # noqa: B018
    swapped = MemoryKeyStore()
    pseudonym_blob = store.get(PSEUDONYM)
    assert pseudonym_blob is not None
    swapped.add(AUDIT_MAC, pseudonym_blob)
    with pytest.raises(DecryptionError):
        ServiceKeys(provider, swapped).audit_mac_key  # noqa: B018


def test_checkpoints_verify_only_as_signed(provider: KeyProvider) -> None:
    signer = ServiceKeys(provider, MemoryKeyStore()).checkpoint_signer
    cp = Checkpoint(seq=1200, head="ab" * 32, at=1_700_000_000.5)
    text = signer.sign(cp)
    assert "\n" not in text
    assert verify_checkpoint(text, signer.public_key) == cp
    doc = json.loads(text)
    for field, value in [("seq", 1199), ("head", "cd" * 32), ("at", 1_700_000_001.5)]:
        with pytest.raises(InvalidCheckpoint):
            verify_checkpoint(json.dumps({**doc, field: value}), signer.public_key)
    other = ServiceKeys(provider, MemoryKeyStore()).checkpoint_signer
    with pytest.raises(InvalidCheckpoint):
        verify_checkpoint(text, other.public_key)  # another database's key
    forged = json.loads(other.sign(cp))
    with pytest.raises(InvalidCheckpoint):
        verify_checkpoint(json.dumps({**forged, "key": doc["key"]}), signer.public_key)
    for garbage in ("", "{}", "[1]", text[:-3], json.dumps({**doc, "sig": "!!"})):
        with pytest.raises(InvalidCheckpoint):
            verify_checkpoint(garbage, signer.public_key)


@pytest.mark.parametrize("new_kind", ["env", "pkcs11"])
def test_rotation_through_a_chain_keeps_every_key(
    new_kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """file -> env (a root rotation) and file -> PKCS#11 (the migration), online: the
    service keys do not change, old KEK records stay readable, new ones go to the new root."""
    old = make_provider("file", request, tmp_path)
    store = MemoryKeyStore()
    before = [ServiceKeys(old, store).key(name) for name in NAMES]
    old_record = old.create_kek("t/live/d1/0")
    wrapped = old.open_kek("t/live/d1/0", old_record).wrap(b"d" * 32, b"ctx")
    with make_provider(new_kind, request, tmp_path) as new:
        chain = ProviderChain(new, old)
        assert chain.destroy_is_final is False  # a file-held KEK may still be around
        service = ServiceKeys(chain, store)
        assert [service.key(name) for name in NAMES] == before
        resealed = {name: service.reseal(name) for name in NAMES}  # the re-seal pass
        assert all(new.holds(blob) and not old.holds(blob) for blob in resealed.values())
        assert chain.open_kek("t/live/d1/0", old_record).unwrap(wrapped, b"ctx") == b"d" * 32
        new_record = chain.create_kek("t/live/d2/0")
        assert new.holds(new_record) and chain.owner(new_record) is new
        # The old root leaves the configuration: what was re-sealed still opens.
        moved = MemoryKeyStore()
        for name, blob in resealed.items():
            moved.add(name, blob)
        assert [ServiceKeys(new, moved).key(name) for name in NAMES] == before
        with pytest.raises(UnknownRoot):
            new.open_kek("t/live/d1/0", old_record)
        assert ProviderChain(new).destroy_is_final is new.destroy_is_final
