"""The Redactor: detect -> one vault.tokenize_many call -> render (defanging the gaps).

One vault call per message keeps it all or nothing: either every value is stored and the
message can be forwarded, or nothing is and the caller gets the error (no half-redacted
text). Detection runs on the text as typed and the vault stores each span as typed; only
the text outside the spans (and a `mask` display, which shows part of a value) has its
look-alike references defanged (`CC_` -> `CC-`): neutralising what the bot reads must never
change a stored value (`acc_manager@example.com` comes back as typed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from coatcheck.middleware.detect import Context, DetectConfig, Detector, Span, TypeSettings, defang
from coatcheck.middleware.detect import load_config as _load_config
from coatcheck.middleware.render import display_for, format_reference
from coatcheck.vault import Transaction

__all__ = ["Entity", "RedactResult", "Redactor", "TokenVault"]


class TokenVault(Protocol):
    """The one vault method the pipeline needs (see docs/contracts.md)."""

    def tokenize_many(
        self,
        conversation_id: str,
        items: Sequence[tuple[str, str]],
        *,
        then: Callable[[Transaction, list[str]], None] | None = None,
    ) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Entity:
    """One redacted value: offsets into the input text, full reference, display, rule."""

    type: str
    start: int
    end: int
    ref: str | None  # None: not vaulted, shown as `[TYPE]` (`Redactor.redact_limited`)
    display: str
    rule: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of the API and the CLI."""
        return {
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "ref": self.ref,
            "display": self.display,
            "rule": self.rule,
        }


@dataclass(frozen=True, slots=True)
class RedactResult:
    """The redacted text and what was taken out of it; `extra_refs` are the references of
    the `extra` values vaulted with it (a sender id), in order."""

    text: str
    entities: list[Entity] = field(default_factory=list)
    extra_refs: tuple[str, ...] = ()


class Redactor:
    """Detect, vault and render one inbound message."""

    def __init__(
        self, detector: Detector, vault: TokenVault, config: DetectConfig | None = None
    ) -> None:
        self.detector = detector
        self.vault = vault
        self.config = config if config is not None else detector.config

    @classmethod
    def from_yaml(cls, data: dict[str, Any] | None, vault: TokenVault) -> Redactor:
        """Build detector and redactor from the YAML dict."""
        config = _load_config(data)
        return cls(Detector(config), vault, config)

    def confirm_types(self) -> frozenset[str]:
        """Types the gateway reveals on the channel leg (`confirm: true`)."""
        return self.config.confirm_types()

    def settings_for(self, entity_type: str) -> TypeSettings:
        """The per-type settings (display, mask, confirm, capture...)."""
        return self.config.settings_for(entity_type)

    def redact(
        self,
        conversation_id: str,
        text: str,
        context: Context | None = None,
        *,
        record: Callable[[Transaction | None, RedactResult], None] | None = None,
        language: str | None = None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> RedactResult:
        """Redacted text plus entities; raises the vault's error if storing fails.

        Detection runs on the text as typed and values are vaulted as typed; only the text
        between them is defanged (a look-alike reference typed by the user never parses).
        `record(tx, result)` lets the caller store its own rows for the result in the
        vault's transaction (one commit for values and, say, the history line); with no
        value to vault it gets `tx=None` and must open its own transaction. `language` is
        the conversation's language hint from the channel (e.g. Rasa `metadata.language`).
        `extra` are (type, value) pairs vaulted in the same call without being in the text
        (the channel's real sender id as `SENDER_ID`): one transaction, not two.
        """
        spans = self.detector.detect(text, context, language=language)
        if not spans and not extra:
            result = RedactResult(defang(text), [])
            if record is not None:
                record(None, result)
            return result
        items = [(span.entity_type, span.value) for span in spans]
        items.extend(extra)
        if record is None:
            refs = self.vault.tokenize_many(conversation_id, items)
            return self.render(text, spans, refs, defang_gaps=True)
        rendered: list[RedactResult] = []

        def then(tx: Transaction, refs: list[str]) -> None:
            # refs may differ on a retry
            rendered[:] = [self.render(text, spans, refs, defang_gaps=True)]
            record(tx, rendered[0])

        self.vault.tokenize_many(conversation_id, items, then=then)
        return rendered[0]

    def redact_limited(
        self,
        conversation_id: str,
        text: str,
        context: Context | None,
        vault_types: frozenset[str],
        *,
        record: Callable[[Transaction | None, RedactResult], None] | None = None,
    ) -> RedactResult:
        """Like `redact`, but only values of `vault_types` are vaulted (and get their
        existing reference back); every other value is replaced by `[TYPE]` and stored
        nowhere.  For callers who may not learn which values a conversation holds
        (`gateway/redaction.py`); off the per-message path.  `record` as for `redact`."""
        spans = self.detector.detect(text, context)
        kept = [span for span in spans if span.entity_type in vault_types]
        if not kept:
            result = self.render(text, spans, [None] * len(spans), defang_gaps=True)
            if record is not None:
                record(None, result)
            return result
        rendered: list[RedactResult] = []

        def then(tx: Transaction, refs: list[str]) -> None:
            found = iter(refs)
            each = [next(found) if s.entity_type in vault_types else None for s in spans]
            rendered[:] = [self.render(text, spans, each, defang_gaps=True)]
            if record is not None:
                record(tx, rendered[0])

        items = [(s.entity_type, s.value) for s in kept]
        self.vault.tokenize_many(conversation_id, items, then=then)
        return rendered[0]

    def render(
        self,
        text: str,
        spans: list[Span],
        refs: Sequence[str | None],
        *,
        defang_gaps: bool = False,
    ) -> RedactResult:
        """`text` with each span replaced by its reference (`refs` in span order) in its
        type's display, or by `[TYPE]` where its ref is None (not vaulted); references past
        the spans are the extra values'.  `defang_gaps`: user text, whose look-alike
        references between the values are neutralised (a bot's reply keeps the
        references it holds)."""
        pieces: list[str] = []
        entities: list[Entity] = []
        last = 0
        extra_refs = tuple(ref for ref in refs[len(spans) :] if ref is not None)
        for span, ref_id in zip(spans, refs[: len(spans)], strict=True):
            gap = text[last : span.start]
            pieces.append(defang(gap) if defang_gaps else gap)
            last = span.end
            if ref_id is None:
                shown = f"[{span.entity_type}]"
                pieces.append(shown)
                entities.append(
                    Entity(span.entity_type, span.start, span.end, None, shown, span.rule)
                )
                continue
            settings = self.config.settings_for(span.entity_type)
            display = defang(display_for(span.value, ref_id, settings))
            pieces.append(format_reference(span.entity_type, ref_id, display))
            reference = format_reference(span.entity_type, ref_id)
            entities.append(
                Entity(span.entity_type, span.start, span.end, reference, display, span.rule)
            )
        tail = text[last:]
        pieces.append(defang(tail) if defang_gaps else tail)
        return RedactResult("".join(pieces), entities, extra_refs)
