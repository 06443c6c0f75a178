"""The audit chain (private: only the vault appends; records in `audit.py`).

Each row stores the previous row's link and its own: **HMAC-SHA256 under the audit key**
(a sealed service key the database does not hold in clear) over a canonical JSON encoding
of its fields (id included) and the previous link.  Without the key a database writer
can neither edit a row, nor delete rows and renumber the rest, nor forge a head: every
such rewrite breaks a link that only the key can make again (docs/keys.md, "Audit").
Truncating the tail and moving the head back leaves a shorter chain that links; that is
caught against something the writer cannot rewrite: the newest verification record (its
own MAC) or, best, a signed checkpoint the operator keeps elsewhere.

Databases written before key providers hold plain SHA-256 links: `audit_head.mac_from`
is the id of the one `audit-format` event that switched the chain to MACs (appended in the
same transaction that made the audit key).  Rows before it verify as SHA-256 links; the
first MAC row binds their last hash, so they cannot be rewritten either.

Appends are serialised through the single `audit_head` row and happen in the caller's
transaction, so an action and its audit record commit together.  Speed: `Chain` remembers
the head it last wrote and advances it with one conditional `UPDATE audit_head ... WHERE
last_id = :old AND last_hash = :old_hash`; when another worker moved the head first it
matches nothing, and the chain falls back to SELECT ... FOR UPDATE and recomputes.

Verification never holds the write lock: it walks rows in chunks of `CHUNK`, each chunk a
read transaction of its own (`read_transaction`), from the newest verification record
whose MAC holds (incremental) or from row 1 (`full`, or against a checkpoint), then writes
its own result in one short transaction.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import Engine, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from coatcheck.vault import _crypto, _driver
from coatcheck.vault.audit import AuditRecord, AuditReport
from coatcheck.vault.db import read_transaction
from coatcheck.vault.errors import AuditChainTampered, DecryptionError
from coatcheck.vault.keys.checkpoint import Checkpoint
from coatcheck.vault.models import AuditHead, AuditRow, AuditVerification

__all__ = [
    "CHUNK",
    "FORMAT_ACTION",
    "KEPT_VERIFICATIONS",
    "Chain",
    "Entry",
    "Head",
    "id_sealer",
    "latest_report",
    "list_rows",
    "read_head",
    "sealed_id_aad",
    "verify",
]

GENESIS = "0" * 64
FORMAT_ACTION = "audit-format"
CHUNK = 10_000
_LINK_DOMAIN = b"coatcheck/audit-link/v1\n"
_RESULT_DOMAIN = b"coatcheck/audit-verification/v1\n"
_HEAD = cast(Table, AuditHead.__table__)
_LOG = cast(Table, AuditRow.__table__)
_RESULTS = cast(Table, AuditVerification.__table__)
# Good verification records kept (each walk writes one: a viewer reloading /ui/audit all day
# would grow the table without end). Only the newest good one with a valid MAC is read (the
# anchor an incremental walk starts from and pins); failures are never pruned: they are the
# record that the chain once broke.
KEPT_VERIFICATIONS = 1000


def _canonical(record: AuditRecord, prev: str) -> bytes:
    fields = [
        record.id,
        repr(record.at),
        record.tenant,
        record.actor,
        record.action,
        record.conversation_id,
        record.ref,
        record.entity_type,
        record.purpose,
        record.outcome,
        prev,
    ]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sha_link(record: AuditRecord, prev: str) -> str:
    """A link of the chain before key providers: SHA-256, no secret."""
    return hashlib.sha256(_canonical(record, prev)).hexdigest()


def mac_link(key: bytes | _crypto.Mac, record: AuditRecord, prev: str) -> str:
    """A link under the audit key: HMAC-SHA256 over the row and the previous link."""
    mac = key if isinstance(key, _crypto.Mac) else _crypto.Mac(key)
    return mac.hexdigest(_LINK_DOMAIN + _canonical(record, prev))


_READ_HEAD = (
    select(_HEAD.c.last_id, _HEAD.c.last_hash, _HEAD.c.mac_from)
    .where(_HEAD.c.id == 1)
    .with_for_update()
)
_MOVE_HEAD = _driver.Statement(
    update(_HEAD)
    .where(
        _HEAD.c.id == 1,
        _HEAD.c.last_id == bindparam("old_id"),
        _HEAD.c.last_hash == bindparam("old_hash"),
    )
    .values(last_id=bindparam("new_id"), last_hash=bindparam("new_hash"))
)
_SET_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(last_id=bindparam("new_id"), last_hash=bindparam("new_hash"))
)
# what an append writes (`sealed_conversation` is only ever set by the 0013 step)
_COLUMNS = [c.key for c in _LOG.columns if c.key != "sealed_conversation"]
_INSERT = _driver.Statement(insert(_LOG), _COLUMNS)


@dataclass(frozen=True)
class Entry:
    """One record to append, before the chain gives it an id."""

    at: float
    tenant: str
    actor: str
    action: str
    outcome: str
    conversation_id: str | None = None
    ref: str | None = None
    entity_type: str | None = None
    purpose: str | None = None


@dataclass(frozen=True)
class Head:
    """The chain's head as stored: the last row's id and link, where MAC links start."""

    last_id: int
    last_hash: str
    mac_from: int | None


def _link(
    key: bytes | _crypto.Mac, entries: Sequence[Entry], last_id: int, last_hash: str
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    prev = last_hash
    mac = key if isinstance(key, _crypto.Mac) else _crypto.Mac(key)
    for offset, e in enumerate(entries, start=1):
        record = AuditRecord(
            last_id + offset,
            e.at,
            e.tenant,
            e.actor,
            e.action,
            e.conversation_id,
            e.ref,
            e.entity_type,
            e.purpose,
            e.outcome,
        )
        row_hash = mac_link(mac, record, prev)
        rows.append({**record.__dict__, "prev_hash": prev, "row_hash": row_hash})
        prev = row_hash
    return rows


class Chain:
    """Appends to the chain, guessing the head from its own last write (checked in SQL)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._head: tuple[int, str] | None = None
        self._key: bytes | None = None
        self._mac: _crypto.Mac | None = None

    @property
    def key(self) -> bytes:
        assert self._key is not None, "the vault binds the audit key before any append"
        return self._key

    def bind(
        self, conn: Connection, load_key: Callable[[], tuple[bytes, bool]], entry: Entry
    ) -> None:
        """Use the audit key for every link; switch a SHA-256 chain to MACs once.

        In `conn`'s transaction, with the head locked first: `load_key()` returns the audit
        key and whether it was made just now (in this transaction).  A new key means the
        chain must not be MAC-linked yet, and the `audit-format` event `entry` starts the
        MAC links (its own link is the first MAC, over the last SHA-256 hash); an empty
        chain just starts with MACs (`mac_from` = 1).  An old key
        with a chain that says "no MACs", or the reverse, is `AuditChainTampered`.
        """
        head = conn.execute(_READ_HEAD).one()
        key, created = load_key()
        if created != (head.mac_from is None):
            raise AuditChainTampered()
        self._key, self._mac = key, _crypto.Mac(key)
        if created and head.last_id == 0:  # an empty chain: MAC links from its first row
            conn.execute(update(_HEAD).where(_HEAD.c.id == 1).values(mac_from=1))
        elif created:
            rows = _link(key, [entry], head.last_id, head.last_hash)
            new_id = rows[-1]["id"]
            conn.execute(
                update(_HEAD)
                .where(_HEAD.c.id == 1)
                .values(last_id=new_id, last_hash=rows[-1]["row_hash"], mac_from=new_id)
            )
            _INSERT.many(conn, rows)

    def append(self, conn: Connection, entries: Sequence[Entry]) -> None:
        """Append `entries` in order inside the caller's transaction."""
        if not entries:
            return
        key = self._mac
        assert key is not None, "the vault binds the audit key before any append"
        with self._lock:
            guess = self._head
        rows: list[dict[str, object]] | None = None
        if guess is not None:
            rows = _link(key, entries, *guess)
            moved = _MOVE_HEAD.rowcount(
                conn,
                {
                    "old_id": guess[0],
                    "old_hash": guess[1],
                    "new_id": rows[-1]["id"],
                    "new_hash": rows[-1]["row_hash"],
                },
            )
            if moved != 1:
                rows = None
        if rows is None:
            head = conn.execute(_READ_HEAD).one()
            rows = _link(key, entries, head.last_id, head.last_hash)
            conn.execute(_SET_HEAD, {"new_id": rows[-1]["id"], "new_hash": rows[-1]["row_hash"]})
        _INSERT.many(conn, rows)
        with self._lock:
            # Only a guess: if this transaction rolls back, the next UPDATE matches nothing.
            self._head = (cast(int, rows[-1]["id"]), cast(str, rows[-1]["row_hash"]))


