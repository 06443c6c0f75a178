"""Tampering, swapping and wrong keys all fail with one opaque error."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import Engine, select, update

from coatcheck.vault import DecryptionError, Grant, Vault, make_engine
from coatcheck.vault._crypto import NONCE_BYTES, Sealer, aad, new_key
from coatcheck.vault.keys import UnknownRoot
from coatcheck.vault.models import StoredValue
from tests.conftest import FakeClock

VAL = StoredValue.__table__


@pytest.mark.parametrize("part", ["nonce", "ciphertext", "tag", "aad"])
@pytest.mark.parametrize("position", [0, -1])
def test_flipping_one_byte_fails_opaquely(part: str, position: int) -> None:
    sealer = Sealer(new_key())
    context = aad("value", "t", "c1", 1, "0000000000", "EMAIL")
    blob = bytearray(sealer.seal(b"ana@example.org", context))
    assert sealer.open(bytes(blob), context) == b"ana@example.org"
    ctx = bytearray(context)
    if part == "aad":
        ctx[position] ^= 1
    else:
        span = {
            "nonce": (0, NONCE_BYTES),
            "ciphertext": (NONCE_BYTES, len(blob) - 16),
            "tag": (len(blob) - 16, len(blob)),
        }[part]
        index = span[0] if position == 0 else span[1] - 1
        blob[index] ^= 1
    with pytest.raises(DecryptionError) as err:
        sealer.open(bytes(blob), bytes(ctx))
    assert str(err.value) == "decryption failed"


def test_wrong_key_fails() -> None:
    blob = Sealer(new_key()).seal(b"x", b"ctx")
    with pytest.raises(DecryptionError):
        Sealer(new_key()).open(blob, b"ctx")
    with pytest.raises(DecryptionError):
        Sealer(new_key()).open(blob[:10], b"ctx")


def test_aad_is_length_prefixed() -> None:
    assert aad("ab", "c") != aad("a", "bc")


def test_ciphertext_swapped_between_rows_fails(
    vault: Vault, engine: Engine, clock: FakeClock
) -> None:
    a = vault.tokenize("c1", "EMAIL", "a@x.io")
    b = vault.tokenize("c1", "EMAIL", "b@x.io")
    with engine.begin() as conn:
        blobs = dict(conn.execute(select(VAL.c.ref, VAL.c.ciphertext)).all())
        conn.execute(update(VAL).where(VAL.c.ref == a).values(ciphertext=blobs[b]))
    g = Grant("c1", frozenset({"EMAIL"}), "p", "x", clock.now + 30)
    with pytest.raises(DecryptionError):
        vault.reveal("c1", a, g)
    assert vault.reveal("c1", b, g) == "b@x.io"
    assert vault.audit_rows(action="reveal")[1].outcome == "error"


def test_wrong_master_key_cannot_open_the_vault(vault: Vault, db_url: str) -> None:
    vault.tokenize("c1", "EMAIL", "a@x.io")
    with pytest.raises(UnknownRoot) as err:  # the service keys name the root they need
        Vault(make_engine(db_url), os.urandom(32), tenant="t1")
    assert err.value.root_id == vault.provider.root_id
