"""The request walker: which strings of a chat-completions body go up, and the body rebuilt.

`plan_request(body)` validates the shape and collects every string that reaches the model
provider, in order, with its path (`messages[2].content`); `plan.fill(redacted)` puts the
redacted strings back and returns the body to send upstream. Which strings are collected:

- every message's `content` (a string, or the `text` / `refusal` of content parts),
  `name`, `refusal`, `tool_calls[].function.arguments` and `function_call.arguments` (a JSON
  text: the strings and numbers inside it are collected and the JSON is written back, so a
  value inside it is replaced without breaking it), tool results (`role: tool` content);
- `tools[].function.description` and the strings of `parameters`, `response_format`,
  `metadata`, `stop`, `prediction`, and of any key this module does not know (a key the
  gateway has never seen is treated as free text: every string, object key and number in
  it is collected; fail closed, not open).

Structural values pass untouched: `model`, `role`, ids, tool and function names, content
part `type`s, and the numeric/boolean/enum parameters listed in `_STRUCTURAL`. The `user`
field does not go up (it may be an end-user id; it is kept for the conversation id).
Content parts that cannot be redacted (images, audio, files) are refused with a 400, as is
any body that is not the documented shape. Errors name the parameter, never a value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from coatcheck.middleware.llm.errors import InvalidRequest

__all__ = ["PromptPlan", "plan_request"]

MAX_DEPTH = 64
MAX_STRINGS = 100_000
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Top-level keys whose values are structural (numbers, booleans, enums, token ids): sent
# as the client wrote them.
_STRUCTURAL = frozenset(
    {
        "model",
        "stream",
        "n",
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
        "top_logprobs",
        "seed",
        "service_tier",
        "store",
        "parallel_tool_calls",
        "reasoning_effort",
        "verbosity",
        "modalities",
        "stream_options",
        "logit_bias",
        "tool_choice",
        "function_call",
    }
)
_UNREDACTABLE_PARTS = frozenset({"image_url", "input_audio", "file", "input_image", "audio"})


@dataclass(frozen=True, slots=True)
class _Text:
    index: int


@dataclass(frozen=True, slots=True)
class _Number:
    index: int
    value: int | float


@dataclass(frozen=True, slots=True)
class _Args:
    """A JSON text whose strings were collected; written back compactly after filling."""

    template: Any


@dataclass(frozen=True, slots=True)
class _Pairs:
    """An object whose keys may be collected too (free text)."""

    pairs: list[tuple[Any, Any]]


@dataclass
class PromptPlan:
    """What a request sends up: `texts[i]` at `paths[i]`, and how to rebuild the body."""

    template: dict[str, Any]
    texts: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    stream: bool = False
    user: str | None = None
    model: str = ""

    def fill(self, redacted: Sequence[str]) -> dict[str, Any]:
        """The upstream body with `redacted[i]` in place of `texts[i]`."""
        if len(redacted) != len(self.texts):
            raise ValueError("one redacted text per collected text")
        filled = _fill(self.template, redacted)
        assert isinstance(filled, dict)
        return filled


class _Collector:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.paths: list[str] = []

    def text(self, value: str, path: str) -> _Text:
        if len(self.texts) >= MAX_STRINGS:
            raise InvalidRequest("the request has too many strings", code="too_many_strings")
        self.texts.append(value)
        self.paths.append(path)
        return _Text(len(self.texts) - 1)

    def free(self, value: Any, path: str, depth: int = 0) -> Any:
        """Free text: every string, key and number in `value` is collected."""
        if depth > MAX_DEPTH:
            raise InvalidRequest("the request is nested too deeply", param=path, code="too_deep")
        if isinstance(value, str):
            return self.text(value, path)
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                return value
            slot = self.text(json.dumps(value), path)
            return _Number(slot.index, value)
        if isinstance(value, list):
            return [self.free(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
        if isinstance(value, dict):
            pairs = [
                (self.text(str(key), f"{path}.<key>"), self.free(item, f"{path}.{key}", depth + 1))
                for key, item in value.items()
            ]
            return _Pairs(pairs)
        raise InvalidRequest("unsupported JSON value", param=path, code="invalid_value")

    def arguments(self, value: Any, path: str) -> Any:
        """A function-call `arguments` JSON text: values inside it, JSON kept valid."""
        if not isinstance(value, str):
            raise InvalidRequest("arguments must be a string", param=path, code="invalid_type")
        try:
            parsed = json.loads(value)
        except ValueError:
            return self.text(value, path)  # not JSON: redacted as plain text
        if not isinstance(parsed, dict | list):
            return self.text(value, path)
        return _Args(self.free(parsed, path, 1))


def plan_request(body: object) -> PromptPlan:
    """Validate a chat-completions body and collect the strings that go up."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object", code="invalid_body")
    model = body.get("model")
    if not isinstance(model, str) or not model or len(model) > 256:
        raise InvalidRequest(
            "model must be a non-empty string", param="model", code="invalid_model"
        )
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise InvalidRequest("stream must be a boolean", param="stream", code="invalid_type")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequest("user must be a string", param="user", code="invalid_type")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest(
            "messages must be a non-empty array", param="messages", code="invalid_messages"
        )
    c = _Collector()
    template: dict[str, Any] = {}
    for key, value in body.items():
        if key == "user":
            continue
        if key == "messages":
            template[key] = [_message(c, m, f"messages[{i}]") for i, m in enumerate(value)]
        elif key in ("tools", "functions"):
            template[key] = _tools(c, value, key)
        elif key in _STRUCTURAL:
            template[key] = value
        else:
            template[key] = c.free(value, key)
    return PromptPlan(template, c.texts, c.paths, bool(stream), user, model)


