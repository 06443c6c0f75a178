"""The auth matrix, built from the app's own route table.

Every route the app serves must have a row in `EXPECT` (a route added later without a row
fails `test_every_route_has_an_expectation`), and every row must match a served route.
Each route is called with no key, a malformed header, an unknown key and every role's key.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from rel_support import ALL_ROLES, EXPECT, NOT_YET, PUBLIC, App, RecordingBot
from starlette.routing import Route

from middleware.service.apikeys import Role
from middleware.service.app import create_app
from middleware.service.store import guarded, set_context

BODIES: dict[str, Any] = {
    "/webhooks/rest/webhook": {"sender": "u1", "message": "hi"},
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
        "predicate": {"op": "length", "min": 1},
    },
    "/v1/conversations/{conversation_id}/context": {"expect": "PIN"},
}
UNKNOWN_KEY = "cck_000000000000_" + "A" * 43


def _walk(routes: Any, prefix: str, found: set[tuple[str, str]]) -> None:
    for route in routes:
        if isinstance(route, Route | APIRoute):
            for method in route.methods or ():
                if method not in ("HEAD", "OPTIONS"):
                    found.add((method, prefix + route.path))
            continue
        included = getattr(route, "original_router", None)  # FastAPI's include_router
        if included is not None:
            context = getattr(route, "include_context", None)
            _walk(included.routes, prefix + str(getattr(context, "prefix", "")), found)
            continue
        raise AssertionError(f"unexpected route kind {type(route).__name__}: extend the walk")


def served_routes(app: FastAPI | None = None) -> list[tuple[str, str]]:
    """(method, path) for every route of a freshly built app (no lifespan needed)."""
    app = app if app is not None else create_app()
    found: set[tuple[str, str]] = set()
    _walk(app.routes, "", found)
    openapi = app.openapi()
    for path, item in openapi["paths"].items():  # the schema must agree with the table
        for method in item:
            assert (method.upper(), path) in found, (method, path)
    return sorted(found)


ROUTES = served_routes()


def test_every_route_has_an_expectation() -> None:
    missing = [r for r in ROUTES if r not in EXPECT]
    stale = [r for r in EXPECT if r not in ROUTES]
    assert not missing, f"routes with no auth expectation: {missing}"
    assert not stale, f"expectations for routes the app does not serve: {stale}"
    assert len(ROUTES) >= 13


def test_a_new_route_without_a_row_is_caught() -> None:
    """The guard itself: a route added to the app (here under a router prefix) shows up."""
    app = create_app()
    extra = APIRouter(prefix="/v2")

    @extra.post("/export/{conversation_id}")
    def export(conversation_id: str) -> dict[str, str]:
        return {"conversation_id": conversation_id}

    app.include_router(extra)
    routes = served_routes(app)
    assert ("POST", "/v2/export/{conversation_id}") in routes
    assert [r for r in routes if r not in EXPECT] == [("POST", "/v2/export/{conversation_id}")]


def _call(app: App, method: str, template: str, headers: dict[str, str]) -> Any:
    path = template.replace("{conversation_id}", "u1")
    return app.client.request(method, path, json=BODIES.get(template), headers=headers)


def _error(response: Any) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


@pytest.mark.parametrize(("method", "template"), ROUTES)
def test_route_auth(app: App, method: str, template: str) -> None:
    expect = EXPECT[(method, template)]
    if expect == PUBLIC:
        response = _call(app, method, template, {})
        assert response.status_code == 200, (method, template)
        return
    assert isinstance(expect, frozenset)
    refusals = [
        ({}, "no header"),
        ({"Authorization": "Basic abc"}, "wrong scheme"),
        ({"Authorization": "Bearer "}, "empty bearer"),
        ({"Authorization": f"Bearer {UNKNOWN_KEY}"}, "unknown key"),
        ({"Authorization": f"Bearer {app.keys[Role.CHANNEL]}x"}, "tampered key"),
    ]
    for headers, why in refusals:
        response = _call(app, method, template, headers)
        assert response.status_code == 401, (method, template, why)
        assert _error(response) == "unauthorized", (method, template, why)
    not_yet = NOT_YET.get((method, template), frozenset())
    for role in ALL_ROLES:
        response = _call(app, method, template, app.auth(role))
        if role is Role.ADMIN or (role in expect and role not in not_yet):
            assert response.status_code not in (401,), (method, template, role)
            assert _error(response) not in ("unauthorized", "forbidden", "not_yet"), (
                method,
                template,
                role,
                response.text,
            )
        elif role in not_yet:
            assert response.status_code == 403, (method, template, role)
            assert _error(response) == "not_yet", (method, template, role)
        else:
            assert response.status_code == 403, (method, template, role)
            assert _error(response) == "forbidden", (method, template, role)
            assert role.value in response.json()["message"]


# -- grants on /v1/reveal ---------------------------------------------------------------


def _planted(app: App, conv: str, email: str) -> str:
    response = app.client.post(
        "/webhooks/rest/webhook",
        json={"sender": conv, "message": f"mail me at {email}"},
        headers=app.auth(Role.CHANNEL),
    )
    assert response.status_code == 200
    redacted = app.client.get(
        f"/v1/conversations/{conv}/history", headers=app.auth(Role.VIEWER)
    ).json()
    refs = [
        word.split("(")[0]
        for message in redacted["messages"]
        for word in str(message).replace("'", " ").split()
        if word.startswith("CC_EMAIL_ADDRESS_")
    ]
    assert refs, redacted
    return refs[0]


def _grant(app: App, conv: str, types: list[str]) -> str:
    response = app.client.post(
        "/v1/grants",
        json={
            "conversation_id": conv,
            "entity_types": types,
            "purpose": "receipt",
            "action": "action_send_mail",
        },
        headers=app.auth(Role.ACTION_SERVER),
    )
    assert response.status_code == 200, response.text
    grant: str = response.json()["grant"]
    return grant


def _reveal(app: App, conv: str, ref: str, grant: str) -> Any:
    return app.client.post(
        "/v1/reveal",
        json={"conversation_id": conv, "ref": ref, "grant": grant},
        headers=app.auth(Role.ACTION_SERVER),
    )


def _audit(app: App, conv: str) -> list[str]:
    rows = app.gateway.vault.audit_rows(conversation_id=conv, action="reveal")
    return [row.outcome for row in rows]


def test_reveal_grants(app: App) -> None:
    email_a, email_b = "ann.rel1@example.com", "bob.rel2@example.com"
    ref_a = _planted(app, "conv-a", email_a)
    ref_b = _planted(app, "conv-b", email_b)
    grant_a = _grant(app, "conv-a", ["EMAIL_ADDRESS"])

    ok = _reveal(app, "conv-a", ref_a, grant_a)
    assert ok.status_code == 200 and ok.json()["value"] == email_a
    assert _audit(app, "conv-a") == ["ok"]

    # a grant for conversation A used on conversation B: refused and audited on B
    foreign = _reveal(app, "conv-b", ref_b, grant_a)
    assert foreign.status_code == 403 and foreign.json()["error"] == "grant_refused"
    assert email_b not in foreign.text
    assert _audit(app, "conv-b") == ["refused"]

    # a reference of conversation B asked for inside conversation A: unknown there
    crossed = _reveal(app, "conv-a", ref_b, grant_a)
    assert crossed.status_code == 404 and email_b not in crossed.text
    assert _audit(app, "conv-a") == ["unknown", "ok"]  # newest first

    # a grant that does not cover the type: refused and audited
    grant_phone = _grant(app, "conv-a", ["PHONE_NUMBER"])
    wrong_type = _reveal(app, "conv-a", ref_a, grant_phone)
    assert wrong_type.status_code == 403 and wrong_type.json()["error"] == "grant_refused"
    assert _audit(app, "conv-a") == ["refused", "unknown", "ok"]

    # a type the action is not allowed: no grant at all
    refused = app.client.post(
        "/v1/grants",
        json={
            "conversation_id": "conv-a",
            "entity_types": ["US_SSN"],
            "purpose": "p",
            "action": "action_send_mail",
        },
        headers=app.auth(Role.ACTION_SERVER),
    )
    assert refused.status_code == 403

    # an expired grant: refused by the signature check before the vault (not audited)
    app.clock.now += 31
    expired = _reveal(app, "conv-a", ref_a, grant_a)
    assert expired.status_code == 403 and expired.json()["error"] == "invalid_grant"
    assert email_a not in expired.text

    # a tampered grant
    fresh = _grant(app, "conv-a", ["EMAIL_ADDRESS"])
    body, tag = fresh.split(".")
    tampered = _reveal(app, "conv-a", ref_a, body + "." + tag[::-1])
    assert tampered.status_code == 403 and tampered.json()["error"] == "invalid_grant"
    assert _audit(app, "conv-a") == ["refused", "unknown", "ok"]  # neither was audited

    # the roles that may not reveal yet: 403, nothing revealed
    for role in (Role.AGENT, Role.AUDITOR):
        response = app.client.post(
            "/v1/reveal",
            json={"conversation_id": "conv-a", "ref": ref_a, "grant": fresh},
            headers=app.auth(role),
        )
        assert response.status_code == 403 and email_a not in response.text


# -- regression: an unknown entity type in a context rule was a 500 (found by the fuzzer) ---


def test_unknown_context_type_is_refused_not_500(app: App) -> None:
    redact = app.client.post(
        "/v1/redact",
        json={"text": "hi", "conversation_id": "u9", "context": {"expect": "NOSUCHTYPE"}},
        headers=app.auth(Role.BOT),
    )
    assert redact.status_code == 422 and redact.json()["error"] == "bad_text"
    context = app.client.post(
        "/v1/conversations/u9/context", json={"expect": "NOSUCHTYPE"}, headers=app.auth(Role.BOT)
    )
    assert context.status_code == 422 and context.json()["error"] == "bad_text"


def test_bot_directive_with_unknown_type_does_not_wedge_the_conversation(
    app: App, bot: RecordingBot
) -> None:
    # a bot directive is stored without the route's check; the next message must still pass
    with guarded(app.gateway.sessions) as session:
        set_context(session, "u9", {"expect": "NOSUCHTYPE", "capture": None}, app.clock)
    for text in ("hello ann.rel9@example.com", "again"):
        response = app.client.post(
            "/webhooks/rest/webhook",
            json={"sender": "u9", "message": text},
            headers=app.auth(Role.CHANNEL),
        )
        assert response.status_code == 200, response.text
    assert "ann.rel9@example.com" not in str(bot.received)
    assert len(bot.received) == 2
