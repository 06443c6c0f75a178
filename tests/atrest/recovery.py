"""What a reader of the database files holding the root key recovers: the issue's methods.

- SQLite: the database file and a copy of its WAL, replayed frame by frame up to every
  commit the WAL still holds (salts ignored, so frames of an older WAL generation count
  too), each state opened as a database; plus a byte search of the raw files.
- PostgreSQL: every page of every table of the schema through `pageinspect`
  (`get_raw_page`: live and dead tuples and the free space between them), searched byte
  for byte.

Then, root key in hand, it opens whatever it found: KEK records (sealed under the root,
or a pointer to a token / transit key) -> wrapped data keys -> values.  Both formats: the
bucket KEKs of this tree and the legacy `keks` versions of the code before it, so a test
can show the attack working on the old code too.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from coatcheck.vault import VaultError, _crypto
from coatcheck.vault._keycache import EpochKeys, value_aad
from coatcheck.vault.keyring import KeyRing
from coatcheck.vault.keys import KeyProvider

_WAL_HEADER = 32
_FRAME_HEADER = 24


def wal_states(db: bytes, wal: bytes) -> Iterator[bytes]:
    """The database image alone, then as of every commit frame of the WAL (in file order)."""
    yield db
    if len(wal) < _WAL_HEADER:
        return
    page_size = struct.unpack(">I", wal[8:12])[0]
    image = bytearray(db)
    offset = _WAL_HEADER
    while offset + _FRAME_HEADER + page_size <= len(wal):
        pgno, commit = struct.unpack(">II", wal[offset : offset + 8])
        page = wal[offset + _FRAME_HEADER : offset + _FRAME_HEADER + page_size]
        start = (pgno - 1) * page_size
        if len(image) < start + page_size:
            image.extend(bytes(start + page_size - len(image)))
        image[start : start + page_size] = page
        if commit:
            yield bytes(image)
        offset += _FRAME_HEADER + page_size


@dataclass
class Findings:
    """Everything an attacker gathered from all the states it could read."""

    kek_records: dict[str, set[bytes]] = field(default_factory=dict)  # kek_id -> records
    legacy_keks: set[tuple[str, int, bytes]] = field(default_factory=set)  # tenant, version
    epochs: set[tuple[int, str, str, int, str | None, int | None, bytes]] = field(
        default_factory=set
    )  # pk, tenant, conversation, epoch, kek_id, kek_version, wrapped
    values: set[tuple[int, str, str, bytes]] = field(default_factory=set)  # pk, ref, type, ct

    def add_rows(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        for row in rows.get("kek_buckets", []):
            if row["record"]:
                self.kek_records.setdefault(row["kek_id"], set()).add(bytes(row["record"]))
        for row in rows.get("keks", []):
            self.legacy_keks.add((row["tenant"], row["version"], bytes(row["wrapped"])))
        for row in rows.get("conversations", []):
            if row["wrapped_dek"]:
                self.epochs.add(
                    (
                        row["id"],
                        row["tenant"],
                        row["conversation_id"],
                        row["epoch"],
                        row.get("kek_id"),
                        row.get("kek_version"),
                        bytes(row["wrapped_dek"]),
                    )
                )
        for row in rows.get("stored_values", []):
            if row["ciphertext"]:
                self.values.add(
                    (
                        row["conversation_pk"],
                        row["ref"],
                        row["entity_type"],
                        bytes(row["ciphertext"]),
                    )
                )


def sqlite_rows(image: bytes) -> dict[str, list[dict[str, Any]]]:
    """Every row of the vault's tables in a database image (an unreadable image: none)."""
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    if len(image) > 20:  # a WAL-mode header (read/write version 2) does not open in memory
        image = image[:18] + b"\x01\x01" + image[20:]
    try:
        conn.deserialize(image)
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        wanted = {"kek_buckets", "keks", "conversations", "stored_values"}
        return {
            name: [dict(r) for r in conn.execute(f'SELECT * FROM "{name}"')]
            for name in names
            if name in wanted
        }
    except sqlite3.DatabaseError:
        return {}
    finally:
        conn.close()


