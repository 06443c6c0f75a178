"""Context rules: what the bot waits for in the conversation's next user message.

A rule comes from a bot directive (parsed by the bot adapter), from
`POST /v1/conversations/{id}/context`, or from a secure capture's retry; it is stored in the
conversation's state row (workers are stateless) and applies to one message.  `parse`
checks a rule from outside; `from_json` reads back one stored earlier (trusted, lenient).
A secure rule's `check` names a declared check (`checks.declared`, no operand); it is
resolved when the capture runs, and a name that does not resolve fails the capture.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from coatcheck.grammar import TYPE_NAME_RULE, is_type_name
from coatcheck.middleware.config import CHECK_NAME
from coatcheck.middleware.detect import Context
from coatcheck.middleware.gateway.errors import BadText

__all__ = ["DEFAULT_RETRY_TEXT", "ContextRule"]

DEFAULT_RETRY_TEXT = "That did not work, please try again."
RuleCapture = Literal["pattern", "whole", "secure"]
_CHECK_NAME = re.compile(CHECK_NAME)
_LEGACY_CHECK = "<predicate>"  # never a declared name


@dataclass(frozen=True, slots=True)
class ContextRule:
    """`expect` a type; `capture` how (None: the type's configured capture).

    Secure captures only: `check` (the name of a declared check the captured value must
    pass), `retries` left, and the `retry_text` the gateway answers a failed attempt with.
    """

    expect: str
    capture: RuleCapture | None = None
    check: str | None = None
    retries: int = 0
    retry_text: str = DEFAULT_RETRY_TEXT

    @property
    def secure(self) -> bool:
        return self.capture == "secure"

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ContextRule:
        """A rule checked enough to be stored; `BadText` names the field."""
        expect, capture = raw.get("expect"), raw.get("capture")
        if not isinstance(expect, str) or not is_type_name(expect):
            raise BadText("expect", TYPE_NAME_RULE)
        if capture not in (None, "pattern", "whole", "secure"):
            raise BadText("capture", "must be pattern, whole or secure")
        if capture != "secure":
            return cls(expect, capture)
        check = raw.get("check")
        if check is not None and not (isinstance(check, str) and _CHECK_NAME.fullmatch(check)):
            raise BadText("check", "must name a declared check (checks.declared)")
        retries = raw.get("retries", 0)
        if not isinstance(retries, int) or not 0 <= retries <= 10:
            raise BadText("retries", "must be an integer from 0 to 10")
        retry_text = str(raw.get("retry_text") or DEFAULT_RETRY_TEXT)
        return cls(expect, capture, check, retries, retry_text)

    @classmethod
    def from_json(cls, text: str) -> ContextRule:
        """A rule as stored by `to_json` (or by an older release: same keys)."""
        data: dict[str, Any] = json.loads(text)
        check = data.get("check")
        if check is not None and not isinstance(check, str):
            check = _LEGACY_CHECK  # a predicate stored by an older release: fails closed
        return cls(
            data["expect"],
            data.get("capture"),
            check,
            int(data.get("retries", 0)),
            str(data.get("retry_text") or DEFAULT_RETRY_TEXT),
        )

    def as_dict(self) -> dict[str, Any]:
        """The stored form: `expect`, `capture`, and for a secure capture its check."""
        out: dict[str, Any] = {"expect": self.expect, "capture": self.capture}
        if self.secure:
            out.update(check=self.check, retries=self.retries, retry_text=self.retry_text)
        return out

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    def context(self) -> Context:
        """The detector's context for a pattern or whole capture."""
        return Context(self.expect, None if self.capture == "secure" else self.capture)

    def retried(self) -> ContextRule:
        """The same rule with one retry used."""
        return replace(self, retries=self.retries - 1)
