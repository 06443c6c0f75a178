"""Opt-in reveals for rasa-sdk custom actions.

An action declares the entity types it may see (`reveal_types`); its `run_revealed`
gets the real values of exactly those references found in the tracker's slots and latest
entities, through a grant scoped to this conversation, these types and this action.
Everything it then sends back is re-tokenized before it leaves the action server. This
lives in `run` (not in a Sanic hook) so it works over HTTP and gRPC alike.

`run_revealed` writes to a dispatcher of its own: on a streaming transport rasa-sdk would
forward `stream_chunk`s the moment they are made, and replay an unclosed stream after
`run` returns, both past re-tokenization. Its messages (streamed chunks included, as
messages) join the real dispatcher only once re-tokenized.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import ActionExecutionRejection

from coatcheck.actions._references import parse_reference
from coatcheck.actions.client import CoatcheckClient, GrantToken
from coatcheck.actions.errors import ActionFailed, ConfigurationError, GrantRefused
from coatcheck.actions.retokenize import Retokenizer

__all__ = ["RevealedView", "RevealingAction", "reveals"]

A = TypeVar("A", bound=type["RevealingAction"])


@dataclass(frozen=True)
class RevealedView:
    """The real values an action declared: slots and latest-message entities.

    Undeclared references stay as references; values are only in these dicts, and the
    repr never shows them.
    """

    slots: dict[str, Any] = field(default_factory=dict)
    entities: list[dict[str, Any]] = field(default_factory=list)
    by_reference: dict[str, str] = field(default_factory=dict)

    def slot(self, name: str) -> Any:
        return self.slots.get(name)

    def values(self, entity_type: str) -> list[str]:
        """Every revealed value of exactly `entity_type`, in the order first seen.

        The type is compared whole: `values("CARD")` never includes a `CARD_PIN`.
        """
        return [v for ref, v in self.by_reference.items() if _type_of(ref) == entity_type]

    def __repr__(self) -> str:
        return f"RevealedView(refs={len(self.by_reference)})"


class RevealingAction(Action, ABC):  # type: ignore[misc]  # rasa_sdk is untyped
    """Base for actions that opt in to real values of `reveal_types`.

    Subclasses set `reveal_types` (and `purpose`) and implement `run_revealed`. Actions
    that do not derive from this class see references only.
    """

    reveal_types: ClassVar[frozenset[str]] = frozenset()
    purpose: ClassVar[str] = "action"

    def make_client(self) -> CoatcheckClient:
        """The service client for one run; override to inject a transport or settings."""
        return CoatcheckClient.from_env()

    @abstractmethod
    async def run_revealed(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
        revealed: RevealedView,
    ) -> list[dict[str, Any]]:
        """The action's logic, with the declared values in `revealed`."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if not self.reveal_types:
            raise ConfigurationError(self.name(), "reveal_types is empty")
        conversation = tracker.sender_id
        async with self.make_client() as client:
            view = await self._resolve(client, conversation, tracker)
            own = CollectingDispatcher()  # no stream sink: nothing leaves before the walk
            events = await self._run_guarded(own, tracker, domain, view)
            if own.is_streaming_active:  # an unclosed stream: its chunks become messages
                await own.stream_end()
            grant = await self._retokenize_grant(client, conversation)
            retok = Retokenizer(client, conversation, _inverse(view.by_reference), grant)
            messages, result = await asyncio.gather(
                retok.walk(own.messages), retok.walk(list(events))
            )
            dispatcher.messages.extend(messages)
            return list(result)

    async def _retokenize_grant(
        self, client: CoatcheckClient, conversation: str
    ) -> GrantToken | None:
        """A fresh grant for re-tokenising (the reveal's may have expired while the action
        ran); without one (not allow-listed) new values come back as `[TYPE]`."""
        try:
            return await client.grant(conversation, self.reveal_types, self.name(), self.purpose)
        except GrantRefused:
            return None

    async def _run_guarded(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
        view: RevealedView,
    ) -> list[dict[str, Any]]:
        """`run_revealed`, with any exception replaced by a value-free one."""
        try:
            return await self.run_revealed(dispatcher, tracker, domain, view)
        except ActionExecutionRejection:
            raise ActionExecutionRejection(self.name()) from None
        except Exception as exc:
            failed = type(exc).__name__
            raise ActionFailed(self.name(), f"run_revealed raised {failed}") from None

    async def _resolve(
        self, client: CoatcheckClient, conversation: str, tracker: Tracker
    ) -> RevealedView:
        wanted = _declared_refs(tracker, self.reveal_types)
        if not wanted:
            return RevealedView(dict(tracker.slots), list(_entities(tracker)), {})
        grant = await client.grant(conversation, self.reveal_types, self.name(), self.purpose)
        values: dict[str, str] = {}
        for ref in wanted:
            values[ref] = await self._reveal(client, conversation, ref, grant)
        slots = {k: _swap(v, values) for k, v in tracker.slots.items()}
        entities = [dict(e, value=_swap(e.get("value"), values)) for e in _entities(tracker)]
        return RevealedView(slots, entities, values)

    async def _reveal(
        self, client: CoatcheckClient, conversation: str, ref: str, grant: GrantToken
    ) -> str:
        value, _ = await client.reveal(conversation, ref, grant, self.purpose)
        return value


def reveals(*entity_types: str, purpose: str | None = None) -> Callable[[A], A]:
    """Class decorator: `@reveals("EMAIL_ADDRESS", purpose="send receipt")`."""

    def decorate(cls: A) -> A:
        cls.reveal_types = frozenset(entity_types)
        if purpose is not None:
            cls.purpose = purpose
        return cls

    return decorate


def _entities(tracker: Tracker) -> Iterable[dict[str, Any]]:
    entities = tracker.latest_message.get("entities") or []
    return [e for e in entities if isinstance(e, dict)]


def _declared_refs(tracker: Tracker, types: frozenset[str]) -> list[str]:
    """References of a declared type in slots (lists too) and latest entities, deduplicated."""
    candidates: list[Any] = [e.get("value") for e in _entities(tracker)]
    for value in tracker.slots.values():
        candidates.extend(value if isinstance(value, list) else [value])
    found: dict[str, None] = {}
    for candidate in candidates:
        ref = parse_reference(candidate)
        if ref is not None and ref.entity_type in types:
            found[ref.token] = None
    return list(found)


def _swap(value: Any, values: Mapping[str, str]) -> Any:
    """The revealed value for a declared reference (element-wise for list slots)."""
    if isinstance(value, list):
        return [_swap(item, values) for item in value]
    ref = parse_reference(value)
    if ref is None or ref.token not in values:
        return value
    return values[ref.token]


def _type_of(token: str) -> str | None:
    ref = parse_reference(token)
    return None if ref is None else ref.entity_type


def _inverse(by_reference: Mapping[str, str]) -> dict[str, str]:
    return {value: ref for ref, value in by_reference.items()}
