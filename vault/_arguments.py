"""Argument checks shared by the vault's operations: malformed input is `InvalidArgument`.

Every public entry point checks its arguments before it touches the database, so a bad
id or type fails the same way (naming the argument, never echoing it) on every path.
"""

from __future__ import annotations

from typing import Any

from coatcheck.grammar import REF_ID_RE as _REF_RE
from coatcheck.grammar import is_type_name
from coatcheck.vault.errors import InvalidArgument

__all__ = ["check_conversation", "check_ref", "check_type", "require"]


def require(name: str, ok: bool) -> None:
    if not ok:
        raise InvalidArgument(name)


def check_conversation(conversation_id: Any) -> None:
    require("conversation_id", isinstance(conversation_id, str) and 0 < len(conversation_id) <= 255)


def check_ref(ref_id: Any) -> None:
    require("ref_id", isinstance(ref_id, str) and _REF_RE.fullmatch(ref_id) is not None)


def check_type(entity_type: Any) -> None:
    require("entity_type", is_type_name(entity_type))
