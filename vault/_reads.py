"""The read side: lookup (no value), reveal under a grant or a policy, and checks.

Every read that may open a value runs find -> decide -> decrypt -> audit in ONE
transaction, so an attempt and its audit row commit together and a shred by another
worker is seen at once (the value is read joined with its epoch's wrapped key).  The
decisions are `_access.py`'s; the exception a caller gets comes from `Outcome.error`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy.engine import Connection

from coatcheck.vault import _access
from coatcheck.vault._access import Decide, Verdict
from coatcheck.vault._arguments import check_conversation, check_ref
from coatcheck.vault._chain import Entry
from coatcheck.vault._keycache import KeyCache, value_aad
from coatcheck.vault._statements import FIND, FIND_ONE
from coatcheck.vault._storage import Storage
from coatcheck.vault.errors import DecryptionError, UnknownReference
from coatcheck.vault.grants import Grant
from coatcheck.vault.keys.errors import KeyDestroyed
from coatcheck.vault.lifecycle import ValueState
from coatcheck.vault.outcomes import Outcome
from coatcheck.vault.predicates import Predicate

__all__ = ["Reader", "RefInfo"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class RefInfo:
    """What may be known about a reference without a grant: never the value."""

    ref: str
    entity_type: str
    created_at: float


def _raise(verdict: Verdict, ref_id: str) -> None:
    error = verdict.outcome.error(ref_id, verdict.reason)
    if error is not None:
        raise error


class Reader:
    """lookup, reveal_many, reveal_for, check over one `Storage`."""

    __slots__ = ("_keys", "_storage")

    def __init__(self, storage: Storage, keys: KeyCache) -> None:
        self._storage = storage
        self._keys = keys

    def _find(
        self, conn: Connection, conversation_id: str, ref_ids: Sequence[str]
    ) -> dict[str, Any]:
        """Each ref's row joined with its epoch (newest epoch first)."""
        found: dict[str, Any] = {}
        params: dict[str, Any] = {"tenant": self._storage.tenant, "cid": conversation_id}
        if len(ref_ids) == 1:
            rows: Iterable[Any] = FIND_ONE.rows(conn, {**params, "ref": ref_ids[0]})
        else:
            rows = conn.execute(FIND, {**params, "refs": sorted(set(ref_ids))})
        for row in rows:
            found.setdefault(row.ref, row)  # newest epoch first
        return found

    def _open(self, conn: Connection, conversation_id: str, row: Any) -> str:
        keys = self._keys.open(conn, row, conversation_id)
        aad = value_aad(self._storage.tenant, conversation_id, row.epoch, row.ref, row.entity_type)
        return keys.sealer.open(row.ciphertext, aad).decode("utf-8")

    def lookup(self, conversation_id: str, ref_id: str) -> RefInfo:
        check_conversation(conversation_id)
        check_ref(ref_id)
        with self._storage.engine.begin() as conn:
            row = self._find(conn, conversation_id, [ref_id]).get(ref_id)
        if row is None:
            raise UnknownReference(ref_id)
        return RefInfo(row.ref, row.entity_type, row.created_at)

    def _read_audited(
        self,
        conversation_id: str,
        ref_ids: Sequence[str],
        *,
        action: str,
        actor: str,
        purpose: str | None,
        decide: Decide,
        use: Callable[[str], _T],
        all_or_nothing: bool = False,
        detailed: bool = False,
    ) -> list[tuple[Verdict, _T | None]]:
        """Find, decide, decrypt, audit: one transaction.

        With `all_or_nothing`, nothing is decrypted unless every reference passes, and only
        the failing references are audited (the others were not revealed).  With `detailed`,
        a refusal is audited with its reason (`refused:<reason>`), else as `refused`.
        """
        storage = self._storage
        results: list[tuple[Verdict, _T | None]] = []
        with storage.engine.begin() as conn:
            found = self._find(conn, conversation_id, ref_ids)
            rows = [found.get(ref) for ref in ref_ids]
            now = storage.clock()
            prechecks = [_access.precheck(row, decide, now) for row in rows]
            withhold = all_or_nothing and any(p is not None for p in prechecks)
            for row, pre in zip(rows, prechecks, strict=True):
                if pre is not None or row is None:
                    results.append((pre or _access.UNKNOWN, None))
                elif withhold:
                    results.append((_access.OK, None))  # not opened, not audited
                else:
                    try:
                        results.append((_access.OK, use(self._open(conn, conversation_id, row))))
                    except DecryptionError:
                        results.append((_access.ERROR, None))
                    except KeyDestroyed:  # its KEK is gone (a copy restored from before)
                        results.append((_access.KEY_GONE, None))
            ok = Outcome.OK
            failed = any(verdict.outcome is not ok for verdict, _ in results)
            if all_or_nothing and failed:
                results = [(verdict, None) for verdict, _ in results]
            at = storage.clock()
            storage.chain.append(
                conn,
                [
                    Entry(
                        at,
                        storage.tenant,
                        actor,
                        action,
                        verdict.detailed if detailed else verdict.brief,
                        conversation_id,
                        ref,
                        row.entity_type if row is not None else None,
                        purpose,
                    )
                    for ref, row, (verdict, _) in zip(ref_ids, rows, results, strict=True)
                    if not (all_or_nothing and failed and verdict.outcome is ok)
                ],
            )
        return results

    def reveal_many(self, conversation_id: str, ref_ids: Sequence[str], grant: Grant) -> list[str]:
        check_conversation(conversation_id)
        refs = list(ref_ids)
        for ref_id in refs:
            check_ref(ref_id)
        if not refs:
            return []
        now = self._storage.clock()
        results = self._read_audited(
            conversation_id,
            refs,
            action="reveal",
            actor=grant.caller,
            purpose=grant.purpose,
            decide=_access.grant_decider(conversation_id, grant, now),
            use=lambda v: v,
            all_or_nothing=True,
        )
        for ref_id, (verdict, _) in zip(refs, results, strict=True):
            if verdict.outcome is not Outcome.OK:
                _raise(_access.grant_failure(conversation_id, grant, now, verdict), ref_id)
        return [cast(str, value) for _, value in results]

    def reveal_for(
        self,
        conversation_id: str,
        ref_id: str,
        *,
        actor: str,
        purpose: str | None,
        policy: Callable[[ValueState], str | None],
    ) -> str:
        check_conversation(conversation_id)
        check_ref(ref_id)
        now = self._storage.clock()
        [(verdict, value)] = self._read_audited(
            conversation_id,
            [ref_id],
            action="reveal",
            actor=actor,
            purpose=purpose,
            decide=_access.policy_decider(policy, now),
            use=lambda v: v,
            detailed=True,
        )
        _raise(verdict, ref_id)
        return cast(str, value)

    def check(
        self,
        conversation_id: str,
        ref_id: str,
        predicate: Predicate,
        actor: str,
        purpose: str,
        entity_type: str | None = None,
    ) -> bool:
        check_conversation(conversation_id)
        check_ref(ref_id)
        now = self._storage.clock()
        [(verdict, result)] = self._read_audited(
            conversation_id,
            [ref_id],
            action="check",
            actor=actor,
            purpose=purpose,
            decide=_access.check_decider(now, entity_type),
            use=predicate,
        )
        _raise(verdict, ref_id)
        return bool(result)
