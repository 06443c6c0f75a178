"""Bring-your-own-vault reveals: the vault holds the customer's reference id, not a value.

For a type listed under `external:` in the YAML config, the inbound message carries the
customer's own reference id (found by the type's custom regex or `types.<T>.pattern`);
the pipeline vaults that id like any value, and the bot sees a coatcheck reference.  On a
granted or staff reveal the vault opens the id (audited as usual) and `ExternalValues`
fetches the real value from the customer's endpoint.  The fetched value goes into that
one response only: it is not logged, stored, cached or put into an error (docs/external.md).
"""

from __future__ import annotations

import anyio.from_thread

from coatcheck.middleware.external import ExternalResolver, UnknownEntityType
from coatcheck.vault import Vault
from coatcheck.vault.errors import UnknownReference

__all__ = ["ExternalValues"]


class ExternalValues:
    """The customer endpoints' side of a reveal; `resolver` None when nothing is external."""

    def __init__(self, vault: Vault, resolver: ExternalResolver | None) -> None:
        self._vault = vault
        self._resolver = resolver

    @property
    def resolver(self) -> ExternalResolver | None:
        """The customer endpoints' resolver (its circuit breakers), None when none."""
        return self._resolver

    async def resolve(self, entity_type: str, customer_ref: str) -> str:
        """The value behind `customer_ref`, fetched now; raises `ExternalError` subclasses."""
        if self._resolver is None:
            raise UnknownEntityType(entity_type)
        fetched = await self._resolver.resolve(entity_type, customer_ref)
        return fetched.reveal()

    def value(self, conversation_id: str, ref_id: str, claimed_type: str, opened: str) -> str:
        """What a reveal returns: `opened` itself, or the value fetched for it.

        Called from a worker thread after the vault opened the reference.  The reference's
        stored type decides; a reference whose claimed type differs from the stored one is
        refused when either is external, so a grant for a local type can never send its
        value to a customer endpoint (nor hand out a customer id as if it were the value).
        """
        resolver = self._resolver
        if resolver is None:
            return opened
        stored = self._vault.lookup(conversation_id, ref_id).entity_type
        if stored not in resolver.types and claimed_type not in resolver.types:
            return opened
        if stored != claimed_type:
            raise UnknownReference(ref_id)
        value: str = anyio.from_thread.run(self.resolve, stored, opened)
        return value