def _message(c: _Collector, message: object, path: str) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise InvalidRequest("each message must be an object", param=path, code="invalid_message")
    role = message.get("role")
    if role not in _ROLES:
        raise InvalidRequest("unknown or missing role", param=f"{path}.role", code="invalid_role")
    out: dict[str, Any] = {}
    for key, value in message.items():
        where = f"{path}.{key}"
        if key in ("role", "tool_call_id"):
            out[key] = value
        elif key == "content":
            out[key] = _content(c, value, where)
        elif key in ("name", "refusal") and isinstance(value, str):
            out[key] = c.text(value, where)
        elif key == "tool_calls":
            out[key] = _tool_calls(c, value, where)
        elif key == "function_call" and isinstance(value, dict):
            out[key] = _function(c, value, where)
        else:
            out[key] = c.free(value, where)
    return out


def _content(c: _Collector, content: object, path: str) -> Any:
    if content is None:
        return None
    if isinstance(content, str):
        return c.text(content, path)
    if not isinstance(content, list):
        raise InvalidRequest(
            "content must be a string or an array of parts", param=path, code="invalid_content"
        )
    parts: list[Any] = []
    for j, part in enumerate(content):
        where = f"{path}[{j}]"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise InvalidRequest(
                "each content part needs a type", param=where, code="invalid_content"
            )
        kind = part["type"]
        if kind in _UNREDACTABLE_PARTS:
            raise InvalidRequest(
                f"content parts of type {kind} cannot be redacted and are not forwarded",
                param=f"{where}.type",
                code="unsupported_content",
            )
        if kind not in ("text", "refusal"):
            raise InvalidRequest(
                "unknown content part type", param=f"{where}.type", code="unsupported_content"
            )
        if not isinstance(part.get(kind), str):
            raise InvalidRequest(
                f"a {kind} part needs a string {kind}",
                param=f"{where}.{kind}",
                code="invalid_content",
            )
        parts.append({k: _part_field(c, k, v, kind, where) for k, v in part.items()})
    return parts


def _part_field(c: _Collector, key: str, value: Any, kind: str, where: str) -> Any:
    if key == "type":
        return value
    if key == kind:
        return c.text(value, f"{where}.{key}")
    return c.free(value, f"{where}.{key}")


def _tool_calls(c: _Collector, calls: object, path: str) -> list[Any]:
    if not isinstance(calls, list):
        raise InvalidRequest("tool_calls must be an array", param=path, code="invalid_tool_calls")
    out: list[Any] = []
    for k, call in enumerate(calls):
        where = f"{path}[{k}]"
        if not isinstance(call, dict):
            raise InvalidRequest(
                "each tool call must be an object", param=where, code="invalid_tool_calls"
            )
        item: dict[str, Any] = {}
        for key, value in call.items():
            if key in ("id", "type"):
                item[key] = value
            elif key == "function" and isinstance(value, dict):
                item[key] = _function(c, value, f"{where}.function")
            else:
                item[key] = c.free(value, f"{where}.{key}")
        out.append(item)
    return out


def _function(c: _Collector, function: dict[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in function.items():
        if key == "name":
            out[key] = value
        elif key == "arguments":
            out[key] = c.arguments(value, f"{path}.arguments")
        else:
            out[key] = c.free(value, f"{path}.{key}")
    return out


def _tools(c: _Collector, tools: object, path: str) -> list[Any]:
    if not isinstance(tools, list):
        raise InvalidRequest(f"{path} must be an array", param=path, code="invalid_tools")
    out: list[Any] = []
    for k, tool in enumerate(tools):
        where = f"{path}[{k}]"
        if not isinstance(tool, dict):
            raise InvalidRequest("each tool must be an object", param=where, code="invalid_tools")
        function = tool.get("function") if path == "tools" else tool
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequest(
                "each tool needs a function name", param=where, code="invalid_tools"
            )
        item: dict[str, Any] = {}
        for key, value in tool.items():
            if key in ("type", "name", "strict"):
                item[key] = value
            elif key == "function" and path == "tools":
                item[key] = {
                    fk: fv if fk in ("name", "strict") else c.free(fv, f"{where}.function.{fk}")
                    for fk, fv in function.items()
                }
            else:
                item[key] = c.free(value, f"{where}.{key}")
        out.append(item)
    return out


def _fill(node: Any, redacted: Sequence[str]) -> Any:
    if isinstance(node, _Text):
        return redacted[node.index]
    if isinstance(node, _Number):
        text = redacted[node.index]
        return node.value if text == json.dumps(node.value) else text
    if isinstance(node, _Args):
        return json.dumps(_fill(node.template, redacted), ensure_ascii=False)
    if isinstance(node, _Pairs):
        return {_fill(key, redacted): _fill(value, redacted) for key, value in node.pairs}
    if isinstance(node, dict):
        return {key: _fill(value, redacted) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(item, redacted) for item in node]
    return node
