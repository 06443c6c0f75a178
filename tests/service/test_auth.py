"""Every route refuses a missing key, an unknown key and a wrong role; health needs none."""

from __future__ import annotations

from typing import Any

import pytest
from gateway_helpers import Service

from coatcheck.middleware.gateway.apikeys import Role, parse_key
from tests.harness import VALID_BODIES

# (method, path, a role that must be refused with 403, a role that must get past auth)
ROUTES = [
    ("POST", "/webhooks/rest/webhook", Role.VIEWER, Role.CHANNEL),
    ("POST", "/v1/redact", Role.VIEWER, Role.BOT),
    ("POST", "/v1/grants", Role.CHANNEL, Role.ACTION_SERVER),
    ("POST", "/v1/reveal", Role.CHANNEL, Role.ACTION_SERVER),
    ("POST", "/v1/check", Role.VIEWER, Role.BOT),
    ("POST", "/v1/conversations/u1/context", Role.CHANNEL, Role.BOT),
    ("POST", "/v1/conversations/u1/end", Role.VIEWER, Role.CHANNEL),
    ("GET", "/v1/conversations/u1/history", Role.CHANNEL, Role.VIEWER),
]


def call(service: Service, method: str, path: str, headers: dict[str, str]) -> Any:
    body = VALID_BODIES.get(path.replace("/u1/", "/{conversation_id}/"))
    return service.client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "wrong", "right"), ROUTES)
def test_auth_matrix(service: Service, method: str, path: str, wrong: Role, right: Role) -> None:
    missing = call(service, method, path, {})
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    unknown_key = "cck_000000000000_" + "A" * 43
    assert (
        call(service, method, path, {"Authorization": f"Bearer {unknown_key}"}).status_code == 401
    )
    assert call(service, method, path, {"Authorization": "Basic abc"}).status_code == 401
    forbidden = call(service, method, path, service.auth(wrong))
    assert forbidden.status_code == 403
    assert forbidden.json() == {
        "error": "forbidden",
        "message": f"{wrong.value}: this API key's role may not use this route",
    }
    for role in (right, Role.ADMIN):  # past auth: any outcome but an auth error
        passed = call(service, method, path, service.auth(role))
        body = passed.json()
        error = body.get("error") if isinstance(body, dict) else None
        assert passed.status_code != 401
        assert error not in ("unauthorized", "forbidden")


def test_tampered_key_is_unknown(service: Service) -> None:
    key = service.keys[Role.CHANNEL]
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    response = service.client.post(
        "/webhooks/rest/webhook",
        json={"sender": "u1", "message": "hi"},
        headers={"Authorization": f"Bearer {tampered}"},
    )
    assert response.status_code == 401


def test_health_needs_no_key(service: Service) -> None:
    response = service.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("cck_0123456789ab_rest", "0123456789ab"),
        ("cck_short_rest", None),
        ("xyz_0123456789ab_rest", None),
        ("cck_0123456789ab", None),
        ("cck_0123456789ab_r\u00e9st", None),
    ],
)
def test_parse_key(key: str, prefix: str | None) -> None:
    assert parse_key(key) == prefix


def test_keys_are_stored_hashed(service: Service) -> None:
    from sqlalchemy import text

    with service.services.engine.connect() as conn:
        stored = " ".join(
            str(v) for row in conn.execute(text("SELECT * FROM gw_api_keys")) for v in row
        )
    for key in service.keys.values():
        assert key not in stored
        assert key.split("_")[1] in stored  # the public prefix is stored
