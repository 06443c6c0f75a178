"""Staff access (agents, auditors): reveals under the lifecycle rules, and conversation lists.

The rules (docs/lifecycle.md), checked inside the vault's reveal transaction against the
value's own key epoch, so a conversation that ended (or reopened with a new epoch) is
judged by the state of the epoch that holds the value:

- `agent`: only while the value's conversation is active; never after it ended.
- `auditor` (and `admin`, which may do everything an auditor may): must state a purpose;
  after a `mask` end only with purpose `reporting`; a `retain`ed value with any purpose.
- any other role: refused.
- shredded or expired values: 410 for everyone, before any rule.

Every attempt, allowed or refused, is one audit row: actor `<role>:<actor>`, action
`reveal`, the stated purpose, outcome `ok` / `refused:<code>` / `unknown` / `shredded` /
`expired` (written by the vault from its `Outcome`).  Refusals raise `RevealRefused`
(403, `error` = the code).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.exc import SQLAlchemyError

from coatcheck.middleware.models import ConversationState
from coatcheck.middleware.render import REFERENCE_RE
from coatcheck.middleware.service.apikeys import Role
from coatcheck.middleware.service.errors import BadText, RevealRefused, StorageUnavailable
from coatcheck.middleware.service.external_reveal import external_value
from coatcheck.middleware.service.logfilter import detector_redactor
from coatcheck.middleware.service.state import Gateway
from coatcheck.vault import GrantRefused, UnknownReference, ValueState, transaction
from coatcheck.vault.lifecycle import MASKED

__all__ = [
    "REPORTING",
    "STATUSES",
    "audit_purpose",
    "conversation_status",
    "list_conversations",
    "staff_reveal",
]

REPORTING = "reporting"
STATUSES = ("active", "ended", "masked", "retained", "shredded")
_STATE = cast(Table, ConversationState.__table__)
_MAX_LIMIT = 1000


def _policy(
    role: Role, entity_type: str, purpose: str | None
) -> Callable[[ValueState], str | None]:
    def decide(state: ValueState) -> str | None:
        if state.entity_type != entity_type:
            return "reference"  # the reference's type is not the stored one: unknown
        if role is Role.AGENT:
            return "conversation_ended" if state.ended else None
        if role in (Role.AUDITOR, Role.ADMIN):
            if purpose is None:
                return "purpose_required"
            if state.status == MASKED and purpose != REPORTING:
                return "reporting_only"
            return None
        return "role_not_allowed"

    return decide


def staff_reveal(
    gw: Gateway,
    conversation_id: str,
    reference: str,
    role: Role,
    actor: str,
    purpose: str | None,
) -> str:
    """The value behind `reference` (`CC_<TYPE>_<id>`) for a staff member; audited.

    Raises `RevealRefused` (403) when the rules refuse, `UnknownReference` (404),
    `ConversationShredded` (410 `shredded`) or `ValueExpired` (410 `expired`).
    """
    match = REFERENCE_RE.fullmatch(reference)
    if match is None or match.group(3) is not None:
        raise BadText("ref", "must be a reference such as CC_EMAIL_ADDRESS_7k2m9xq4cw")
    entity_type, ref_id = match.group(1), match.group(2)
    stated = audit_purpose(gw, purpose)
    try:
        opened = gw.vault.reveal_for(
            conversation_id,
            ref_id,
            actor=f"{role.value}:{actor}"[:255],
            purpose=stated[:255] if stated is not None else None,
            policy=_policy(role, entity_type, stated),
        )
    except GrantRefused as exc:
        if exc.reason == "reference":
            raise UnknownReference(ref_id) from None
        raise RevealRefused(exc.reason) from None
    # An externally held type stores the customer's id: staff see the fetched value too.
    return external_value(gw, conversation_id, ref_id, entity_type, opened)


def audit_purpose(gw: Gateway, purpose: str | None) -> str | None:
    """The purpose as the audit chain keeps it: whatever the detector finds in it masked.

    Staff type purposes by hand ("call back +1 415 ..."), and audit rows must never hold a
    value; used by staff reveals (API and log viewer alike) and by grants.
    """
    text = purpose.strip() if purpose is not None else ""
    return detector_redactor(gw.detector)(text) if text else None


def conversation_status(gw: Gateway, conversation_id: str) -> str:
    """`active` | `ended` | `masked` | `retained` | `shredded` | `unknown`.

    `ended`: ended with nothing ever vaulted; `masked` / `retained`: ended, values kept
    under that policy; `shredded`: ended, nothing kept.  A conversation the gateway never
    recorded (only `/v1/redact`) is answered from the vault.
    """
    try:
        with transaction(gw.reader) as tx:
            status = tx.execute(
                select(_STATE.c.status).where(_STATE.c.conversation_id == conversation_id)
            ).scalar()
            if status is not None:
                return str(status)
            holdings = gw.vault.holdings(conversation_id, tx=tx)
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None
    return holdings.status if holdings.epochs else "unknown"


def list_conversations(
    gw: Gateway,
    *,
    search: str | None = None,
    status: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Conversations the gateway recorded, most recently active first.

    `search`: case-insensitive substring of the conversation id; `status`: one of
    `STATUSES`; `since` / `until` (epoch seconds): conversations active at some time in
    [since, until), i.e. last activity >= since and started before until.  Each item:
    `{"conversation_id", "status", "started_at", "last_activity", "ended_at"}`.
    """
    if status is not None and status not in STATUSES:
        raise BadText("status", f"must be one of {', '.join(STATUSES)}")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= _MAX_LIMIT:
        raise BadText("limit", f"must be an integer from 1 to {_MAX_LIMIT}")
    started = func.coalesce(_STATE.c.started_at, _STATE.c.updated_at)
    last = func.coalesce(_STATE.c.last_activity, _STATE.c.updated_at)
    query = select(
        _STATE.c.conversation_id,
        _STATE.c.status,
        started.label("started_at"),
        last.label("last_activity"),
        _STATE.c.ended_at,
    )
    if search:
        query = query.where(_STATE.c.conversation_id.icontains(search, autoescape=True))
    if status is not None:
        query = query.where(_STATE.c.status == status)
    if since is not None:
        query = query.where(last >= since)
    if until is not None:
        query = query.where(started < until)
    query = query.order_by(last.desc(), _STATE.c.conversation_id).limit(limit)
    try:
        with gw.reader.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError:
        raise StorageUnavailable("database") from None
    return [
        {
            "conversation_id": row.conversation_id,
            "status": row.status,
            "started_at": row.started_at,
            "last_activity": row.last_activity,
            "ended_at": row.ended_at,
        }
        for row in rows
    ]
