"""The request side: detect -> one vault transaction (values + placeholder numbers) -> render.

`PromptRedactor.redact(conversation_id, texts)` turns the strings a request sends up into
the text the model sees (`[EMAIL_1]`) and the text history keeps (the Rasa path's
references), and returns the `RestoreMap` of this request: placeholder -> the client's own
value, as the client wrote it. Only that map restores anything on the way down, so a value
comes back only to the request that sent it (docs/llm.md, "What resolves").

Text between values is defanged first: a placeholder variant the client typed gets "#" as
its separator, and `CC_` look-alikes become `CC-` as on the Rasa path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from coatcheck.middleware.detect import defang as defang_references
from coatcheck.middleware.llm.book import PlaceholderBook
from coatcheck.middleware.llm.errors import RedactionUnavailable
from coatcheck.middleware.llm.placeholders import (
    DEFAULT_LABELS,
    PlaceholderGrammar,
    format_placeholder,
    label_for,
)
from coatcheck.middleware.render import format_reference

__all__ = [
    "PromptRedactor",
    "Redaction",
    "RestoreEntry",
    "RestoreMap",
    "SpanDetector",
    "TokenVault",
    "default_grammar",
]


class _Span(Protocol):
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def entity_type(self) -> str: ...
    @property
    def value(self) -> str: ...


class SpanDetector(Protocol):
    """What the request side needs from detection (`coatcheck.middleware.detect.Detector`)."""

    def detect(self, text: str) -> Sequence[_Span]: ...


class TokenVault(Protocol):
    """The vault call (docs/contracts.md): values in, bare reference ids out, one
    transaction; `then(conn, refs)` runs inside it (the placeholder numbers commit with the
    values)."""

    def tokenize_many(
        self,
        conversation_id: str,
        items: Sequence[tuple[str, str]],
        *,
        then: Callable[[Any, list[str]], None] | None = None,
    ) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class RestoreEntry:
    """One placeholder of this request: the client's text, its reference, its history form."""

    value: str = field(repr=False)
    entity_type: str
    reference: str
    record: str


class RestoreMap:
    """Placeholder -> the value this request sent; nothing else ever restores."""

    def __init__(self, entries: Mapping[tuple[str, int], RestoreEntry] | None = None) -> None:
        self._entries = dict(entries or {})
        self._by_value = {entry.value: key for key, entry in reversed(self._entries.items())}

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"RestoreMap({len(self._entries)} placeholders)"

    def get(self, key: tuple[str, int]) -> RestoreEntry | None:
        return self._entries.get(key)

    def key_of(self, value: str) -> tuple[str, int] | None:
        """The placeholder of a value this request sent (as the client wrote it), if any."""
        return self._by_value.get(value)


@dataclass(frozen=True, slots=True)
class Redaction:
    """The upstream texts, the history texts (same order as the input) and the map."""

    texts: list[str]
    records: list[str]
    restore: RestoreMap
    entity_types: list[str] = field(default_factory=list)


def default_grammar(
    types: Iterable[str] = (), labels: Mapping[str, str] | None = None
) -> PlaceholderGrammar:
    """The grammar of every label this deployment can issue."""
    wanted = set(DEFAULT_LABELS.values()) | {"SECRET", "VALUE"}
    wanted |= {label_for(t, labels) for t in types}
    return PlaceholderGrammar(wanted)


def _bare_reference(entity_type: str, ref_id: str, _value: str) -> str:
    return format_reference(entity_type, ref_id)


