"""The LLM gateway's conversations: one chat completion as a turn of a conversation.

Order, as on the Rasa path ("fail closed"): the request is redacted and, in the vault's
transaction (values vaulted, placeholders numbered), the new prompt turns are stored as the
conversation's user line and counted against the rate limit: one commit before anything
goes to the model (a request over the limit rolls back its values too); then the provider;
the answer's redacted fields are stored as the bot line once it is complete (or broke off).
A storage failure before the model is a 503 and nothing went up; one after the answer is
logged by type and the client keeps its answer.

History holds what the Rasa path holds: the Rasa rendering of references
(`CC_EMAIL_ADDRESS_…(…)`), `[REDACTED_<LABEL>]` markers, never a value.  The user line
is the messages after the request's last assistant message (earlier ones were stored by
earlier requests of the conversation), one per line, non-user roles prefixed.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from anyio import CapacityLimiter, to_thread
from sqlalchemy.exc import SQLAlchemyError

from coatcheck.grammar import parse_references
from coatcheck.middleware.gateway.errors import GatewayError, StorageUnavailable
from coatcheck.middleware.gateway.ratelimit import RateLimit
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.middleware.llm import ChatCompletions, Exchange, Prepared, UpstreamAnswer
from coatcheck.vault import Transaction

__all__ = ["CoreFactory", "LlmChats", "ModelProvider", "answer_line", "prompt_line"]

log = logging.getLogger(__name__)

_MESSAGE = re.compile(r"messages\[(\d+)\]")
RULE = "llm"  # the `rule` history records for a value the LLM route vaulted


class ModelProvider(Protocol):
    """The bot adapter of the LLM route (`adapters/openai_chat.py`): the model provider."""

    async def chat(self, body: bytes, *, stream: bool) -> UpstreamAnswer: ...

    async def models(self) -> Any: ...


# The core, built with the history writer it reports to (the composition root wires it).
CoreFactory = Callable[[Callable[[Exchange], Awaitable[None]]], ChatCompletions]


def prompt_line(prepared: Prepared) -> str:
    """The new turns of a request as one history line (references, no values)."""
    messages = prepared.body.get("messages")
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages or ()]
    start = max((i for i, role in enumerate(roles) if role == "assistant"), default=-1) + 1
    by_message: dict[int, list[str]] = {}
    for path, text in zip(prepared.paths, prepared.redaction.records, strict=True):
        found = _MESSAGE.match(path)
        if found is not None and int(found.group(1)) >= start and text.strip():
            by_message.setdefault(int(found.group(1)), []).append(text)
    lines = []
    for index in sorted(by_message):
        text = " ".join(by_message[index])
        role = roles[index]
        lines.append(text if role == "user" else f"{role}: {text}")
    return "\n".join(lines)


def answer_line(exchange: Exchange) -> str:
    """The model's answer as one history line: content as is, other fields named."""
    choices = sorted({choice for choice, _ in exchange.answer})
    lines: list[str] = []
    for key in sorted(exchange.answer, key=lambda k: (k[0], [str(p) for p in k[1]])):
        choice, path = key
        text = exchange.answer[key]
        if not text:
            continue
        name = ".".join(str(p) for p in path)
        prefix = f"[{choice}] " if len(choices) > 1 else ""
        lines.append(prefix + (text if name == "content" else f"{name}: {text}"))
    if not exchange.complete:
        lines.append("[the answer broke off]")
    return "\n".join(lines)


def _entities(line: str) -> str | None:
    refs = [
        {"ref": r.reference, "type": r.entity_type, "rule": RULE} for r in parse_references(line)
    ]
    return json.dumps(refs, separators=(",", ":")) if refs else None


class LlmChats:
    """Chat completions through the gateway, recorded as conversations."""

    def __init__(
        self,
        core_factory: CoreFactory,
        provider: ModelProvider,
        *,
        store: GatewayStore,
        rate: RateLimit,
        limiter: CapacityLimiter,
    ) -> None:
        self._store = store
        self._rate = rate
        self._limiter = limiter
        self._provider = provider
        self.core: ChatCompletions = core_factory(self._on_exchange)

    async def prepare(self, conversation_id: str, body: object) -> Prepared:
        """Redact, then store and count the prompt line in the same transaction as the
        values (429 / 400 / 503 raise here, before anything goes up): one thread hop, under
        the worker's database limiter, one commit."""
        return await to_thread.run_sync(self._prepare, conversation_id, body, limiter=self._limiter)

    def _prepare(self, conversation_id: str, body: object) -> Prepared:
        def record(tx: Transaction | None, prepared: Prepared) -> None:
            line = prompt_line(prepared)
            if tx is None:  # nothing was vaulted: a transaction of its own
                with self._store.transaction() as own:
                    self._record_prompt(own, conversation_id, line)
            else:
                self._record_prompt(tx, conversation_id, line)

        try:
            return self.core.prepare_sync(conversation_id, body, record=record)
        except SQLAlchemyError:
            raise StorageUnavailable("database") from None

    async def complete(self, prepared: Prepared) -> dict[str, Any]:
        return await self.core.complete(prepared)

    async def open_stream(self, prepared: Prepared) -> AsyncIterator[bytes]:
        return await self.core.open_stream(prepared)

    async def models(self) -> Any:
        """The provider's model list, passed through."""
        return await self._provider.models()

    def _record_prompt(self, tx: Transaction, conversation_id: str, line: str) -> None:
        """Count the request (the rate limit raises 429 here, rolling the values back
        too) and store its prompt line; the conversation's state row rides along."""
        entities = _entities(line)
        self._store.messages.record_inbound(
            tx, conversation_id, conversation_id, line, self._rate, False, entities
        )

    async def _on_exchange(self, exchange: Exchange) -> None:
        line = answer_line(exchange)
        if not line:
            return
        try:
            await to_thread.run_sync(
                self._record_answer, exchange.conversation_id, line, limiter=self._limiter
            )
        except GatewayError as exc:  # the client has its answer; history says what failed
            log.error("llm answer not stored: %s", type(exc).__name__)

    def _record_answer(self, conversation_id: str, line: str) -> None:
        with self._store.transaction() as tx:
            self._store.messages.record_replies(tx, conversation_id, [line], None)
