"""`checks:` — the questions a bot or an action server may ask about a value.

A check used to be a predicate sent with the request, so a bot could send a regex of its
own and binary-search a card number out of the vault in ~134 calls.  Now the operator
declares each check here (a name, the type it applies to, the predicate) and callers name
one; no predicate text comes from a request.  The one operand a caller may supply is the
value of an `equals` check (it must know the value to ask).  Every check counts against
a per-reference budget (`budget_per_reference`, default 5), shared by every caller.

    checks:
      budget_per_reference: 5
      declared:
        card_luhn:   {type: CREDIT_CARD, op: luhn}
        pin_format:  {type: PIN, op: regex, pattern: '\\d{4,6}'}
        email_is:    {type: EMAIL_ADDRESS, op: equals}

Regex checks compile on RE2, or (lookaround) on `regex` with a time limit per match.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from coatcheck.middleware.config_fields import Regex, TypeName
from coatcheck.vault import Digits, Equals, Length, Luhn, Predicate
from coatcheck.vault import Regex as RegexPredicate
from coatcheck.vault.predicates import MAX_PATTERN_CHARS, MAX_VALUE_CHARS

__all__ = ["CHECK_NAME", "DEFAULT_CHECK_BUDGET", "CheckName", "ChecksSection", "DeclaredCheck"]

CHECK_NAME = r"^[a-z][a-z0-9_]{0,63}$"
DEFAULT_CHECK_BUDGET = 5
CheckName = Annotated[str, StringConstraints(pattern=CHECK_NAME)]


class DeclaredCheck(BaseModel):
    """One named check: the type it applies to and its predicate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: TypeName
    op: Literal["regex", "luhn", "length", "digits", "equals"]
    pattern: Annotated[Regex, StringConstraints(max_length=MAX_PATTERN_CHARS)] | None = None
    min: Annotated[int, Field(ge=0, strict=True)] | None = None
    max: Annotated[int, Field(ge=0, strict=True)] | None = None

    @model_validator(mode="after")
    def _fields_of_op(self) -> Self:
        """`pattern` for regex only (and required), `min`/`max` for length only."""
        if (self.op == "regex") != (self.pattern is not None):
            raise ValueError("pattern is required for op regex, and only for it")
        if self.op != "length" and (self.min is not None or self.max is not None):
            raise ValueError("min and max are for op length only")
        if self.op == "length" and self.min is None and self.max is None:
            raise ValueError("op length needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self

    @property
    def takes_operand(self) -> bool:
        """Only `equals` takes a value from the caller."""
        return self.op == "equals"

    def predicate(self, operand: str | None = None) -> Predicate:
        """The vault predicate; `operand` is the caller's value of an `equals` check."""
        if self.op == "regex":
            assert self.pattern is not None
            return RegexPredicate(self.pattern)
        if self.op == "length":
            return Length(self.min or 0, self.max if self.max is not None else MAX_VALUE_CHARS)
        if self.op == "equals":
            if operand is None:
                raise ValueError("an equals check needs its operand")
            return Equals(operand)
        return Luhn() if self.op == "luhn" else Digits()


class ChecksSection(BaseModel):
    """`checks:` — the declared checks and the budget each reference has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    budget_per_reference: int = Field(default=DEFAULT_CHECK_BUDGET, ge=1, le=1000, strict=True)
    declared: dict[CheckName, DeclaredCheck] = {}