def _record(row: object) -> AuditRecord:
    return AuditRecord(**{name: getattr(row, name) for name in AuditRecord.__dataclass_fields__})


# -- raw ids of rows chained before pseudonyms (migration 0013) ------------------------------

_SEALED_IDS = b"coatcheck/audit-sealed-conversation/v1"


def id_sealer(key: bytes) -> _crypto.Sealer:
    """The sealer of raw conversation ids in old audit rows, under its own sub-key of the
    audit key (whoever can verify the chain can open them; nobody else)."""
    return _crypto.Sealer(_crypto.derive(key, _SEALED_IDS))


def sealed_id_aad(shown: str) -> bytes:
    """Binds a sealed id to the pseudonym its row shows: a row edited to show another
    conversation no longer opens, so its link fails like any edit."""
    return _crypto.aad("audit-conversation", shown)


class _SealedIds:
    """Opens sealed ids during one walk, each (sealed id, shown pseudonym) once: 0013's
    step seals an id once per run and stores that blob in every row of the id."""

    __slots__ = ("_opened", "_sealer")
    _MAX = 65_536

    def __init__(self, key: bytes) -> None:
        self._sealer = id_sealer(key)
        self._opened: dict[tuple[bytes, str], str | None] = {}

    def open(self, sealed: bytes, shown: str) -> str | None:
        """The raw id, or None when it does not open (edited, moved, forged)."""
        memo = (bytes(sealed), shown)
        if memo in self._opened:
            return self._opened[memo]
        try:
            raw: str | None = self._sealer.open(memo[0], sealed_id_aad(shown)).decode("utf-8")
        except DecryptionError:
            raw = None
        if len(self._opened) >= self._MAX:
            self._opened.clear()
        self._opened[memo] = raw
        return raw


