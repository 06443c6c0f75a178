"""Retention: shred now, end under the per-type policy, expire what is due, what is held.

Lifecycle (issue 6, docs/lifecycle.md): `end` closes the live epoch under the per-type
retention policy (shred values now, keep them `mask`ed, or `retain` them until a
deadline); an ended epoch never takes new values (the next tokenize opens a new epoch),
and its kept values open only through `reveal_for` with a policy that allows it.  Values
carry an `expires_at` (per-type TTL, temporary references, retention deadlines);
`expire_due` forgets them and shreds ended epochs left empty, claiming rows with row
locks so several workers sweeping at once each act once.

Shredding nulls the wrapped DEK, the ciphertexts and the blind indexes; the reference rows
stay as tombstones so old references raise `ConversationShredded`, not `UnknownReference`.
Lock order everywhere: epochs -> values -> audit head (the gateway locks its state row
before, when it ends a conversation in its own transaction).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, exists, func, select, update
from sqlalchemy.engine import Connection

from coatcheck.vault._arguments import check_conversation, require
from coatcheck.vault._chain import Entry
from coatcheck.vault._keycache import KeyCache
from coatcheck.vault._statements import CONV, VAL
from coatcheck.vault._storage import Storage
from coatcheck.vault._transaction import Transaction
from coatcheck.vault.lifecycle import (
    EXPIRED,
    MASKED,
    RETAINED,
    SHREDDED,
    TEMPORARY,
    EndSummary,
    ExpirySummary,
    Holdings,
    Policies,
)
from coatcheck.vault.outcomes import Outcome

__all__ = ["Retainer", "shred_epochs"]


class _EndPlan:
    """What `end` does to each live value, grouped into a few UPDATEs."""

    def __init__(self) -> None:
        self.destroy: list[int] = []  # shred types and temporary values
        self.expired: list[int] = []  # past their TTL, not swept yet
        self.masked: list[int] = []
        self.retain: dict[float, list[int]] = {}  # deadline -> value ids
        self.kept: dict[int, set[str]] = {}  # epoch id -> statuses kept in it
        self.deadline: dict[int, float] = {}  # epoch id -> last retention deadline

    def add(self, value: Any, policies: Policies, now: float) -> None:
        if value.expires_at is not None and value.expires_at <= now:
            self.expired.append(value.id)
            return
        retention = policies.retention_for(value.entity_type)
        if value.status == TEMPORARY or retention.mode == "shred":
            self.destroy.append(value.id)
            return
        pk = value.conversation_pk
        if retention.mode == "mask":
            self.masked.append(value.id)
            self.kept.setdefault(pk, set()).add(MASKED)
            return
        assert retention.seconds is not None
        deadline = now + retention.seconds
        if value.expires_at is not None:
            deadline = min(deadline, value.expires_at)
        self.retain.setdefault(deadline, []).append(value.id)
        self.kept.setdefault(pk, set()).add(RETAINED)
        self.deadline[pk] = max(deadline, self.deadline.get(pk, deadline))

    def apply(self, conn: Connection) -> None:
        gone = {"ciphertext": None, "blind_index": None}
        for ids, values in (
            (self.destroy, {**gone, "status": SHREDDED}),
            (self.expired, {**gone, "status": EXPIRED}),
            (self.masked, {"blind_index": None, "status": MASKED}),
        ):
            if ids:
                conn.execute(update(VAL).where(VAL.c.id.in_(ids)).values(**values))
        for deadline, ids in self.retain.items():
            conn.execute(
                update(VAL)
                .where(VAL.c.id.in_(ids))
                .values(blind_index=None, status=RETAINED, expires_at=deadline)
            )


def shred_epochs(conn: Connection, ids: list[int], now: float) -> None:
    """Null the data keys, ciphertexts and blind indexes of these epochs; mark them ended."""
    if not ids:
        return
    conn.execute(
        update(CONV)
        .where(CONV.c.id.in_(ids))
        .values(
            wrapped_dek=None,
            shredded_at=now,
            ended_at=func.coalesce(CONV.c.ended_at, now),
            end_status=SHREDDED,
            retain_until=None,
        )
    )
    conn.execute(
        update(VAL)
        .where(VAL.c.conversation_pk.in_(ids))
        .values(
            ciphertext=None,
            blind_index=None,
            status=case((VAL.c.ciphertext.is_not(None), SHREDDED), else_=VAL.c.status),
        )
    )


class Retainer:
    """shred, end, expire_due and holdings over one `Storage`."""

    __slots__ = ("_keys", "_policies", "_storage")

    def __init__(self, storage: Storage, keys: KeyCache, policies: Policies) -> None:
        self._storage = storage
        self._keys = keys
        self._policies = policies

    def _entry(
        self,
        now: float,
        actor: str,
        action: str,
        outcome: Outcome,
        conversation_id: str,
        ref: str | None = None,
        entity_type: str | None = None,
        purpose: str | None = None,
    ) -> Entry:
        """One audit entry of this tenant (lifecycle rows carry no refusal reason)."""
        text = outcome.audit_text()
        tenant = self._storage.tenant
        return Entry(now, tenant, actor, action, text, conversation_id, ref, entity_type, purpose)

    def shred(
        self, conversation_id: str, actor: str, action: str = "shred"
    ) -> tuple[int, list[str]]:
        """Destroy every epoch of the conversation; audited.  (Epochs shredded now, the KEK
        ids that wrapped any epoch: for a caller that must destroy those too.)"""
        check_conversation(conversation_id)
        storage = self._storage
        now = storage.clock()
        with storage.engine.begin() as conn:
            epochs = conn.execute(
                select(CONV.c.id, CONV.c.kek_id, CONV.c.wrapped_dek)
                .where(CONV.c.tenant == storage.tenant, CONV.c.conversation_id == conversation_id)
                .with_for_update()
            ).all()
            ids = [e.id for e in epochs if e.wrapped_dek is not None]
            shred_epochs(conn, ids, now)
            outcome = Outcome.OK if ids else Outcome.NOOP
            entry = self._entry(now, actor, action, outcome, conversation_id)
            storage.chain.append(conn, [entry])
        if ids:
            storage.unsettled = True
        self._keys.evict(conversation_id, ids)
        return len(ids), sorted({e.kek_id for e in epochs if e.kek_id is not None})

    def end(
        self, conversation_id: str, actor: str, reason: str, tx: Transaction | None
    ) -> EndSummary:
        check_conversation(conversation_id)
        with self._storage.within(tx) as conn:
            summary, shredded = self._end_tx(conn, conversation_id, actor, reason)
        self._keys.evict(conversation_id, shredded)
        if summary.ended_epochs:
            self._storage.unsettled = True
        return summary

    def _end_tx(
        self, conn: Connection, conversation_id: str, actor: str, reason: str
    ) -> tuple[EndSummary, list[int]]:
        now = self._storage.clock()
        epochs = conn.execute(
            select(CONV.c.id, CONV.c.wrapped_dek)
            .where(
                CONV.c.tenant == self._storage.tenant,
                CONV.c.conversation_id == conversation_id,
                CONV.c.ended_at.is_(None),
            )
            .order_by(CONV.c.id)
            .with_for_update()
        ).all()
        live = [e.id for e in epochs if e.wrapped_dek is not None]
        dead = [e.id for e in epochs if e.wrapped_dek is None]  # shredded, never marked ended
        plan = _EndPlan()
        if live:
            values = conn.execute(
                select(
                    VAL.c.id,
                    VAL.c.conversation_pk,
                    VAL.c.entity_type,
                    VAL.c.status,
                    VAL.c.expires_at,
                ).where(VAL.c.conversation_pk.in_(live), VAL.c.ciphertext.is_not(None))
            ).all()
            for value in values:
                plan.add(value, self._policies, now)
            plan.apply(conn)
        empty = [pk for pk in live if pk not in plan.kept]
        if empty or dead:
            conn.execute(
                update(CONV)
                .where(CONV.c.id.in_(empty + dead))
                .values(
                    wrapped_dek=None,
                    shredded_at=func.coalesce(CONV.c.shredded_at, now),
                    ended_at=now,
                    end_status=SHREDDED,
                )
            )
        for pk, statuses in plan.kept.items():
            conn.execute(
                update(CONV)
                .where(CONV.c.id == pk)
                .values(
                    ended_at=now,
                    end_status=MASKED if MASKED in statuses else RETAINED,
                    retain_until=plan.deadline.get(pk),
                )
            )
        summary = EndSummary(
            ended_epochs=len(epochs),
            shredded=len(plan.destroy) + len(plan.expired),
            masked=len(plan.masked),
            retained=sum(len(ids) for ids in plan.retain.values()),
            holdings=self._holdings(conn, conversation_id),
        )
        entry = self._entry(now, actor, "end", summary.outcome, conversation_id, purpose=reason)
        self._storage.chain.append(conn, [entry])
        return summary, empty

    def expire_due(self, actor: str, limit: int, tx: Transaction | None) -> ExpirySummary:
        require("limit", isinstance(limit, int) and limit > 0)
        with self._storage.within(tx) as conn:
            summary, shredded = self._expire_tx(conn, actor, limit)
        self._keys.evict(None, shredded)
        if summary.forgotten or summary.shredded_epochs:
            self._storage.unsettled = True
        return summary

    def _expire_tx(
        self, conn: Connection, actor: str, limit: int
    ) -> tuple[ExpirySummary, list[int]]:
        now = self._storage.clock()
        # Claim: the epochs holding due values, locked in the same statement, skipping
        # those another transaction holds (the SKIP LOCKED queue pattern on PostgreSQL).
        claim = (
            select(CONV.c.id, CONV.c.conversation_id, CONV.c.ended_at)
            .join(VAL, VAL.c.conversation_pk == CONV.c.id)
            .where(
                CONV.c.tenant == self._storage.tenant,
                CONV.c.wrapped_dek.is_not(None),
                VAL.c.expires_at <= now,
                VAL.c.ciphertext.is_not(None),
            )
            .limit(limit)
            .with_for_update(of=CONV, skip_locked=True)
        )
        locked = list({row.id: row for row in conn.execute(claim)}.values())
        if not locked:
            return ExpirySummary(), []
        names = {row.id: row.conversation_id for row in locked}
        forgotten = conn.execute(
            update(VAL)
            .where(
                VAL.c.conversation_pk.in_(list(names)),
                VAL.c.expires_at <= now,
                VAL.c.ciphertext.is_not(None),
            )
            .values(
                ciphertext=None,
                blind_index=None,
                status=case((VAL.c.status == RETAINED, SHREDDED), else_=EXPIRED),
            )
            .returning(VAL.c.conversation_pk, VAL.c.ref, VAL.c.entity_type, VAL.c.status)
        ).all()
        ended = [row.id for row in locked if row.ended_at is not None]
        shredded: list[int] = []
        if ended:
            holds = exists().where(
                VAL.c.conversation_pk == CONV.c.id, VAL.c.ciphertext.is_not(None)
            )
            shredded = list(
                conn.execute(
                    update(CONV)
                    .where(CONV.c.id.in_(ended), CONV.c.wrapped_dek.is_not(None), ~holds)
                    .values(
                        wrapped_dek=None, shredded_at=now, end_status=SHREDDED, retain_until=None
                    )
                    .returning(CONV.c.id)
                ).scalars()
            )
        entries = [
            self._entry(
                now,
                actor,
                "expire",
                Outcome.OK,
                names[row.conversation_pk],
                row.ref,
                row.entity_type,
                "retention" if row.status == SHREDDED else "ttl",
            )
            for row in sorted(forgotten, key=lambda r: (r.conversation_pk, r.ref))
        ]
        entries += [
            self._entry(now, actor, "shred", Outcome.OK, names[pk], purpose="retention")
            for pk in sorted(shredded)
        ]
        self._storage.chain.append(conn, entries)
        touched = {names[row.conversation_pk] for row in forgotten} | {names[pk] for pk in shredded}
        summary = ExpirySummary(len(forgotten), len(shredded), frozenset(touched))
        return summary, shredded

    def holdings(self, conversation_id: str, tx: Transaction | None) -> Holdings:
        check_conversation(conversation_id)
        with self._storage.within(tx) as conn:
            return self._holdings(conn, conversation_id)

    def _holdings(self, conn: Connection, conversation_id: str) -> Holdings:
        mine = (CONV.c.tenant == self._storage.tenant, CONV.c.conversation_id == conversation_id)
        live_epoch = case((CONV.c.wrapped_dek.is_not(None) & CONV.c.ended_at.is_(None), 1), else_=0)
        epochs, live = conn.execute(
            select(func.count(CONV.c.id), func.coalesce(func.sum(live_epoch), 0)).where(*mine)
        ).one()
        kept = conn.execute(
            select(VAL.c.status, func.count(VAL.c.id), func.max(VAL.c.expires_at))
            .join(CONV, CONV.c.id == VAL.c.conversation_pk)
            .where(
                *mine,
                CONV.c.ended_at.is_not(None),
                CONV.c.wrapped_dek.is_not(None),
                VAL.c.ciphertext.is_not(None),
                VAL.c.status.in_((MASKED, RETAINED)),
            )
            .group_by(VAL.c.status)
        ).all()
        counts = {row[0]: (int(row[1]), row[2]) for row in kept}
        masked = counts.get(MASKED, (0, None))[0]
        retained, retain_until = counts.get(RETAINED, (0, None))
        return Holdings(int(epochs), bool(live), masked, retained, retain_until)
