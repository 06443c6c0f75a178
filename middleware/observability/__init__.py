"""Operations: Prometheus metrics, request ids and JSON logs, readiness, offline API docs.

Kept apart from the domain so the gateway's own modules stay about messages and values.
The composition root wires it in: `app.py` adds `requestid.RequestContext` (request ids,
the route-layer metrics; outermost), mounts `routes.ops_router(bot_url)` (`/metrics`,
`/ready`, the endpoint test) and builds the app with `docs.offline_app`; `compose.py`
wraps the vault and the bot in `instrument.MeteredVault` and `instrument.MeteredBot`.
Everything counted goes through `metrics`; no label ever holds a value or a conversation
id (docs/operations.md).

The submodules are imported by name (nothing is re-exported here), so importing one never
loads the others (the CLI's log formatter needs no FastAPI route).
"""

__all__: list[str] = []
