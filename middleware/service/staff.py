"""PROVISIONAL — replaced by the lifecycle branch.

Staff access to conversations (the log viewer's three calls): the conversation list, a
conversation's status, and the role-gated reveal.  This version is built only on what
exists today, so the UI can be written and tested against the contract:

- status: `active` while the vault's newest key epoch of the conversation is not shredded
  (or when history exists but nothing was vaulted yet), `shredded` once it is, `unknown`
  when neither history nor vault know the id.  Ending a conversation shreds it today, so
  `ended`/`masked`/`retained` never occur here.
- reveal: an agent only while the conversation is active, an auditor (or admin) only with
  a stated purpose, nobody else.  Allowed reveals go through `Vault.reveal` with a grant
  built in-process (one type, one conversation, 30 s), so the vault audits them as usual;
  refusals decided here are appended to the same audit chain before raising.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.exc import SQLAlchemyError

from middleware.models import HistoryEntry
from middleware.render import REFERENCE_RE
from middleware.service.apikeys import Role
from middleware.service.errors import BadText, RoleForbidden, StorageUnavailable
from middleware.service.state import Gateway
from vault import Grant
from vault import audit as vault_audit
from vault.models import Conversation

__all__ = [
    "ConversationNotActive",
    "PurposeRequired",
    "RevealForbidden",
    "conversation_status",
    "list_conversations",
    "staff_reveal",
]

_CONV = cast(Table, Conversation.__table__)
_HIST = cast(Table, HistoryEntry.__table__)
_GRANT_SECONDS = 30.0
_SCAN_CAP = 10_000  # conversations considered per list call (status is filtered after)


class RevealForbidden(RoleForbidden):
    code = "reveal_forbidden"
    default_message = "this role may not reveal values"


class PurposeRequired(RoleForbidden):
    code = "purpose_required"
    default_message = "an auditor must state a purpose to reveal a value"


class ConversationNotActive(RoleForbidden):
    code = "conversation_not_active"
    default_message = "agents may reveal only while the conversation is active"


def _latest_epochs(gw: Gateway, ids: list[str]) -> dict[str, tuple[bool, float | None]]:
    """{conversation_id: (shredded, shredded_at)} for the newest epoch of each id."""
    if not ids:
        return {}
    query = (
        select(_CONV.c.conversation_id, _CONV.c.epoch, _CONV.c.wrapped_dek, _CONV.c.shredded_at)
        .where(_CONV.c.tenant == gw.settings.tenant, _CONV.c.conversation_id.in_(ids))
        .order_by(_CONV.c.conversation_id, _CONV.c.epoch.desc())
    )
    found: dict[str, tuple[bool, float | None]] = {}
    try:
        with gw.reader.connect() as conn:
            for row in conn.execute(query):
                found.setdefault(row.conversation_id, (row.wrapped_dek is None, row.shredded_at))
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None
    return found


def _has_history(gw: Gateway, conversation_id: str) -> bool:
    query = select(_HIST.c.id).where(_HIST.c.conversation_id == conversation_id).limit(1)
    try:
        with gw.reader.connect() as conn:
            return conn.execute(query).first() is not None
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None


def conversation_status(gw: Gateway, conversation_id: str) -> str:
    """`active` | `shredded` | `unknown` here (the lifecycle adds ended/masked/retained)."""
    epoch = _latest_epochs(gw, [conversation_id]).get(conversation_id)
    if epoch is not None:
        return "shredded" if epoch[0] else "active"
    return "active" if _has_history(gw, conversation_id) else "unknown"


def list_conversations(
    gw: Gateway,
    *,
    search: str | None = None,
    status: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Conversations with history, newest activity first, filtered by id substring and dates.

    `since` keeps conversations active at or after it, `until` those started at or before it.
    """
    started = func.min(_HIST.c.created_at).label("started_at")
    last = func.max(_HIST.c.created_at).label("last_activity")
    query = select(_HIST.c.conversation_id, started, last).group_by(_HIST.c.conversation_id)
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(_HIST.c.conversation_id.like(f"%{escaped}%", escape="\\"))
    if since is not None:
        query = query.having(func.max(_HIST.c.created_at) >= since)
    if until is not None:
        query = query.having(func.min(_HIST.c.created_at) <= until)
    query = query.order_by(last.desc()).limit(_SCAN_CAP)
    try:
        with gw.reader.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None
    epochs = _latest_epochs(gw, [r.conversation_id for r in rows])
    out: list[dict[str, Any]] = []
    for row in rows:
        shredded, shredded_at = epochs.get(row.conversation_id, (False, None))
        state = "shredded" if shredded else "active"
        if status and state != status:
            continue
        out.append(
            {
                "conversation_id": row.conversation_id,
                "status": state,
                "started_at": row.started_at,
                "last_activity": row.last_activity,
                "ended_at": shredded_at,
            }
        )
        if len(out) >= limit:
            break
    return out


def _refuse(
    gw: Gateway,
    exc: RoleForbidden,
    conversation_id: str,
    ref: tuple[str, str],
    actor: str,
    purpose: str | None,
) -> RoleForbidden:
    """Audit a refusal decided here (same chain as the vault's own records), return it."""
    note = exc.code if not purpose else f"{exc.code}: {purpose}"
    try:
        with gw.vault.engine.begin() as conn:
            vault_audit.append(
                conn,
                at=gw.clock(),
                tenant=gw.settings.tenant,
                actor=actor[:255],
                action="reveal",
                outcome="refused",
                conversation_id=conversation_id,
                ref=ref[1],
                entity_type=ref[0],
                purpose=note[:255],
            )
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None
    return exc


def staff_reveal(
    gw: Gateway,
    conversation_id: str,
    reference: str,
    role: Role,
    actor: str,
    purpose: str | None,
) -> str:
    """The value behind `reference`, if `role` may see it now; every attempt is audited."""
    match = REFERENCE_RE.fullmatch(reference)
    if match is None or match.group(3) is not None:
        raise BadText("reference", "must be a reference such as CC_EMAIL_ADDRESS_7k2m9xq4cw")
    ref = (match.group(1), match.group(2))
    purpose = (purpose or "").strip() or None
    status = conversation_status(gw, conversation_id)
    if role is Role.AGENT:
        if status not in ("active", "shredded", "unknown"):
            raise _refuse(
                gw, ConversationNotActive(role.value), conversation_id, ref, actor, purpose
            )
    elif role in (Role.AUDITOR, Role.ADMIN):
        if purpose is None:
            raise _refuse(gw, PurposeRequired(role.value), conversation_id, ref, actor, purpose)
    else:
        raise _refuse(gw, RevealForbidden(role.value), conversation_id, ref, actor, purpose)
    grant = Grant(
        conversation_id=conversation_id,
        entity_types=frozenset({ref[0]}),
        purpose=(purpose or "agent: active conversation")[:255],
        caller=actor[:255],
        expires_at=gw.clock() + _GRANT_SECONDS,
    )
    # Shredded and unknown references are audited and raised (410 / 404) by the vault.
    return gw.vault.reveal(conversation_id, ref[1], grant)
