"""Root rotation and the move from the key file to PKCS#11, without downtime: every sealed
service key and KEK moves to the new root while workers keep serving; afterwards the old
root can go, and nothing a person or an operator holds changes (pseudonyms, grants,
checkpoints, the audit chain)."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, select

from coatcheck.vault import Grant
from coatcheck.vault._keks import BUCKETS
from coatcheck.vault.keys import FileKeyProvider, KeyProvider, ProviderChain, verify_checkpoint
from coatcheck.vault.keys.provider import SEALED, TOKEN_KEK, root_of
from coatcheck.vault.models import KeyObject
from tests.atrest.conftest import VaultFactory
from tests.conftest import FakeClock


def _roots(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        blobs = list(conn.execute(select(KeyObject.__table__.c.blob)).scalars())
        blobs += list(
            conn.execute(select(BUCKETS.c.record).where(BUCKETS.c.record.is_not(None))).scalars()
        )
    return {root_of(bytes(b)) for b in blobs}


def _grant(cid: str, clock: FakeClock) -> Grant:
    return Grant(cid, frozenset({"EMAIL"}), "p", "t", clock.now + 30)


def test_a_new_key_file_takes_over_and_nothing_held_elsewhere_changes(
    db_url: str, engine: Engine, make_vault: VaultFactory, tmp_path: Path, clock: FakeClock
) -> None:
    old = FileKeyProvider(tmp_path / "old.key")
    new = FileKeyProvider(tmp_path / "new.key")
    before = make_vault(db_url, old)
    refs = {f"c{n}": before.tokenize(f"c{n}", "EMAIL", f"{n}@example.org") for n in range(5)}
    pseudonym, grant_key = before.pseudonym("+14155550123"), before.grant_key
    checkpoint, public = before.audit_checkpoint(), before.checkpoint_signer.public_key

    rotated = make_vault(db_url, ProviderChain(new, old)).rotate_root("ops")

    assert rotated.left == 0 and rotated.retired == 0  # host to host: sealed again, no move
    assert rotated.resealed >= 5  # four service keys and the day's KEK
    assert _roots(engine) == {new.root_id}
    after = make_vault(db_url, new)  # the old key file is no longer needed
    for cid, ref in refs.items():
        assert after.reveal(cid, ref, _grant(cid, clock)) == f"{cid[1:]}@example.org"
    assert after.pseudonym("+14155550123") == pseudonym and after.grant_key == grant_key
    assert after.checkpoint_signer.public_key == public
    assert after.verify_audit(checkpoints=[verify_checkpoint(checkpoint, public)]).ok


def test_from_the_key_file_to_pkcs11_while_workers_serve(
    db_url: str,
    engine: Engine,
    make_vault: VaultFactory,
    file_provider: KeyProvider,
    token_provider: KeyProvider,
    clock: FakeClock,
) -> None:
    seed = make_vault(db_url, file_provider)
    refs = {f"c{n}": seed.tokenize(f"c{n}", "EMAIL", f"{n}@example.org") for n in range(20)}
    pseudonym = seed.pseudonym("+14155550123")
    chain = ProviderChain(token_provider, file_provider)  # what every worker now runs with
    failures: list[BaseException] = []
    stop = threading.Event()

    def traffic() -> None:
        worker = make_vault(db_url, chain)
        n = 0
        try:
            while not stop.is_set() or n < 10:
                cid = f"c{n % 20}"
                assert worker.reveal(cid, refs[cid], _grant(cid, clock)) == f"{n % 20}@example.org"
                worker.tokenize(f"new{n}", "EMAIL", f"new{n}@example.org")
                n += 1
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=traffic)
    thread.start()
    moved = make_vault(db_url, chain).rotate_root("ops")
    stop.set()
    thread.join()
    assert failures == []
    assert moved.retired >= 1 and moved.left == 0
    assert _roots(engine) == {token_provider.root_id}
    with engine.connect() as conn:
        records = [bytes(r) for r in conn.execute(select(BUCKETS.c.record)).scalars() if r]
    assert records and all(r[:2] == TOKEN_KEK for r in records)  # KEKs live on the token now
    assert all(r[:2] != SEALED for r in records)

    alone = make_vault(db_url, token_provider)  # the key file may be destroyed now
    for cid, ref in refs.items():
        assert alone.reveal(cid, ref, _grant(cid, clock)) == f"{cid[1:]}@example.org"
    assert alone.pseudonym("+14155550123") == pseudonym
    assert alone.provider.destroy_is_final and alone.verify_audit(full=True).ok
