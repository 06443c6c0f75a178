"""What the gateway test suites share, so each builds a gateway and a loopback peer the same way.

- `threaded(app)` (from reliability/harness.py) / `serving(path, handler)`: a real aiohttp
  server on 127.0.0.1 (a free port) in its own thread and loop, for tests that drive the
  gateway's synchronous TestClient while the gateway calls the peer (a stub bot, an export
  receiver, a vault).
- `open_gateway(settings)`: the real app with its lifespan running and one API key per role.
- `GatewayClient`: the handle the suites extend (`Service`, `Harness`, `App`).
- `VALID_BODIES`: a body per JSON route that passes validation (the auth tests).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from fastapi.testclient import TestClient

from coatcheck.middleware.app import create_app
from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.services import Services, services_of
from coatcheck.middleware.settings import Settings
from reliability.harness import threaded
from tests.conftest import FakeClock

__all__ = ["GATEWAY_EPOCH", "VALID_BODIES", "GatewayClient", "open_gateway", "serving", "threaded"]

GATEWAY_EPOCH = 1_800_000_000.0  # the gateway suites' injected "now"

# A valid body for each JSON route, by route template: what gets a request past validation,
# so only the credentials decide its fate (the auth tests and the reliability matrix).
VALID_BODIES: dict[str, Any] = {
    "/webhooks/rest/webhook": {"sender": "u1", "message": "hi"},
    "/openai/v1/chat/completions": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    "/v1/redact": {"text": "hi", "conversation_id": "u1"},
    "/v1/grants": {
        "conversation_id": "u1",
        "entity_types": ["EMAIL_ADDRESS"],
        "purpose": "p",
        "action": "action_send_mail",
    },
    "/v1/reveal": {"conversation_id": "u1", "ref": "CC_EMAIL_ADDRESS_0123456789"},
    "/v1/check": {
        "conversation_id": "u1",
        "ref": "CC_EMAIL_ADDRESS_0123456789",
        "check": "email_nonempty",
    },
    "/v1/conversations/{conversation_id}/context": {"expect": "PIN"},
    "/v1/conversations/{conversation_id}/temporary": {"value": "x", "ttl_seconds": 60},
    "/v1/config/export-redaction": {"type": "allow", "fields": []},
    "/v1/subjects/erase": {"sender": "u1"},
    "/v1/senders/history": {"sender": "u1"},
    "/v1/subjects/export": {"sender": "u1"},
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextmanager
def serving(path: str, handler: Handler) -> Iterator[str]:
    """`handler` answering POSTs at `path` on a loopback server; yields the full URL."""
    app = web.Application()
    app.router.add_post(path, handler)
    with threaded(app) as base:
        yield base + path


@dataclass
class GatewayClient:
    """A running gateway: its TestClient, one API key per role, the clock it was given."""

    client: TestClient
    keys: dict[Role, str]
    clock: FakeClock

    @property
    def services(self) -> Services:
        """The worker's composed domain services (what the routes call)."""
        return services_of(self.client.app.state)  # type: ignore[attr-defined]

    def auth(self, role: Role | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.keys[role]}"}

    def cid(self, sender: str) -> str:
        """The conversation id a channel sender's turns are kept under (its pseudonym):
        what the bot, the stores and every non-channel caller name it by."""
        return self.services.vault.pseudonym(sender)


def open_gateway(settings: Settings) -> tuple[TestClient, dict[Role, str], FakeClock]:
    """The app built from `settings`, lifespan entered (close with `client.__exit__`)."""
    clock = FakeClock(GATEWAY_EPOCH)
    client = TestClient(create_app(settings, clock=clock), raise_server_exceptions=False)
    client.__enter__()
    store = services_of(client.app.state).store  # type: ignore[attr-defined]
    keys = {role: store.keys.create(role) for role in Role}
    return client, keys, clock