class PromptRedactor:
    """Detect every value in a request's strings, vault them and number their placeholders
    in one transaction, render the model's and history's texts."""

    def __init__(
        self,
        detector: SpanDetector,
        vault: TokenVault,
        book: PlaceholderBook,
        *,
        grammar: PlaceholderGrammar | None = None,
        labels: Mapping[str, str] | None = None,
        record_form: Callable[[str, str, str], str] = _bare_reference,
    ) -> None:
        self.detector = detector
        self.vault = vault
        self.book = book
        self.grammar = grammar or default_grammar(labels=labels)
        self._labels = labels
        self._record_form = record_form

    def label(self, entity_type: str) -> str:
        label = label_for(entity_type, self._labels)
        return label if label in self.grammar.labels else "VALUE"

    def defang(self, text: str) -> str:
        """Client text between values: no placeholder or reference look-alike survives."""
        return defang_references(self.grammar.defang(text))

    async def redact(self, conversation_id: str, texts: Sequence[str]) -> Redaction:
        """`redact_sync` off the event loop (detection and the vault are blocking)."""
        return await asyncio.to_thread(self.redact_sync, conversation_id, list(texts))

    def redact_sync(
        self,
        conversation_id: str,
        texts: Sequence[str],
        *,
        record: Callable[[Any, Redaction], None] | None = None,
    ) -> Redaction:
        """The redaction of `texts`.  `record(tx, redaction)` (optional) runs inside the
        vault's transaction, so the caller's rows (history, rate count) commit with the
        values and numbers or not at all; with nothing to vault it gets `tx=None` (its own
        transaction then).  What `record` raises is raised as it is (a rate refusal stays a
        rate refusal), after the values are rolled back."""
        try:
            found = [_ordered(self.detector.detect(text)) if text.strip() else [] for text in texts]
        except Exception as exc:
            raise RedactionUnavailable("detection") from exc
        items = [(s.entity_type, s.value) for spans in found for s in spans]
        if not items:
            plain = [self.defang(text) for text in texts]
            redaction = Redaction(plain, list(plain), RestoreMap())
            if record is not None:
                record(None, redaction)
            return redaction
        labels = [self.label(entity_type) for entity_type, _ in items]
        numbers: list[int] = []
        rendered: list[Redaction] = []
        raised: list[BaseException] = []

        def then(conn: Any, refs: list[str]) -> None:
            numbers[:] = self.book.number_many(
                conversation_id, list(zip(labels, refs, strict=True)), conn
            )
            if record is not None:  # refs may differ on a retried transaction: render again
                rendered[:] = [self._render(texts, found, labels, refs, numbers)]
                try:
                    record(conn, rendered[0])
                except BaseException as exc:
                    raised.append(exc)
                    raise

        try:
            refs = self.vault.tokenize_many(conversation_id, items, then=then)
        except Exception as exc:
            if raised and exc is raised[-1]:
                raise
            raise RedactionUnavailable("vault") from exc
        if len(refs) != len(items) or len(numbers) != len(items):
            raise RedactionUnavailable("placeholder_book")
        return rendered[0] if rendered else self._render(texts, found, labels, refs, numbers)

    def _render(
        self,
        texts: Sequence[str],
        found: list[list[_Span]],
        labels: list[str],
        refs: list[str],
        numbers: list[int],
    ) -> Redaction:
        entries: dict[tuple[str, int], RestoreEntry] = {}
        upstream: list[str] = []
        records: list[str] = []
        kinds: list[str] = []
        k = 0
        for text, spans in zip(texts, found, strict=True):
            up: list[str] = []
            rec: list[str] = []
            last = 0
            for span in spans:
                gap = self.defang(text[last : span.start])
                value = text[span.start : span.end]
                key = (labels[k], numbers[k])
                record = self._record_form(span.entity_type, refs[k], span.value)
                reference = format_reference(span.entity_type, refs[k])
                entries.setdefault(key, RestoreEntry(value, span.entity_type, reference, record))
                up += [gap, format_placeholder(*key)]
                rec += [gap, record]
                kinds.append(span.entity_type)
                last = span.end
                k += 1
            tail = self.defang(text[last:])
            upstream.append("".join([*up, tail]))
            records.append("".join([*rec, tail]))
        return Redaction(upstream, records, RestoreMap(entries), kinds)


def _ordered(spans: Sequence[_Span]) -> list[_Span]:
    """Spans by start, overlaps dropped (the detector already resolves them; defensive)."""
    out: list[_Span] = []
    end = 0
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if span.start >= end and span.end > span.start:
            out.append(span)
            end = span.end
    return out
