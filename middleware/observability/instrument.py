"""The two instrumented points below the routes: the vault and the bot.

`MeteredVault` is the vault with timing and counting around the calls the gateway makes
(tokenize: latency and entity types; reveals and checks: latency, door, refusal class).
The door is read from the call itself: a grant the gateway issued itself for purpose
`confirmation` is the confirmation door, any other grant the service door, a reveal
under a staff policy (`reveal_for`) the staff door, `check` the check door.

`MeteredBot` wraps any `BotClient`: round-trip latency and failures.  Neither looks at
a value: only type names, door names and exception class names are counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from coatcheck.middleware.observability import metrics
from coatcheck.vault import Grant, Transaction, Vault
from coatcheck.vault.errors import (
    ConversationEnded,
    ConversationShredded,
    GrantRefused,
    InvalidArgument,
    InvalidGrant,
    InvalidPredicate,
    UnknownReference,
    ValueExpired,
)

if TYPE_CHECKING:
    from coatcheck.middleware.service.botclient import BotClient, Reply

__all__ = ["CONFIRMATION_CALLER", "MeteredBot", "MeteredVault"]

T = TypeVar("T")

# What the gateway's own confirmation grants say (service/conversation.py `_reveal`).
CONFIRMATION_CALLER = ("gateway", "confirmation")
# Decisions, not failures: counted as refusals of their door.
_REFUSALS = (
    GrantRefused,
    InvalidGrant,
    ConversationEnded,
    UnknownReference,
    ConversationShredded,
    ValueExpired,
)


def _timed(op: str, door: str | None, call: Callable[[], T]) -> T:
    start = time.perf_counter()
    try:
        result = call()
    except _REFUSALS as exc:
        if door is not None:
            metrics.count_refusal(door, type(exc).__name__)
        raise
    except (InvalidPredicate, InvalidArgument):  # the caller's mistake (422), not the vault's
        raise
    except Exception:
        metrics.count_error("vault")
        raise
    finally:
        metrics.observe_vault(op, time.perf_counter() - start)
    if door is not None:
        metrics.count_reveal(door)
    return result


class MeteredVault(Vault):
    """The vault, counted: same behaviour, same errors, plus metrics."""

    def tokenize_many(
        self,
        conversation_id: str,
        items: Iterable[tuple[str, str]],
        *,
        then: Callable[[Transaction, list[str]], None] | None = None,
    ) -> list[str]:
        batch = list(items)
        refs = _timed(
            "tokenize", None, lambda: Vault.tokenize_many(self, conversation_id, batch, then=then)
        )
        metrics.count_entities(entity_type for entity_type, _ in batch)
        return refs

    def reveal(self, conversation_id: str, ref_id: str, grant: Grant) -> str:
        return self.reveal_many(conversation_id, [ref_id], grant)[0]

    def reveal_many(self, conversation_id: str, ref_ids: Sequence[str], grant: Grant) -> list[str]:
        door = "confirmation" if (grant.caller, grant.purpose) == CONFIRMATION_CALLER else "service"
        return _timed(
            "reveal", door, lambda: Vault.reveal_many(self, conversation_id, ref_ids, grant)
        )

    def reveal_for(self, conversation_id: str, ref_id: str, **kwargs: Any) -> str:
        return _timed(
            "reveal", "staff", lambda: Vault.reveal_for(self, conversation_id, ref_id, **kwargs)
        )

    def check(self, *args: Any, **kwargs: Any) -> bool:
        return _timed("check", "check", lambda: Vault.check(self, *args, **kwargs))


class MeteredBot:
    """A `BotClient` that times each round-trip and counts the failed ones."""

    def __init__(self, inner: BotClient) -> None:
        self.inner = inner

    async def send(self, sender: str, message: str, metadata: dict[str, Any]) -> list[Reply]:
        start = time.perf_counter()
        ok = False
        try:
            replies = await self.inner.send(sender, message, metadata)
            ok = True
            return replies
        finally:
            metrics.observe_bot(time.perf_counter() - start, ok)
