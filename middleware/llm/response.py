"""Rewrite the provider's answer, streamed (one chunk at a time) or whole.

Every text the provider writes passes a `FieldFilter`: `content`, `refusal`, each tool call's
`function.arguments` (JSON-escaped restoration), `function_call.arguments`, and any other
string field of a delta or message (`reasoning_content`, vendor fields) - streamed ones keep
one filter per (choice, field) for the whole answer, so a value or placeholder split across
chunks is seen whole. Strings nested deeper in unknown objects are filtered one by one.
Structure passes when it looks like structure: roles, finish reasons, tool call ids and
function names (identifiers), numbers in `usage`. The envelope is ours: our `id`, the
provider's `model` and `system_fingerprint` only when they are identifiers in which the
response detector finds nothing; `logprobs` and `audio` are dropped (their tokens would
carry the unfiltered text). Unknown top-level fields are dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from json.scanner import make_scanner
from typing import Any, cast

from coatcheck.middleware.llm.errors import UpstreamError, UpstreamProtocolError
from coatcheck.middleware.llm.placeholders import PlaceholderGrammar
from coatcheck.middleware.llm.redact import RestoreMap
from coatcheck.middleware.llm.response_detect import ResponseDetector
from coatcheck.middleware.llm.restore import FieldFilter, Released
from coatcheck.middleware.llm.sse import DONE, encode_event

__all__ = ["StreamRewriter", "rewrite_completion", "safe_error"]

_IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}")
_ENUM = re.compile(r"[a-z][a-z0-9_]{0,31}")
_NAME = re.compile(r"[A-Za-z0-9_.\[\]]{1,64}")
_MAX_FIELDS = 1024
Path = tuple[str | int, ...]


def _index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_FIELDS


def _enum(value: object) -> bool:
    return isinstance(value, str) and _ENUM.fullmatch(value) is not None


def safe_error(payload: object, status: int) -> UpstreamError:
    """The provider's error as ours: status, and type/param/code when they are names."""
    error = payload.get("error") if isinstance(payload, dict) else None
    fields = error if isinstance(error, dict) else {}
    kept = {
        k: v for k in ("type", "param", "code") if _NAME.fullmatch(v := str(fields.get(k) or ""))
    }
    return UpstreamError(
        status, error_type=kept.get("type"), param=kept.get("param"), code=kept.get("code")
    )


def _numbers(value: Any) -> Any:
    """`usage` and the like: numbers, booleans and nulls only (strings dropped)."""
    if isinstance(value, dict):
        return {str(k): _numbers(v) for k, v in value.items() if not isinstance(v, str)}
    if isinstance(value, list):
        return [_numbers(v) for v in value if not isinstance(v, str)]
    return value if isinstance(value, int | float | bool) or value is None else None