def sqlite_findings(files: Iterable[tuple[bytes, bytes]]) -> Findings:
    """What every WAL-replayed state of every (db, wal) copy holds."""
    found = Findings()
    for db, wal in files:
        for image in wal_states(db, wal):
            found.add_rows(sqlite_rows(image))
    return found


def read_files(path: Path) -> tuple[bytes, bytes, bytes]:
    """(db, wal, shm) bytes of a SQLite database as they are on disk now."""

    def read(suffix: str) -> bytes:
        file = path.with_name(path.name + suffix)
        return file.read_bytes() if file.exists() else b""

    return read(""), read("-wal"), read("-shm")


def recover(found: Findings, provider: KeyProvider, legacy_master: bytes | None = None) -> set[str]:
    """Every value the findings open with the root key in hand."""
    deks: dict[int, list[tuple[str, int, bytes]]] = {}
    for pk, tenant, cid, epoch, kek_id, version, wrapped in found.epochs:
        for dek in _unwrap(
            found, provider, legacy_master, tenant, cid, epoch, kek_id, version, wrapped
        ):
            deks.setdefault(pk, []).append((tenant, epoch, dek))
    conversation = {pk: cid for pk, _, cid, *_ in found.epochs}
    opened: set[str] = set()
    for pk, ref, entity_type, ciphertext in found.values:
        for tenant, epoch, dek in deks.get(pk, []):
            aad = value_aad(tenant, conversation[pk], epoch, ref, entity_type)
            try:
                opened.add(EpochKeys(dek).sealer.open(ciphertext, aad).decode("utf-8"))
            except VaultError:
                continue
    return opened


def _unwrap(
    found: Findings,
    provider: KeyProvider,
    legacy_master: bytes | None,
    tenant: str,
    cid: str,
    epoch: int,
    kek_id: str | None,
    version: int | None,
    wrapped: bytes,
) -> Iterator[bytes]:
    if kek_id is not None:
        for record in found.kek_records.get(kek_id, ()):
            try:
                kek = provider.open_kek(kek_id, record)
                yield kek.unwrap(wrapped, _crypto.aad("dek", tenant, cid, epoch, kek_id))
            except VaultError:
                continue
        return
    if legacy_master is None or version is None:
        return
    ring = KeyRing(legacy_master)
    for kek_tenant, kek_version, kek_wrapped in found.legacy_keks:
        if (kek_tenant, kek_version) != (tenant, version):
            continue
        try:
            ring.load(tenant, version, kek_wrapped)
            yield ring.unwrap_dek(wrapped, version, _crypto.aad("dek", tenant, cid, epoch, version))
        except VaultError:
            continue


def pg_pages(engine: Engine, tables: Iterable[str]) -> list[bytes]:
    """Every page of `tables` (and their TOAST tables) read raw through pageinspect."""
    pages: list[bytes] = []
    with engine.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA public"))
        conn.commit()
        for table in tables:
            rel = conn.execute(text("SELECT CAST(to_regclass(:t) AS oid)"), {"t": table}).scalar()
            toast = conn.execute(
                text("SELECT reltoastrelid FROM pg_class WHERE oid = :r"), {"r": rel}
            ).scalar()
            for oid in (rel, toast):
                if not oid:
                    continue
                name = conn.execute(
                    text("SELECT CAST(CAST(CAST(:r AS oid) AS regclass) AS text)"), {"r": oid}
                ).scalar_one()
                size = conn.execute(text("SELECT pg_relation_size(:n)"), {"n": name}).scalar()
                for block in range(int(size or 0) // 8192):
                    page = conn.execute(
                        text("SELECT public.get_raw_page(:n, :b)"), {"n": name, "b": block}
                    ).scalar()
                    pages.append(bytes(page))
    return pages


def holds(blobs: Iterable[bytes], needle: bytes) -> bool:
    """Whether any of `blobs` contains `needle` byte for byte (a carving reader finds it)."""
    return any(needle in blob for blob in blobs)
