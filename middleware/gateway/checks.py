"""Declared checks: a caller names a check from the config, the vault answers a boolean.

The door used to take any predicate from the request (a bot could binary-search a card
number with regexes of its own, ~134 calls).  Now:

- the check is one the operator declared (`checks.declared`: name, type, predicate); no
  predicate text comes from a request, only the operand of an `equals` check;
- its type must be the reference's (the vault re-checks the stored type);
- each reference has a budget (`checks.budget_per_reference`, default 5) shared by every
  caller, spent before the vault runs the predicate;
- every attempt is audited: the vault writes the row of a check it ran (purpose
  `check:<name>`), `RefusalAudit` the refusals decided here (`unknown_check`,
  `check_type`, `check_budget`, `operand`).

The gateway's own secure-capture check (`capture_predicate`) names a declared check too;
it runs once per captured message and is not counted against the budget.
"""

from __future__ import annotations

from collections.abc import Mapping

from coatcheck.middleware.config import DeclaredCheck
from coatcheck.middleware.gateway.apikeys import Caller
from coatcheck.middleware.gateway.errors import BadText, CheckRefused, UnknownCheck
from coatcheck.middleware.gateway.refusals import RefusalAudit
from coatcheck.middleware.gateway.reveals import parse_reference
from coatcheck.middleware.gateway.store import GatewayStore
from coatcheck.vault import Predicate, Vault

__all__ = ["Checks"]


class Checks:
    """Named checks under a per-reference budget."""

    def __init__(
        self,
        vault: Vault,
        store: GatewayStore,
        refusals: RefusalAudit,
        *,
        declared: Mapping[str, DeclaredCheck],
        budget: int,
    ) -> None:
        self._vault = vault
        self._store = store
        self._refusals = refusals
        self._declared = declared
        self._budget = budget

    def ask(
        self,
        caller: Caller,
        conversation_id: str,
        reference: str,
        name: str,
        operand: str | None,
    ) -> bool:
        """The declared check `name` on the value behind `reference`; only the boolean.

        Raises `UnknownCheck` (422), `BadText` for an operand where none belongs (or a
        missing one), `CheckRefused` (403 `check_type` / `check_budget`); every refusal is
        audited.  The vault's own errors (unknown reference, ended conversation) as usual.
        """
        entity_type, ref_id = parse_reference(reference)
        declared = self._declared.get(name)

        def refuse(reason: str) -> None:
            self._refusals.record(
                actor=caller.role_actor,
                action="check",
                reason=reason,
                conversation_id=conversation_id,
                ref=ref_id,
                entity_type=entity_type,
            )

        if declared is None:
            refuse("unknown_check")
            raise UnknownCheck("check")
        if declared.takes_operand != (operand is not None):
            refuse("operand")
            raise BadText("value", "only an equals check takes a value, and it needs one")
        if declared.type != entity_type:
            refuse("check_type")
            raise CheckRefused("check_type")
        if not self._store.check_budgets.spend(conversation_id, ref_id, self._budget):
            refuse("check_budget")
            raise CheckRefused("check_budget")
        return self._vault.check(
            conversation_id,
            ref_id,
            declared.predicate(operand),
            caller.role_actor,
            f"check:{name}",
            entity_type=entity_type,
        )

    def capture_predicate(self, name: str, entity_type: str) -> Predicate | None:
        """The predicate of a secure capture's check, or None when the rule cannot use it
        (not declared, declared for another type, or an `equals` check): the capture then
        fails closed."""
        declared = self._declared.get(name)
        if declared is None or declared.takes_operand or declared.type != entity_type:
            return None
        return declared.predicate()

    def knows(self, name: str) -> bool:
        """Whether `name` is a declared check that a stored rule may use (no operand)."""
        declared = self._declared.get(name)
        return declared is not None and not declared.takes_operand