class _Rewriter:
    """State of one answer: the filters, the history records, the envelope."""

    def __init__(
        self,
        grammar: PlaceholderGrammar,
        restore: RestoreMap,
        detector: ResponseDetector,
        *,
        response_id: str,
        created: int,
        model: str,
    ) -> None:
        self._grammar = grammar
        self._restore = restore
        self._detector = detector
        self._filters: dict[tuple[int, Path], FieldFilter] = {}
        self.records: dict[tuple[int, Path], list[str]] = {}
        self.response_id = response_id
        self.created = created
        self.model = model
        self.fingerprint: str | None = None
        self._identifiers: dict[str, bool] = {}
        self.text_out = False  # has any text been released (the client's first token)?
        self._last_envelope: tuple[object, ...] | None = None

    def _identifier(self, value: object) -> str | None:
        """`value` when it is an identifier the detector finds nothing in (asked once per
        value: providers repeat `model` in every chunk)."""
        if not isinstance(value, str) or not _IDENT.fullmatch(value):
            return None
        clean = self._identifiers.get(value)
        if clean is None:
            clean = not self._detector.find(value)
            if len(self._identifiers) < _MAX_FIELDS:
                self._identifiers[value] = clean
        return value if clean else None

    def _envelope(self, upstream: dict[str, Any]) -> None:
        created = upstream.get("created")
        seen = (upstream.get("model"), upstream.get("system_fingerprint"), created, type(created))
        if seen == self._last_envelope:  # providers repeat it in every chunk
            return
        self._last_envelope = seen
        model = self._identifier(upstream.get("model"))
        if model:
            self.model = model
        fingerprint = self._identifier(upstream.get("system_fingerprint"))
        if fingerprint:
            self.fingerprint = fingerprint
        if isinstance(upstream.get("created"), int) and not isinstance(upstream["created"], bool):
            self.created = upstream["created"]

    def _filter(self, choice: int, path: Path, *, json_string: bool = False) -> FieldFilter:
        key = (choice, path)
        found = self._filters.get(key)
        if found is None:
            if len(self._filters) >= _MAX_FIELDS:
                raise UpstreamProtocolError("too_many_fields")
            found = FieldFilter(
                self._grammar, self._restore, self._detector, json_string=json_string
            )
            self._filters[key] = found
        return found

    def _keep(self, choice: int, path: Path, released: Released) -> str:
        if released.client:
            self.text_out = True
        if released.record:
            self.records.setdefault((choice, path), []).append(released.record)
        return released.client

    def _stream_text(self, choice: int, path: Path, text: str, *, json_string: bool = False) -> str:
        return self._keep(
            choice, path, self._filter(choice, path, json_string=json_string).feed(text)
        )

    def _once(self, choice: int, path: Path, text: str) -> str:
        """A string nested in an unknown object: filtered on its own, whole."""
        one = FieldFilter(self._grammar, self._restore, self._detector)
        first = one.feed(text)
        last = one.finish()
        return self._keep(
            choice, path, Released(first.client + last.client, first.record + last.record)
        )

    def _nested(self, choice: int, path: Path, value: Any) -> Any:
        if isinstance(value, str):
            return self._once(choice, path, value)
        if isinstance(value, dict):
            return {str(k): self._nested(choice, (*path, str(k)), v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._nested(choice, (*path, i), v) for i, v in enumerate(value)]
        return value

    def _function(
        self, choice: int, path: Path, function: dict[str, Any], stream: bool
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in function.items():
            if key == "name":
                name = self._identifier(value)
                if name is None:
                    raise UpstreamProtocolError("function_name")
                out[key] = name
            elif key == "arguments" and isinstance(value, str):
                where = (*path, "arguments")
                if stream:
                    out[key] = self._stream_text(choice, where, value, json_string=True)
                else:
                    out[key] = self._whole(choice, where, value, json_string=True)
            else:
                out[key] = self._nested(choice, (*path, key), value)
        return out

    def _tool_calls(self, choice: int, calls: list[Any], stream: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for position, call in enumerate(calls):
            if not isinstance(call, dict):
                raise UpstreamProtocolError("tool_call")
            index = call.get("index", position)
            if not _index(index):
                raise UpstreamProtocolError("tool_call_index")
            item: dict[str, Any] = {"index": index} if stream else {}
            for key, value in call.items():
                if key == "index":
                    continue
                if (key == "id" and self._identifier(value)) or (key == "type" and _enum(value)):
                    item[key] = value
                elif key == "function" and isinstance(value, dict):
                    item[key] = self._function(choice, ("tool_calls", index), value, stream)
                elif key not in ("id", "type"):
                    item[key] = self._nested(choice, ("tool_calls", index, key), value)
            out.append(item)
        return out

    def _whole(self, choice: int, path: Path, text: str, *, json_string: bool = False) -> str:
        one = self._filter(choice, path, json_string=json_string)
        first = self._keep(choice, path, one.feed(text))
        return first + self._keep(choice, path, one.finish())

    def _message(self, choice: int, message: dict[str, Any], stream: bool) -> dict[str, Any]:
        """A delta (stream) or a message (whole): the same fields, the same rules."""
        out: dict[str, Any] = {}
        for key, value in message.items():
            if key == "role":
                if _enum(value):
                    out[key] = value
            elif key == "audio":
                continue
            elif key == "tool_calls" and isinstance(value, list):
                out[key] = self._tool_calls(choice, value, stream)
            elif key == "function_call" and isinstance(value, dict):
                out[key] = self._function(choice, ("function_call",), value, stream)
            elif isinstance(value, str):
                if stream:
                    out[key] = self._stream_text(choice, (key,), value)
                else:
                    out[key] = self._whole(choice, (key,), value)
            else:
                out[key] = self._nested(choice, (key,), value)
        return out

    def record_texts(self) -> dict[tuple[int, Path], str]:
        """What history keeps of this answer, per (choice, field): references, no values."""
        return {key: "".join(parts) for key, parts in self.records.items()}


class StreamRewriter(_Rewriter):
    """Upstream SSE payloads in, our SSE events out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.done = False
        self._finished: set[int] = set()

    def _chunk(self, choices: list[dict[str, Any]], usage: Any = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.response_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }
        if self.fingerprint:
            chunk["system_fingerprint"] = self.fingerprint
        chunk["choices"] = choices
        if usage is not None:
            chunk["usage"] = usage
        return encode_event(chunk)

    def event(self, data: str) -> list[bytes]:
        """One upstream `data` payload -> the events to send now (maybe none)."""
        payload = _parse(data)
        return self.end() if payload is None else self._payload(payload)

    def events(self, datas: Sequence[str], out: list[bytes]) -> None:
        """Several payloads (one read of the provider's stream) -> `out`, as `event` one by
        one would give, except that a run of payloads that each carry only text for the
        same field of the same choice is filtered as one text and leaves as one chunk: the
        same characters (the filter is indifferent to where its input is split) for one
        filter call and one event instead of one per payload.  When a payload is refused,
        what came before it is in `out` (filtered) and the error raises.  Payloads after
        `[DONE]` are ignored."""
        run: list[str] = []
        where: tuple[int, str] = (0, "")
        try:
            for data in datas:
                if self.done:
                    break
                payload = _parse(data)
                text = None if payload is None else _text_only(payload)
                if text is not None and (not run or text[0] == where):
                    assert payload is not None
                    where = text[0]
                    self._envelope(payload)
                    run.append(text[1])
                    continue
                if run:
                    out += self._text_run(where, run)
                    run = []
                if payload is None:
                    out += self.end()
                elif text is not None:
                    where = text[0]
                    self._envelope(payload)
                    run.append(text[1])
                else:
                    out += self._payload(payload)
        finally:
            if run:
                out += self._text_run(where, run)

    def _text_run(self, where: tuple[int, str], texts: list[str]) -> list[bytes]:
        index, key = where
        text = self._stream_text(index, (key,), "".join(texts))
        if not text:
            return []
        return [self._chunk([{"index": index, "delta": {key: text}, "finish_reason": None}])]

    def _payload(self, payload: dict[str, Any]) -> list[bytes]:
        if "error" in payload:
            raise safe_error(payload, 502)
        self._envelope(payload)
        raw = payload.get("choices") or []
        if not isinstance(raw, list):
            raise UpstreamProtocolError("choices")
        out: list[bytes] = []
        choices: list[dict[str, Any]] = []
        finishing: list[tuple[int, str]] = []
        for position, choice in enumerate(raw):
            if not isinstance(choice, dict):
                raise UpstreamProtocolError("choice")
            index = choice.get("index", position)
            if not _index(index):
                raise UpstreamProtocolError("choice_index")
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise UpstreamProtocolError("delta")
            rewritten = self._message(index, delta, stream=True)
            if _visible(rewritten):
                choices.append({"index": index, "delta": rewritten, "finish_reason": None})
            reason = choice.get("finish_reason")
            if reason is not None:
                finishing.append((index, reason if _enum(reason) else "stop"))
        usage = _numbers(payload["usage"]) if isinstance(payload.get("usage"), dict) else None
        if choices:
            out.append(self._chunk(choices))
        for index, reason in finishing:
            out += self._flush(index)
            out.append(self._chunk([{"index": index, "delta": {}, "finish_reason": reason}]))
            self._finished.add(index)
        if usage is not None:
            out.append(self._chunk([], usage))
        return out

    def _flush(self, choice: int) -> list[bytes]:
        delta: dict[str, Any] = {}
        for (index, path), one in list(self._filters.items()):
            if index != choice:
                continue
            text = self._keep(index, path, one.finish())
            if text:
                _place(delta, path, text)
        return (
            [self._chunk([{"index": choice, "delta": delta, "finish_reason": None}])]
            if delta
            else []
        )

    def end(self) -> list[bytes]:
        """The provider said `[DONE]`: release what is held, then our `[DONE]`."""
        if self.done:
            return []
        out: list[bytes] = []
        for choice in sorted({index for index, _ in self._filters} - self._finished):
            out += self._flush(choice)
        self.done = True
        return [*out, DONE]

    def unfinished(self) -> bool:
        """Did the stream stop before `[DONE]` with a choice not finished?"""
        return not self.done and bool({i for i, _ in self._filters} - self._finished)

    def release_held(self) -> Iterator[bytes]:
        """The stream broke: what is held still leaves filtered (never raw)."""
        for choice in sorted({index for index, _ in self._filters} - self._finished):
            yield from self._flush(choice)


# The C scanner under `json.loads`, without its wrappers (typeshed types it too narrowly).
_SCAN: Callable[[str, int], tuple[Any, int]] = make_scanner(cast(Any, json.JSONDecoder()))


def _parse(data: str) -> dict[str, Any] | None:
    """An upstream `data` payload as an object; None for `[DONE]`.  A payload that is one
    JSON object from its first to its last character (what providers send) is read by the
    scanner directly; anything else by `json.loads`, whose verdict then stands."""
    payload: Any = None
    if data.startswith("{") and data.endswith("}"):
        try:
            payload, end = _SCAN(data, 0)
        except (StopIteration, ValueError):
            payload, end = None, -1
        if end != len(data):
            payload = None
    if payload is None:
        if data.strip() == "[DONE]":
            return None
        try:
            payload = json.loads(data)
        except ValueError:
            raise UpstreamProtocolError("event_not_json") from None
    if not isinstance(payload, dict):
        raise UpstreamProtocolError("event_not_object")
    return payload


_NOT_TEXT = frozenset({"role", "audio", "tool_calls", "function_call"})


def _text_only(payload: dict[str, Any]) -> tuple[tuple[int, str], str] | None:
    """((choice, field), text) when the payload carries nothing but one string field of
    one choice's delta (most of a streamed answer), else None (the general path)."""
    choices = payload.get("choices")
    if type(choices) is not list or len(choices) != 1 or "error" in payload:
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("finish_reason") is not None:
        return None
    delta = choice.get("delta")
    if type(delta) is not dict or len(delta) != 1:
        return None
    index = choice.get("index", 0)
    if type(index) is not int or not 0 <= index < _MAX_FIELDS:
        return None
    if isinstance(payload.get("usage"), dict):
        return None
    ((key, value),) = delta.items()
    if type(value) is not str or key in _NOT_TEXT:
        return None
    return (index, key), value


def _visible(delta: dict[str, Any]) -> bool:
    """Does a rewritten delta carry anything: text, a role, a tool call's id or name?"""
    for key, value in delta.items():
        if key == "tool_calls":
            if any(_visible(call) or "id" in call for call in value):
                return True
        elif isinstance(value, dict):
            if _visible(value):
                return True
        elif value != "":
            return True
    return False


def _place(delta: dict[str, Any], path: Path, text: str) -> None:
    """Put a flushed field back where it came from."""
    if path[0] == "tool_calls" and len(path) == 3:
        delta.setdefault("tool_calls", []).append(
            {"index": path[1], "function": {str(path[2]): text}}
        )
    elif path[0] == "function_call":
        delta.setdefault("function_call", {})[str(path[1])] = text
    else:
        delta[str(path[0])] = text


def rewrite_completion(
    payload: object,
    grammar: PlaceholderGrammar,
    restore: RestoreMap,
    detector: ResponseDetector,
    *,
    response_id: str,
    created: int,
    model: str,
) -> tuple[dict[str, Any], dict[tuple[int, Path], str]]:
    """A whole (non-streamed) answer: the client's body and the history records."""
    if not isinstance(payload, dict):
        raise UpstreamProtocolError("body_not_object")
    if "error" in payload:
        raise safe_error(payload, 502)
    rw = _Rewriter(
        grammar, restore, detector, response_id=response_id, created=created, model=model
    )
    rw._envelope(payload)
    raw = payload.get("choices")
    if not isinstance(raw, list):
        raise UpstreamProtocolError("choices")
    choices: list[dict[str, Any]] = []
    for position, choice in enumerate(raw):
        if not isinstance(choice, dict):
            raise UpstreamProtocolError("choice")
        index = choice.get("index", position)
        message = choice.get("message") or {}
        if not _index(index) or not isinstance(message, dict):
            raise UpstreamProtocolError("choice")
        reason = choice.get("finish_reason")
        choices.append(
            {
                "index": index,
                "message": rw._message(index, message, stream=False),
                "logprobs": None,
                "finish_reason": reason if _enum(reason) else None,
            }
        )
    body: dict[str, Any] = {
        "id": response_id,
        "object": "chat.completion",
        "created": rw.created,
        "model": rw.model,
        "choices": choices,
    }
    if rw.fingerprint:
        body["system_fingerprint"] = rw.fingerprint
    if isinstance(payload.get("usage"), dict):
        body["usage"] = _numbers(payload["usage"])
    return body, rw.record_texts()