def _chained_record(row: Any, ids: _SealedIds) -> AuditRecord | None:
    """The record as it was chained: the raw id back in place of the pseudonym shown, for
    a row sealed by 0013's step; None when the sealed id does not open."""
    record = _record(row)
    sealed = row.sealed_conversation
    if sealed is None:
        return record
    raw = ids.open(sealed, record.conversation_id or "")
    return None if raw is None else replace(record, conversation_id=raw)


def read_head(conn: Connection) -> Head:
    row = conn.execute(select(_HEAD.c.last_id, _HEAD.c.last_hash, _HEAD.c.mac_from)).one()
    return Head(int(row.last_id), str(row.last_hash), row.mac_from)


# -- verification -----------------------------------------------------------------------------


def _result_mac(
    key: bytes, at: float, seq: int, head: str, checked: int, ok: bool, bad: int | None
) -> str:
    canonical = json.dumps([repr(at), seq, head, checked, ok, bad], separators=(",", ":"))
    return _crypto.hmac_sha256(key, _RESULT_DOMAIN + canonical.encode("ascii")).hex()


def _report(key: bytes, row: Any) -> AuditReport:
    """A stored verification as a report; one whose MAC fails is reported as a failure."""
    ok = bool(row.ok)
    expected = _result_mac(key, row.at, row.seq, row.head, row.checked, ok, row.first_bad)
    if not _crypto.equal(expected, row.mac):
        return AuditReport(False, 0, None, at=row.at, forged=True)
    return AuditReport(
        ok, int(row.seq), row.first_bad, at=row.at, head=row.head, checked=int(row.checked)
    )


def latest_report(conn: Connection, key: bytes) -> AuditReport | None:
    """The newest stored verification (for the viewer): None before the first one."""
    row = conn.execute(select(_RESULTS).order_by(_RESULTS.c.id.desc()).limit(1)).first()
    return None if row is None else _report(key, row)


def _anchor(conn: Connection, key: bytes) -> AuditReport | None:
    """The newest good verification whose MAC holds (rows with a bad MAC are skipped)."""
    query = select(_RESULTS).where(_RESULTS.c.ok.is_(True)).order_by(_RESULTS.c.id.desc())
    for row in conn.execute(query.limit(50)):
        report = _report(key, row)
        if not report.forged:
            return report
    return None


@dataclass
class _Walk:
    """Where a verification walk stands: the last good row and its link."""

    seq: int
    prev: str
    checked: int = 0
    first_bad: int | None = None


def _link_ok(key: _crypto.Mac, ids: _SealedIds, head: Head, row: Any, prev: str) -> bool:
    """Whether `row` links to `prev` the way its place in the chain demands."""
    record = _chained_record(row, ids)
    if record is None:
        return False
    if head.mac_from is None or record.id < head.mac_from:
        link = sha_link(record, prev)  # written before the audit key existed
    elif record.id == head.mac_from > 1 and record.action != FORMAT_ACTION:
        return False  # after SHA-256 rows, MAC links start with the format event only
    else:
        link = mac_link(key, record, prev)
    return row.prev_hash == prev and _crypto.equal(link, row.row_hash)


