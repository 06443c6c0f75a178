"""The auth matrix, built from the app's own route table.

Every route the app serves must have a row in `EXPECT` (API routes, keyed by API key) or
in `UI_EXPECT` (the log viewer under /ui/, keyed by a session cookie); a route added later
without a row fails `test_every_route_has_an_expectation`, and every row must match a
served route. Each API route is called with no key, a malformed header, an unknown key and
every role's key; each UI route with no session, a forged session and a viewer's session.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from rel_support import (
    ALL_ROLES,
    EXPECT,
    PUBLIC,
    STAFF_REVEAL,
    UI_EXPECT,
    App,
    RecordingBot,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from coatcheck.middleware.app import create_app
from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.gateway.rules import ContextRule
from tests.harness import VALID_BODIES

UNKNOWN_KEY = "cck_000000000000_" + "A" * 43


def _walk(routes: Any, prefix: str, found: set[tuple[str, str]]) -> None:
    for route in routes:
        if isinstance(route, Route | APIRoute):
            for method in route.methods or ():
                if method not in ("HEAD", "OPTIONS"):
                    found.add((method, prefix + route.path))
            continue
        if isinstance(route, Mount) and isinstance(route.app, StaticFiles):
            found.add(("GET", prefix + route.path + "/{path}"))  # files under a folder
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
API_ROUTES = [r for r in ROUTES if not r[1].startswith("/ui/")]
UI_ROUTES = [r for r in ROUTES if r[1].startswith("/ui/")]


def _unexpected(routes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Routes with no row in the table their kind belongs to."""
    return [r for r in routes if r not in (UI_EXPECT if r[1].startswith("/ui/") else EXPECT)]


def test_every_route_has_an_expectation() -> None:
    missing = _unexpected(ROUTES)
    stale = [r for r in [*EXPECT, *UI_EXPECT] if r not in ROUTES]
    assert not missing, f"routes with no auth expectation: {missing}"
    assert not stale, f"expectations for routes the app does not serve: {stale}"
    assert not [r for r in EXPECT if r[1].startswith("/ui/")]
    assert not [r for r in UI_EXPECT if not r[1].startswith("/ui/")]
    assert len(API_ROUTES) >= 18 and len(UI_ROUTES) >= 8


def test_a_new_route_without_a_row_is_caught() -> None:
    """The guard itself: a route added to the app (here under a router prefix) shows up."""
    app = create_app()
    extra = APIRouter(prefix="/v2")

    @extra.post("/export/{conversation_id}")
    def export(conversation_id: str) -> dict[str, str]:
        return {"conversation_id": conversation_id}

    ui_extra = APIRouter(prefix="/ui", include_in_schema=False)

    @ui_extra.get("/export")
    def ui_export() -> dict[str, str]:
        return {}

    app.include_router(extra)
    app.include_router(ui_extra)
    routes = served_routes(app)
    assert ("POST", "/v2/export/{conversation_id}") in routes
    assert _unexpected(routes) == [
        ("GET", "/ui/export"),
        ("POST", "/v2/export/{conversation_id}"),
    ]


def _call(app: App, method: str, template: str, headers: dict[str, str]) -> Any:
    path = template.replace("{conversation_id}", "u1").replace("{entity_type}", "EMAIL_ADDRESS")
    path = path.replace("{path}", "swagger-ui.css")
    body = VALID_BODIES.get(template) if method in ("POST", "PUT") else None
    return app.client.request(method, path, json=body, headers=headers)


