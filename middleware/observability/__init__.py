"""Operations: Prometheus metrics, request ids and JSON logs, readiness, offline API docs.

Kept apart from the service so the gateway's own modules stay about messages and values.
The app factory adds `requestid.RequestContext` (request ids, the route-layer metrics),
mounts `routes.ops_router` (`/metrics`, `/ready`, the endpoint test) and calls
`docs.install_docs`; the lifespan wraps the vault and the bot in `instrument.MeteredVault`
and `instrument.MeteredBot`.  Everything counted goes through `metrics`; no label ever holds
a value or a conversation id (docs/operations.md).

The submodules are imported by name (nothing is re-exported here): the service imports
this package and this package's routes import the service, so an eager `__init__` would
make the two import each other half-initialised.
"""

__all__: list[str] = []
