"""Conversation lifecycle: the retention config and THE function that ends a conversation.

`end_conversation` is the one way a conversation ends: the `/end` route, the bot's `end`
directive and the sweeper's idle timeout all call it.  In ONE transaction it claims the
conversation's state row (a conditional UPDATE: of two workers, one wins; the other's
UPDATE waits for the winner's commit and then matches nothing), applies the per-type
retention in the vault (`Vault.end` in the same `Transaction`, audited) and stores the
outcome.  Decisions: docs/lifecycle.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Connection, Table, select, update

from coatcheck.middleware.detect.errors import ConfigError
from coatcheck.middleware.models import ConversationState
from coatcheck.middleware.service.export_routes import export_at_end
from coatcheck.middleware.service.state import Gateway
from coatcheck.middleware.service.store import guarded_tx, new_state_row
from coatcheck.vault import Policies, Retention, Transaction

__all__ = [
    "EndReason",
    "EndResult",
    "end_conversation",
    "ensure_active",
    "load_policies",
    "parse_duration",
    "sync_status",
]

_STATE = cast(Table, ConversationState.__table__)
_DURATION = re.compile(r"([1-9][0-9]{0,6})([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_DURATION = 3650 * 86400


class EndReason(StrEnum):
    API = "api"  # POST /v1/conversations/{id}/end
    BOT = "bot"  # the bot's {"end": true} directive
    IDLE = "idle"  # the sweeper: no message for COATCHECK_IDLE_TIMEOUT_SECONDS


@dataclass(frozen=True)
class EndResult:
    """What `end_conversation` did.

    `ended` is True when this call ended the conversation (False: it had ended already,
    or for an idle end, another worker ended it or a message arrived).  `status` is the
    conversation's status afterwards (see `staff.conversation_status`).
    """

    conversation_id: str
    ended: bool
    status: str
    reason: str
    ended_at: float | None
    retain_until: float | None


# -- config -------------------------------------------------------------------------------


def parse_duration(value: Any, field: str) -> float:
    """Seconds in a duration such as `30d`, `12h`, `15m`, `45s`; errors name `field`."""
    match = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(field, "must be a duration such as 30d, 12h, 15m or 45s")
    seconds = int(match.group(1)) * _UNIT[match.group(2)]
    if seconds > _MAX_DURATION:
        raise ConfigError(field, "must be at most 3650d")
    return float(seconds)


def _retention(value: Any, field: str) -> Retention:
    if value is None or value == "shred":
        return Retention("shred")
    if value == "mask":
        return Retention("mask")
    if isinstance(value, dict) and set(value) == {"retain"}:
        return Retention("retain", parse_duration(value["retain"], f"{field}.retain"))
    raise ConfigError(field, "must be shred, mask or {retain: <duration>}")


def load_policies(data: dict[str, Any] | None) -> Policies:
    """Per-type `retention` and `ttl` from the YAML `types:` and `custom_types:` sections.

    Types without `retention` are shredded at the end (privacy first); types without
    `ttl` live as long as their conversation's retention allows.
    """
    data = data or {}
    entries: list[tuple[str, str, dict[str, Any]]] = []
    types = data.get("types") or {}
    if isinstance(types, dict):
        entries += [(f"types.{n}", str(n), s) for n, s in types.items() if isinstance(s, dict)]
    customs = data.get("custom_types") or []
    if isinstance(customs, list):
        entries += [
            (f"custom_types.{i}", str(c.get("name")), c)
            for i, c in enumerate(customs)
            if isinstance(c, dict)
        ]
    retention: dict[str, Retention] = {}
    ttl: dict[str, float] = {}
    for field, name, settings in entries:
        if settings.get("retention") is not None:
            retention[name] = _retention(settings["retention"], f"{field}.retention")
        if settings.get("ttl") is not None:
            ttl[name] = parse_duration(settings["ttl"], f"{field}.ttl")
    return Policies(retention=retention, ttl=ttl)


# -- ending -------------------------------------------------------------------------------


def end_conversation(gw: Gateway, conversation_id: str, actor: str, reason: str) -> EndResult:
    """End the conversation now (or, for `idle`, only if it is still idle); one transaction.

    Idempotent: ending an ended conversation changes nothing but still ends any key epoch
    opened since (e.g. by `/v1/redact`), and answers its current status.
    """
    why = EndReason(reason)
    with guarded_tx(gw.writer) as tx:
        result = _end(tx, gw, conversation_id, actor, why)
    if why is not EndReason.IDLE:  # the sweeper settles once per pass (`Vault.maintain`)
        gw.vault.settle()  # what the end shredded leaves the live files now (docs/keys.md)
    if result.ended:  # after the commit: one place for every way a conversation ends
        export_at_end(gw, conversation_id, result.status, result.ended_at)
    return result


def _end(
    tx: Transaction, gw: Gateway, conversation_id: str, actor: str, why: EndReason
) -> EndResult:
    now = gw.clock()
    claim = update(_STATE).where(
        _STATE.c.conversation_id == conversation_id, _STATE.c.status == "active"
    )
    if why is EndReason.IDLE:
        timeout = gw.settings.idle_timeout_seconds
        if timeout <= 0:
            return _unchanged(tx, conversation_id, why)
        claim = claim.where(_STATE.c.last_activity <= now - timeout)
    closing = claim.values(
        status="ended", ended_at=now, end_reason=why.value, context_json=None, updated_at=now
    )
    claimed = tx.execute(closing.returning(_STATE.c.conversation_id)).first() is not None
    if not claimed:
        if why is EndReason.IDLE:
            return _unchanged(tx, conversation_id, why)
        claimed = _insert_ended(tx, conversation_id, why, now)
        if not claimed:  # already ended: still lock the row first (lock order, below)
            tx.execute(
                select(_STATE.c.conversation_id)
                .where(_STATE.c.conversation_id == conversation_id)
                .with_for_update()
            )
    # Lock order everywhere: state row -> key epochs -> values -> audit head.
    summary = gw.vault.end(conversation_id, actor, why.value, tx=tx)
    holdings = summary.holdings
    status = holdings.status if holdings.status != "active" else "ended"
    row = tx.execute(
        update(_STATE)
        .where(_STATE.c.conversation_id == conversation_id)
        .values(status=status, retain_until=holdings.retain_until, context_json=None)
        .returning(_STATE.c.ended_at)
    ).first()
    ended_at = row.ended_at if row is not None else now
    return EndResult(conversation_id, claimed, status, why.value, ended_at, holdings.retain_until)


def _insert_ended(tx: Transaction, conversation_id: str, why: EndReason, now: float) -> bool:
    """A conversation the gateway never recorded (e.g. only `/v1/redact`): store it ended.

    True when this call created the row; False when it existed (already ended).  A row
    created by a concurrent message first is left to that message (the claim missed it:
    it was not active yet when read), so the end is a no-op for the state and the vault
    epochs are ended all the same.
    """
    ended = new_state_row(
        tx.dialect, conversation_id, now, status="ended", ended_at=now, end_reason=why.value
    )
    created = tx.execute(
        ended.on_conflict_do_nothing(index_elements=[_STATE.c.conversation_id]).returning(
            _STATE.c.conversation_id
        )
    ).first()
    return created is not None


def _unchanged(tx: Transaction, conversation_id: str, why: EndReason) -> EndResult:
    row = tx.execute(
        select(_STATE.c.status, _STATE.c.ended_at, _STATE.c.retain_until).where(
            _STATE.c.conversation_id == conversation_id
        )
    ).first()
    if row is None:
        return EndResult(conversation_id, False, "unknown", why.value, None, None)
    return EndResult(conversation_id, False, row.status, why.value, row.ended_at, row.retain_until)


def sync_status(tx: Transaction, gw: Gateway, conversation_id: str) -> None:
    """After an expiry: an ended conversation's status follows what the vault still holds.

    The state row is locked before the vault is read, so an `end` committing meanwhile is
    seen, never overwritten with an older picture.
    """
    status = tx.execute(
        select(_STATE.c.status).where(_STATE.c.conversation_id == conversation_id).with_for_update()
    ).scalar()
    if status is None or status == "active":
        return
    holdings = gw.vault.holdings(conversation_id, tx=tx)
    if holdings.status == "active":
        return
    tx.execute(
        update(_STATE)
        .where(_STATE.c.conversation_id == conversation_id)
        .values(status=holdings.status, retain_until=holdings.retain_until)
    )


def ensure_active(conn: Connection, conversation_id: str, now: float) -> str:
    """The conversation's status, starting it (an `active` row) if the gateway never saw it.

    Used before vaulting outside the webhook (temporary references), so the idle sweeper
    ends such a conversation too.
    """
    conn.execute(
        new_state_row(conn.dialect.name, conversation_id, now).on_conflict_do_nothing(
            index_elements=[_STATE.c.conversation_id]
        )
    )
    status = conn.execute(
        select(_STATE.c.status).where(_STATE.c.conversation_id == conversation_id)
    ).scalar_one()
    return str(status)
