"""Bring-your-own-vault reveals: the vault holds the customer's reference id, not a value.

For a type listed under `external:` in the YAML config, the inbound message carries the
customer's own reference id (found by the type's custom regex or `types.<T>.pattern`);
the pipeline vaults that id like any value, and the bot sees a coatcheck reference. On a
granted `/v1/reveal` the vault opens the id (audited as usual) and `external_value` fetches
the real value from the customer's endpoint. The fetched value goes into that one response
only: it is not logged, stored, cached or put into an error (see docs/external.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import anyio.from_thread

from coatcheck.middleware.external import EndpointConfig, ExternalResolver, UnknownEntityType
from coatcheck.middleware.service.state import Gateway
from coatcheck.vault.errors import UnknownReference

__all__ = ["external_resolver", "external_value", "resolve_external"]


@asynccontextmanager
async def external_resolver(
    endpoints: dict[str, EndpointConfig], clock: Callable[[], float]
) -> AsyncIterator[ExternalResolver | None]:
    """The worker's resolver with its own HTTP session, or None when nothing is external.

    Its own session, with no cookie jar: nothing a customer endpoint sets is kept, and
    nothing of the bot's session travels to the customer.
    """
    if not endpoints:
        yield None
        return
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield ExternalResolver(endpoints, session, clock=clock)


async def resolve_external(gw: Gateway, entity_type: str, customer_ref: str) -> str:
    """The value behind `customer_ref`, fetched now; raises `ExternalError` subclasses."""
    if gw.resolver is None:
        raise UnknownEntityType(entity_type)
    fetched = await gw.resolver.resolve(entity_type, customer_ref)
    return fetched.reveal()


def external_value(
    gw: Gateway, conversation_id: str, ref_id: str, claimed_type: str, opened: str
) -> str:
    """What a granted reveal returns: `opened` itself, or the value fetched for it.

    Called from the (sync) reveal route after `coatcheck.vault.reveal`. The reference's stored type
    decides; a reference whose claimed type differs from the stored one is refused when
    either is external, so a grant for a local type can never send its value to a
    customer endpoint (nor hand out a customer id as if it were the value).
    """
    resolver = gw.resolver
    if resolver is None:
        return opened
    stored = gw.vault.lookup(conversation_id, ref_id).entity_type
    if stored not in resolver.types and claimed_type not in resolver.types:
        return opened
    if stored != claimed_type:
        raise UnknownReference(ref_id)
    value: str = anyio.from_thread.run(resolve_external, gw, stored, opened)
    return value
