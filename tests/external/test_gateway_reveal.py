"""Bring-your-own-vault through the real gateway: the chat carries the customer's id, the
vault keeps only that id, and a granted /v1/reveal fetches the value from a customer vault
on loopback (tests/external/customer_vault.py)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from coatcheck.middleware.app import create_app
from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.render import parse_references
from coatcheck.middleware.settings import Settings
from tests.export.gateway_app import GatewayFactory, Harness
from tests.external.customer_vault import (
    BEARER,
    BIG_TOKEN_BYTES,
    CLIENT_ID,
    CLIENT_SECRET,
    VALUES,
    VaultState,
)
from tests.external.customer_vault import build_app as customer_app
from tests.external.loopback import closed_port, threaded

CUSTOMER_ID = "CUST-7Q2K9X"
VALUE = VALUES[CUSTOMER_ID]
EMAIL = "jane.canary@example.com"


@pytest.fixture
def customer() -> Iterator[tuple[VaultState, str]]:
    state = VaultState()
    with threaded(customer_app(state)) as base:
        yield state, base


def config(url_template: str, **endpoint: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "crm",
        "url_template": url_template,
        "timeout_seconds": 0.5,
        "retry": {"attempts": 2, "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.02},
        "breaker": {"failure_threshold": 3, "cooldown_seconds": 30},
        **endpoint,
    }
    return {
        "custom_types": [{"name": "CUST_REF", "regex": r"\bCUST-[A-Z0-9]{6}\b"}],
        "actions": {
            "action_lookup": ["CUST_REF", "EMAIL_ADDRESS"],
            "action_mail": ["EMAIL_ADDRESS"],
        },
        "external": {"CUST_REF": spec},
    }


def bearer(base: str) -> dict[str, Any]:
    return config(base + "/bearer/{ref}", auth={"type": "bearer", "token": BEARER})


def chat(gw: Harness, conv: str = "c1", customer_id: str = CUSTOMER_ID) -> dict[str, str]:
    """Send the customer's id and an email; the references the bot saw, by type."""
    [reply] = gw.say(conv, f"my customer id is {customer_id}, mail {EMAIL}")
    assert customer_id not in reply["text"] and EMAIL not in reply["text"]
    return {ref.entity_type: ref.reference for ref in parse_references(reply["text"])}


def reveal(gw: Harness, ref: str, action: str = "action_lookup", conv: str = "c1") -> Any:
    allowed = {"action_lookup": ["CUST_REF", "EMAIL_ADDRESS"], "action_mail": ["EMAIL_ADDRESS"]}
    conv = gw.cid(conv)  # the channel sender's conversation, as the action server names it
    grant = gw.call(
        "POST",
        "/v1/grants",
        Role.ACTION_SERVER,
        json={
            "conversation_id": conv,
            "entity_types": allowed[action],
            "purpose": "lookup",
            "action": action,
        },
    )
    assert grant.status_code == 200, grant.text
    body = {"conversation_id": conv, "ref": ref, "grant": grant.json()["grant"]}
    return gw.call("POST", "/v1/reveal", Role.ACTION_SERVER, json=body)


def assert_nowhere_at_rest(tmp_path: Path, *secrets: str) -> None:
    """No file the gateway wrote (database, WAL, key files) holds any of `secrets`."""
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "cc.db" for p in files)
    for path in files:
        blob = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in blob, path.name