def _walk_chunk(
    conn: Connection, key: _crypto.Mac, ids: _SealedIds, head: Head, walk: _Walk
) -> bool:
    """Verify up to CHUNK rows after `walk.seq`; True while more rows remain to walk."""
    query = (
        select(_LOG)
        .where(_LOG.c.id > walk.seq, _LOG.c.id <= head.last_id)
        .order_by(_LOG.c.id)
        .limit(CHUNK)
    )
    count = 0
    for row in conn.execute(query):
        count += 1
        if row.id != walk.seq + 1 or not _link_ok(key, ids, head, row, walk.prev):
            walk.first_bad = int(row.id)  # a gap (deleted, renumbered) or a wrong link
            return False
        walk.seq, walk.prev, walk.checked = int(row.id), row.row_hash, walk.checked + 1
    return count == CHUNK


def verify(
    engine: Engine,
    key: bytes,
    clock: Callable[[], float],
    *,
    full: bool = False,
    checkpoints: Sequence[Checkpoint] = (),
    keep: int = KEPT_VERIFICATIONS,
) -> AuditReport:
    """Verify the chain without the write lock and record the result; the report.

    Incremental from the newest good verification record unless `full` (or checkpoints
    are given: then from row 1).  Fails when a link or MAC is wrong, an id is missing or
    repeated, the head does not match the last row, or the row a checkpoint (or the newest
    good verification record) pins no longer carries its link, or no longer exists: the
    chain was truncated behind it and the head moved back.
    """
    full = full or bool(checkpoints)
    with read_transaction(engine) as conn:
        head = read_head(conn)
        anchor = _anchor(conn, key)
    # The newest good verification pins a point of the chain like a checkpoint does (its
    # own MAC holds): an incremental walk starts there, a full one must pass through it.
    pins = list(checkpoints)
    if anchor is not None and anchor.head is not None:
        pins.append(Checkpoint(anchor.rows, anchor.head, anchor.at or 0.0))
    walk = _Walk(0, GENESIS)
    if not full and anchor is not None and anchor.head is not None:
        walk.first_bad = _against(engine, pins[-1], head)
        if walk.first_bad is None:
            walk = _Walk(anchor.rows, anchor.head)
    more, mac, ids = walk.first_bad is None, _crypto.Mac(key), _SealedIds(key)
    while more:
        with read_transaction(engine) as conn:
            more = _walk_chunk(conn, mac, ids, head, walk)
    if walk.first_bad is None and (walk.seq != head.last_id or walk.prev != head.last_hash):
        walk.first_bad = walk.seq + 1  # the head names a row the chain does not end with
    for pin in sorted(pins, key=lambda cp: cp.seq):
        if walk.first_bad is None:
            walk.first_bad = _against(engine, pin, head)
    return _record_result(engine, key, clock(), walk, keep)


def _against(engine: Engine, checkpoint: Checkpoint, head: Head) -> int | None:
    """Where the chain contradicts a (verified) checkpoint: its row, or None."""
    if checkpoint.seq > head.last_id:
        return head.last_id + 1  # truncated below the checkpoint
    if checkpoint.seq == 0:
        return None
    with read_transaction(engine) as conn:
        row = conn.execute(select(_LOG.c.row_hash).where(_LOG.c.id == checkpoint.seq)).first()
    if row is None or not _crypto.equal(row.row_hash, checkpoint.head):
        return checkpoint.seq
    return None


def _record_result(engine: Engine, key: bytes, at: float, walk: _Walk, keep: int) -> AuditReport:
    """Store the walk's result; a good one prunes good records older than the newest `keep`
    (this one, good and MAC'd by us, is then the anchor, so nothing that is read goes)."""
    ok = walk.first_bad is None
    values = {
        "at": at,
        "seq": walk.seq,
        "head": walk.prev,
        "checked": walk.checked,
        "ok": ok,
        "first_bad": walk.first_bad,
    }
    mac = _result_mac(key, at, walk.seq, walk.prev, walk.checked, ok, walk.first_bad)
    with engine.begin() as conn:
        conn.execute(insert(_RESULTS).values(**values, mac=mac))
        if ok:
            newest = select(func.max(_RESULTS.c.id)).scalar_subquery()
            old = _RESULTS.c.id <= newest - keep
            conn.execute(delete(_RESULTS).where(_RESULTS.c.ok.is_(True), old))
    return AuditReport(ok, walk.seq, walk.first_bad, at=at, head=walk.prev, checked=walk.checked)


def list_rows(
    conn: Connection,
    *,
    conversation_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 1000,
) -> list[AuditRecord]:
    """Audit records, newest first, filtered by any of conversation, actor, action."""
    query = select(_LOG).order_by(_LOG.c.id.desc()).limit(limit)
    if conversation_id is not None:
        query = query.where(_LOG.c.conversation_id == conversation_id)
    if actor is not None:
        query = query.where(_LOG.c.actor == actor)
    if action is not None:
        query = query.where(_LOG.c.action == action)
    return [_record(row) for row in conn.execute(query)]
