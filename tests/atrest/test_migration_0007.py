"""Migration 0007 and the online move of an existing database to the new key hierarchy.

The database is written the way the code before key providers wrote it (legacy KEK
versions under the master-derived key ring, epochs under them, a SHA-256 audit chain), at
schema 0006; then upgraded.  No value is lost, the chain does not read as tampering (its
format change is one recorded event), and the maintenance pass re-wraps the old epochs
under bucket KEKs and deletes the legacy KEKs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import Engine, func, insert, select, update

from alembic import command
from coatcheck.vault import Grant, KeyConfigError, _crypto, make_engine, upgrade
from coatcheck.vault._chain import FORMAT_ACTION, GENESIS, sha_link
from coatcheck.vault._keycache import EpochKeys, value_aad
from coatcheck.vault._statements import CONV, KEK, VAL
from coatcheck.vault.audit import AuditRecord
from coatcheck.vault.db import ALEMBIC_DIR
from coatcheck.vault.keyfile import read_key_file
from coatcheck.vault.keyring import KeyRing
from coatcheck.vault.keys import FileKeyProvider, KeyProvider, ProviderChain
from coatcheck.vault.models import AuditHead, AuditRow
from tests.atrest.conftest import VaultFactory
from tests.conftest import FakeClock

LOG, HEAD = AuditRow.__table__, AuditHead.__table__
VALUES = {"c1": "one@example.org", "c2": "two@example.org", "c3": "three@example.org"}


def _downgrade(url: str, revision: str) -> None:
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
        conn.commit()
    engine.dispose()


def _write_legacy(engine: Engine, master: bytes) -> dict[str, str]:
    """Values, KEK versions 1 and 2 and a SHA-256 chain as the old vault wrote them."""
    ring, refs = KeyRing(master), {}
    prev = GENESIS
    with engine.begin() as conn:
        for version in (1, 2):
            wrapped = ring.new_wrapped_kek("t1", version)
            conn.execute(
                insert(KEK).values(tenant="t1", version=version, wrapped=wrapped, created_at=1.0)
            )
            ring.load("t1", version, wrapped)
        for n, (cid, value) in enumerate(VALUES.items(), start=1):
            version, dek = 1 + n % 2, _crypto.new_key()
            wrapped = ring.wrap_dek(dek, version, _crypto.aad("dek", "t1", cid, 1, version))
            pk = conn.execute(
                insert(CONV)
                .values(
                    tenant="t1",
                    conversation_id=cid,
                    epoch=1,
                    kek_version=version,
                    wrapped_dek=wrapped,
                    created_at=1.0,
                )
                .returning(CONV.c.id)
            ).scalar_one()
            ref = refs[cid] = f"abcdefghj{n}"
            sealed = EpochKeys(dek).sealer.seal(
                value.encode(), value_aad("t1", cid, 1, ref, "EMAIL")
            )
            conn.execute(
                insert(VAL).values(
                    conversation_pk=pk,
                    ref=ref,
                    entity_type="EMAIL",
                    blind_index=os.urandom(32),
                    ciphertext=sealed,
                    created_at=1.0,
                )
            )
            record = AuditRecord(n, float(n), "t1", "bot", "reveal", cid, ref, "EMAIL", "p", "ok")
            link = sha_link(record, prev)
            conn.execute(insert(LOG).values(**record.__dict__, prev_hash=prev, row_hash=link))
            prev = link
        conn.execute(update(HEAD).values(last_id=len(VALUES), last_hash=prev))
    return refs


def test_an_existing_database_moves_to_the_new_hierarchy_online(
    db_url: str,
    engine: Engine,
    make_vault: VaultFactory,
    key_file: tuple[bytes, KeyProvider],
    clock: FakeClock,
) -> None:
    _downgrade(db_url, "0006")
    master, file_provider = key_file
    refs = _write_legacy(engine, master)
    upgrade(db_url)

    vault = make_vault(db_url, file_provider)
    grant = {cid: Grant(cid, frozenset({"EMAIL"}), "p", "t", clock.now + 30) for cid in VALUES}
    for cid, value in VALUES.items():  # readable before anything moved
        assert vault.reveal(cid, refs[cid], grant[cid]) == value
    report = vault.verify_audit(full=True)
    assert report.ok, report
    assert [r.action for r in vault.audit_rows(action=FORMAT_ACTION)] == [FORMAT_ACTION]

    done = vault.maintain()
    assert done.moved == len(VALUES) and done.legacy_left == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(KEK)).scalar() == 0  # deleted
        kek_ids = set(conn.execute(select(CONV.c.kek_id)).scalars())
    assert None not in kek_ids and len(kek_ids) == 1  # all under today's live bucket KEK
    for cid, value in VALUES.items():
        assert make_vault(db_url, file_provider).reveal(cid, refs[cid], grant[cid]) == value
    assert vault.audit_rows(action="kek_destroy")[0].purpose == "legacy"
    assert vault.verify_audit(full=True).ok


def test_legacy_keys_without_the_key_file_name_the_setting(
    db_url: str,
    engine: Engine,
    make_vault: VaultFactory,
    key_file: tuple[bytes, KeyProvider],
    token_provider: KeyProvider,
    clock: FakeClock,
) -> None:
    _downgrade(db_url, "0006")
    master, file_provider = key_file
    refs = _write_legacy(engine, master)
    upgrade(db_url)
    with pytest.raises(KeyConfigError) as err:
        make_vault(db_url, token_provider)  # the token alone cannot open the old KEKs
    assert err.value.setting == "COATCHECK_PREVIOUS_KEY_FILES" and "\n" not in str(err.value)

    chained = make_vault(db_url, ProviderChain(token_provider, file_provider))
    chained.maintain()
    assert chained.rotate_root("ops").left == 0
    alone = make_vault(db_url, token_provider)  # the key file may go now
    for cid, value in VALUES.items():
        grant = Grant(cid, frozenset({"EMAIL"}), "p", "t", clock.now + 30)
        assert alone.reveal(cid, refs[cid], grant) == value
    assert alone.verify_audit(full=True).ok


@pytest.fixture
def key_file(tmp_path: Path) -> Iterator[tuple[bytes, KeyProvider]]:
    """The master key of a key file (what the old code read) and the provider on it."""
    path = tmp_path / "coatcheck.key"
    with FileKeyProvider(path) as provider:
        yield read_key_file(path), provider