def test_bearer_reveal_fetches_the_value_and_leaves_no_trace(
    gateways: GatewayFactory,
    customer: tuple[VaultState, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    state, base = customer
    gw = gateways.build(bearer(base))
    refs = chat(gw)
    assert state.hits["bearer"] == 0  # nothing is fetched on the way in
    response = reveal(gw, refs["CUST_REF"])
    assert response.status_code == 200, response.text
    assert response.json() == {"value": VALUE, "type": "CUST_REF"}
    assert state.hits["bearer"] == 1
    # A local type in the same conversation still comes from the local vault.
    assert reveal(gw, refs["EMAIL_ADDRESS"]).json()["value"] == EMAIL
    assert state.hits["bearer"] == 1
    assert any("external fetch endpoint=crm" in r.getMessage() for r in caplog.records)
    assert VALUE not in caplog.text
    history = gw.call("GET", f"/v1/conversations/{gw.cid('c1')}/history", Role.VIEWER).json()
    assert VALUE not in str(history) and CUSTOMER_ID not in str(history)
    # The vault holds the customer's id as ciphertext only; the fetched value nowhere.
    assert_nowhere_at_rest(tmp_path, VALUE, CUSTOMER_ID)


def test_oauth2_token_is_cached_then_refreshed_before_expiry(
    gateways: GatewayFactory, customer: tuple[VaultState, str]
) -> None:
    state, base = customer
    state.token_expires_in = 60
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": base + "/token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_margin_seconds": 10,
    }
    gw = gateways.build(config(base + "/oauth/{ref}", auth=auth))
    ref = chat(gw)["CUST_REF"]
    for _ in range(2):
        assert reveal(gw, ref).json()["value"] == VALUE
    assert state.tokens_issued == ["tok-0"]  # one token for both reveals
    gw.clock.now += 49  # still 11 s before expiry: more than the 10 s margin
    assert reveal(gw, ref).json()["value"] == VALUE
    assert state.tokens_issued == ["tok-0"]
    gw.clock.now += 2  # inside the margin: refreshed before it expires
    assert reveal(gw, ref).json()["value"] == VALUE
    assert state.tokens_issued == ["tok-0", "tok-1"]
    state.revoked.add("tok-1")  # the customer revokes it: one 401, a new token, success
    assert reveal(gw, ref).json()["value"] == VALUE
    assert state.tokens_issued == ["tok-0", "tok-1", "tok-2"]
    assert state.hits["oauth"] == 6


def test_reveal_needs_a_grant_for_the_external_type(
    gateways: GatewayFactory, customer: tuple[VaultState, str]
) -> None:
    state, base = customer
    gw = gateways.build(bearer(base))
    refs = chat(gw)
    no_grant = gw.call(
        "POST",
        "/v1/reveal",
        Role.ACTION_SERVER,
        json={"conversation_id": gw.cid("c1"), "ref": refs["CUST_REF"]},
    )
    assert no_grant.status_code == 403
    wrong_type = reveal(gw, refs["CUST_REF"], action="action_mail")
    assert (wrong_type.status_code, wrong_type.json()["error"]) == (403, "grant_refused")
    other_conv = reveal(gw, refs["CUST_REF"], conv="c2")
    assert other_conv.status_code in (403, 404)
    assert state.hits["bearer"] == 0


def test_a_local_value_relabelled_as_external_is_never_sent_out(
    gateways: GatewayFactory, customer: tuple[VaultState, str]
) -> None:
    state, base = customer
    gw = gateways.build(bearer(base))
    refs = chat(gw)
    email_id = refs["EMAIL_ADDRESS"].rsplit("_", 1)[1]
    forged = reveal(gw, f"CC_CUST_REF_{email_id}")  # the grant covers both types
    assert (forged.status_code, forged.json()["error"]) == (404, "unknown_reference")
    cust_id = refs["CUST_REF"].rsplit("_", 1)[1]
    swapped = reveal(gw, f"CC_EMAIL_ADDRESS_{cust_id}")
    assert swapped.status_code == 404 and CUSTOMER_ID not in swapped.text
    assert state.hits["bearer"] == 0


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/slow/{ref}", 504, "external_timeout"),
        ("/garbage/{ref}", 502, "external_bad_response"),
        ("/forbidden/{ref}", 502, "external_auth_failed"),
        ("/none/{ref}", 404, "external_not_found"),
    ],
)
def test_endpoint_failures_map_to_clear_errors(
    gateways: GatewayFactory,
    customer: tuple[VaultState, str],
    caplog: pytest.LogCaptureFixture,
    path: str,
    status: int,
    code: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    _, base = customer
    gw = gateways.build(config(base + path))
    customer_id = "CUST-ZZZZZZ" if code == "external_not_found" else CUSTOMER_ID
    ref = chat(gw, customer_id=customer_id)["CUST_REF"]
    response = reveal(gw, ref)
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert response.json()["message"].startswith("crm: ")
    for secret in (VALUE, VALUES["r1"], customer_id):  # /garbage answers with r1's value
        assert secret not in response.text
        assert secret not in caplog.text


def test_endpoint_down_then_breaker_opens(gateways: GatewayFactory) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/vault/{{ref}}"
    gw = gateways.build(config(dead))
    ref = chat(gw)["CUST_REF"]
    for _ in range(3):
        down = reveal(gw, ref)
        assert (down.status_code, down.json()["error"]) == (502, "external_unavailable")
    refused = reveal(gw, ref)  # three failed resolutions: the breaker is open, no call
    assert (refused.status_code, refused.json()["error"]) == (503, "external_circuit_open")
    resolver = gw.services.external.resolver
    assert resolver is not None
    assert resolver.breaker("CUST_REF").state.name == "OPEN"


@pytest.mark.parametrize(
    ("external", "field"),
    [
        (
            {"EMAIL_ADDRESS": {"name": "x", "url_template": "http://h/{ref}"}},
            "external.EMAIL_ADDRESS",
        ),
        ({"CUST_REF": {"name": "x", "url_template": "http://h/"}}, "external.CUST_REF"),
        (
            {"CUST_REF": {"name": "x", "url_template": "http://h/{ref}", "auth": {"type": "x"}}},
            "external.CUST_REF.auth",
        ),
        ({"bad-name": {}}, "external"),
        (["CUST_REF"], "external"),
    ],
)
def test_bad_external_section_is_refused_at_start(
    tmp_path: Path, external: Any, field: str
) -> None:
    data = {
        "custom_types": [{"name": "CUST_REF", "regex": r"\bCUST-\d+\b"}],
        "external": external,
    }
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", config=path)
    with pytest.raises(ValueError, match=re.escape(f"COATCHECK_CONFIG: {field}")):
        create_app(settings)


def test_confirm_types_cannot_be_external(tmp_path: Path) -> None:
    data = {
        "custom_types": [{"name": "CUST_REF", "regex": r"\bCUST-\d+\b", "confirm": True}],
        "external": {"CUST_REF": {"name": "x", "url_template": "http://h/{ref}"}},
    }
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", config=path)
    with pytest.raises(ValueError, match=re.escape("external.CUST_REF: confirmation")):
        create_app(settings)


def _expecting(base: str, pattern: str) -> dict[str, Any]:
    """A config where CUST_REF is found only by a permissive `types.<T>.pattern`."""
    data = bearer(base)
    data.pop("custom_types")
    data["types"] = {"CUST_REF": {"pattern": pattern}}
    return data


@pytest.mark.parametrize("typed", ["..", ".", "../../admin"])
def test_a_typed_dot_segment_never_walks_the_customer_url(
    gateways: GatewayFactory, customer: tuple[VaultState, str], typed: str
) -> None:
    """Issue 19, finding 7: `..` made the gateway GET / of the customer host with its token."""
    state, base = customer
    gw = gateways.build(_expecting(base, r"\S+"))
    rule = gw.call(
        "POST", f"/v1/conversations/{gw.cid('c1')}/context", Role.BOT, json={"expect": "CUST_REF"}
    )
    assert rule.status_code == 200, rule.text
    [reply] = gw.say("c1", typed)
    [ref] = parse_references(reply["text"])
    assert ref.entity_type == "CUST_REF"
    response = reveal(gw, ref.reference)
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "external_not_found"
    assert state.paths == []  # nothing reached the customer: no "/", no bearer token


def test_an_80_mb_token_answer_is_cut_at_the_cap(
    gateways: GatewayFactory, customer: tuple[VaultState, str]
) -> None:
    """Issue 19, finding 7: the OAuth token answer had no size cap (113 -> 353 MB RSS)."""
    state, base = customer
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": base + "/big-token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    gw = gateways.build(config(base + "/oauth/{ref}", auth=auth, timeout_seconds=10))
    response = reveal(gw, chat(gw)["CUST_REF"])
    assert response.status_code == 502, response.text
    assert response.json()["error"] == "external_auth_failed"
    assert state.big_token_sent < BIG_TOKEN_BYTES // 4  # reading stopped at the cap
    assert not any(path.startswith("/oauth/") for path in state.paths)