def _error(response: Any) -> str | None:
    """The error code, ours (`{"error": code}`) or OpenAI's (`{"error": {"code": ...}}`
    under /openai/)."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else error


def _message(response: Any) -> str:
    body = response.json()
    error = body.get("error")
    return str(error["message"] if isinstance(error, dict) else body["message"])


@pytest.mark.parametrize(("method", "template"), API_ROUTES)
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
    staff = STAFF_REVEAL.get((method, template), frozenset())
    for role in ALL_ROLES:
        response = _call(app, method, template, app.auth(role))
        if role is Role.ADMIN or role in expect:
            # past the key check: whatever comes next (404, 422, a lifecycle refusal such
            # as `purpose_required` for staff) is not a refusal of the key or its role
            assert response.status_code != 401, (method, template, role)
            assert _error(response) not in ("unauthorized", "forbidden", "role_not_allowed"), (
                method,
                template,
                role,
                response.text,
            )
            if role in staff:
                assert _error(response) in ("unknown_reference", "purpose_required"), (
                    role,
                    response.text,
                )
        else:
            assert response.status_code == 403, (method, template, role)
            assert _error(response) == "forbidden", (method, template, role)
            assert role.value in _message(response)


# -- the log viewer: session cookies, not API keys -----------------------------------------


def _ui_call(app: App, method: str, template: str, **kwargs: Any) -> Any:
    path = template.replace("{conversation_id}", "u1").replace("{name}", "ui.css")
    data = {"reference": "CC_EMAIL_ADDRESS_0123456789"} if method == "POST" else None
    return app.client.request(method, path, data=data, follow_redirects=False, **kwargs)


@pytest.mark.parametrize(("method", "template"), UI_ROUTES)
def test_ui_route_auth(app: App, method: str, template: str) -> None:
    expect = UI_EXPECT[(method, template)]
    forged = {"cc_ui_session": "eyJrIjoic2Vzc2lvbiJ9.AAAA"}
    for why, headers, cookies in (
        ("no session", {}, {}),
        ("an API key is not a session", app.auth(Role.ADMIN), {}),
        ("forged session", {}, forged),
    ):
        app.client.cookies.clear()
        app.client.cookies.update(cookies)
        response = _ui_call(app, method, template, headers=headers)
        assert response.status_code == expect.anonymous, (method, template, why)
        if expect.anonymous == 303:
            assert response.headers["location"] == "/ui/login", (method, template, why)
        if expect.error is not None:
            assert _error(response) == expect.error, (method, template, why)
    csrf = app.ui_sign_in(Role.VIEWER)
    if method == "GET":
        response = _ui_call(app, method, template)
        opens = template != "/ui/audit"  # the audit view is not the viewer role's
        assert response.status_code == (200 if opens else 403), (method, template, response.text)
    if expect.csrf:  # signed in, but the form token is missing, then wrong
        for token in (None, csrf[::-1]):
            data = {"reference": "CC_EMAIL_ADDRESS_0123456789"}
            data.update({} if token is None else {"csrf": token})
            path = template.replace("{conversation_id}", "u1")
            response = app.client.post(path, data=data, follow_redirects=False)
            assert response.status_code == 403, (method, template, token)
            assert _error(response) == "csrf_failed", (method, template, token)
    # and a session cookie opens no API route
    history = app.client.get("/v1/conversations/u1/history")
    assert history.status_code == 401 and _error(history) == "unauthorized"


# -- grants on /v1/reveal ---------------------------------------------------------------


def _planted(app: App, conv: str, email: str) -> str:
    response = app.client.post(
        "/webhooks/rest/webhook",
        json={"sender": conv, "message": f"mail me at {email}"},
        headers=app.auth(Role.CHANNEL),
    )
    assert response.status_code == 200
    redacted = app.client.get(
        f"/v1/conversations/{app.cid(conv)}/history", headers=app.auth(Role.VIEWER)
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
    rows = app.services.vault.audit_rows(conversation_id=conv, action="reveal")
    return [row.outcome for row in rows]


def test_reveal_grants(app: App) -> None:
    email_a, email_b = "ann.rel1@example.com", "bob.rel2@example.com"
    ref_a = _planted(app, "conv-a", email_a)
    ref_b = _planted(app, "conv-b", email_b)
    grant_a = _grant(app, app.cid("conv-a"), ["EMAIL_ADDRESS"])

    ok = _reveal(app, app.cid("conv-a"), ref_a, grant_a)
    assert ok.status_code == 200 and ok.json()["value"] == email_a
    assert _audit(app, app.cid("conv-a")) == ["ok"]

    # a grant for conversation A used on conversation B: refused and audited on B
    foreign = _reveal(app, app.cid("conv-b"), ref_b, grant_a)
    assert foreign.status_code == 403 and foreign.json()["error"] == "grant_refused"
    assert email_b not in foreign.text
    assert _audit(app, app.cid("conv-b")) == ["refused"]  # under the presenting key: tests/edges

    # a reference of conversation B asked for inside conversation A: unknown there
    crossed = _reveal(app, app.cid("conv-a"), ref_b, grant_a)
    assert crossed.status_code == 404 and email_b not in crossed.text
    assert _audit(app, app.cid("conv-a")) == ["unknown", "ok"]  # newest first

    # a grant that does not cover the type: refused and audited
    grant_phone = _grant(app, app.cid("conv-a"), ["PHONE_NUMBER"])
    wrong_type = _reveal(app, app.cid("conv-a"), ref_a, grant_phone)
    assert wrong_type.status_code == 403 and wrong_type.json()["error"] == "grant_refused"
    assert _audit(app, app.cid("conv-a")) == ["refused", "unknown", "ok"]

    # a type the action is not allowed: no grant at all
    refused = app.client.post(
        "/v1/grants",
        json={
            "conversation_id": app.cid("conv-a"),
            "entity_types": ["US_SSN"],
            "purpose": "p",
            "action": "action_send_mail",
        },
        headers=app.auth(Role.ACTION_SERVER),
    )
    assert refused.status_code == 403

    # an expired grant: refused by the signature check before the vault, audited there
    app.clock.now += 31
    expired = _reveal(app, app.cid("conv-a"), ref_a, grant_a)
    assert expired.status_code == 403 and expired.json()["error"] == "invalid_grant"
    assert email_a not in expired.text
    assert _audit(app, app.cid("conv-a")) == ["refused:invalid_grant", "refused", "unknown", "ok"]

    # a tampered grant, and no grant at all
    fresh = _grant(app, app.cid("conv-a"), ["EMAIL_ADDRESS"])
    body, tag = fresh.split(".")
    tampered = _reveal(app, app.cid("conv-a"), ref_a, body + "." + tag[::-1])
    assert tampered.status_code == 403 and tampered.json()["error"] == "invalid_grant"
    missing = app.client.post(
        "/v1/reveal",
        json={"conversation_id": app.cid("conv-a"), "ref": ref_a},
        headers=app.auth(Role.ACTION_SERVER),
    )
    assert missing.status_code == 403 and missing.json()["error"] == "grant_refused"
    outcomes = _audit(app, app.cid("conv-a"))
    assert outcomes[:2] == ["refused:grant_required", "refused:invalid_grant"]
    _assert_rows_clean(app, [email_a, email_b, fresh, grant_a, *app.keys.values()])


def _assert_rows_clean(app: App, secrets: list[str]) -> None:
    """No audit row carries a value, a grant token or an API key; actors name key prefixes."""
    rows = app.services.vault.audit_rows(limit=10_000)
    assert rows
    for row in rows:
        text = repr(row)
        assert not [s for s in secrets if s in text], row
        if row.action in ("reveal", "grant") and row.actor.split(":")[0] in {r.value for r in Role}:
            assert row.actor.split(":")[1:2] == ["key"], row.actor


def test_staff_reveals_follow_the_lifecycle(app: App) -> None:
    """Agent and auditor pass the key check; the lifecycle rules decide, and audit."""
    email = "cy.rel3@example.com"
    ref = _planted(app, "conv-s", email)

    def staff(role: Role, purpose: str | None = None) -> Any:
        body = {"conversation_id": app.cid("conv-s"), "ref": ref}
        body.update({} if purpose is None else {"purpose": purpose})
        return app.client.post("/v1/reveal", json=body, headers=app.auth(role))

    agent = staff(Role.AGENT)
    assert agent.status_code == 200 and agent.json()["value"] == email  # while active
    no_purpose = staff(Role.AUDITOR)
    assert no_purpose.status_code == 403 and no_purpose.json()["error"] == "purpose_required"
    assert email not in no_purpose.text

    ended = app.client.post("/v1/conversations/conv-s/end", headers=app.auth(Role.CHANNEL))
    assert ended.status_code == 200 and ended.json()["status"] == "masked", ended.text
    after = staff(Role.AGENT)
    assert after.status_code == 403 and after.json()["error"] == "conversation_ended"
    assert email not in after.text
    still_no_purpose = staff(Role.AUDITOR)
    assert still_no_purpose.json()["error"] == "purpose_required"
    not_reporting = staff(Role.AUDITOR, "curiosity")
    assert not_reporting.status_code == 403 and not_reporting.json()["error"] == "reporting_only"
    reporting = staff(Role.AUDITOR, "reporting")
    assert reporting.status_code == 200 and reporting.json()["value"] == email

    rows = app.services.vault.audit_rows(conversation_id=app.cid("conv-s"), action="reveal")
    seen = [(row.actor.split(":")[0], row.outcome, row.purpose) for row in rows][::-1]
    assert seen == [
        ("agent", "ok", None),
        ("auditor", "refused:purpose_required", None),
        ("agent", "refused:conversation_ended", None),
        ("auditor", "refused:purpose_required", None),
        ("auditor", "refused:reporting_only", "curiosity"),
        ("auditor", "ok", "reporting"),
    ]
    _assert_rows_clean(app, [email, *app.keys.values()])


@pytest.mark.parametrize(
    ("path", "action", "role"),
    [
        ("/v1/reveal", "reveal", Role.CHANNEL),
        ("/v1/reveal", "reveal", Role.VIEWER),
        ("/v1/grants", "grant", Role.BOT),
        ("/v1/grants", "grant", Role.AGENT),
        ("/v1/check", "check", Role.CHANNEL),
    ],
)
def test_role_refusals_on_value_routes_are_audited(
    app: App, path: str, action: str, role: Role
) -> None:
    body = VALID_BODIES[path]
    before = len(app.services.vault.audit_rows(limit=10_000))
    refused = app.client.post(path, json=body, headers=app.auth(role))
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    rows = app.services.vault.audit_rows(action=action, limit=10_000)
    assert len(app.services.vault.audit_rows(limit=10_000)) == before + 1
    prefix = app.keys[role].split("_")[1]
    assert (rows[0].actor, rows[0].outcome) == (f"{role.value}:key:{prefix}", "refused:forbidden")
    assert rows[0].conversation_id is None  # the body of a refused caller is not read
    # an unknown key (401) writes nothing: no anonymous growth of the audit log
    unknown = app.client.post(path, json=body, headers={"Authorization": f"Bearer {UNKNOWN_KEY}"})
    assert unknown.status_code == 401
    assert len(app.services.vault.audit_rows(limit=10_000)) == before + 1
    # other routes' role refusals are not audited (they open nothing)
    other = app.client.post(
        "/v1/redact", json=VALID_BODIES["/v1/redact"], headers=app.auth(Role.VIEWER)
    )
    assert other.status_code == 403
    assert len(app.services.vault.audit_rows(limit=10_000)) == before + 1
    assert app.services.vault.verify_audit().ok


def test_grant_for_a_type_the_action_may_not_have_is_audited(app: App) -> None:
    refused = app.client.post(
        "/v1/grants",
        json={
            "conversation_id": "conv-g",
            "entity_types": ["US_SSN"],
            "purpose": "p",
            "action": "action_send_mail",
        },
        headers=app.auth(Role.ACTION_SERVER),
    )
    assert refused.status_code == 403 and refused.json()["error"] == "grant_refused"
    rows = app.services.vault.audit_rows(conversation_id="conv-g", action="grant")
    assert [row.outcome for row in rows] == ["refused:type_not_allowed"]


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
    app.services.store.conversations.set_rule("u9", ContextRule("NOSUCHTYPE"))
    for text in ("hello ann.rel9@example.com", "again"):
        response = app.client.post(
            "/webhooks/rest/webhook",
            json={"sender": "u9", "message": text},
            headers=app.auth(Role.CHANNEL),
        )
        assert response.status_code == 200, response.text
    assert "ann.rel9@example.com" not in str(bot.received)
    assert len(bot.received) == 2


# -- regression: a bad export config path was echoed in the 422 (found by the fuzzer) --------


def test_bad_export_config_path_is_not_echoed(app: App) -> None:
    path = "zq.canary.echo@example.com and 4111 1111 1111 1111"
    for body in (
        {"type": "allow", "fields": ["turns.text", path]},
        {"type": "deny", "fields": ["turns", "tenant.zq_canary_echo_7731"]},
    ):
        response = app.client.put(
            "/v1/config/export-redaction", json=body, headers=app.auth(Role.ADMIN)
        )
        assert response.status_code == 422, response.text
        assert "fields[1]" in response.json()["message"]
        assert "canary" not in response.text and "4111" not in response.text
    described = app.client.get("/v1/config/export-redaction", headers=app.auth(Role.ADMIN))
    assert described.json()["version"] == 0  # the previous (default) config stands
