"""`/metrics` through the real gateway: messages, entities by type, each door's reveals and
refusals, vault and bot latency, errors; route templates as labels; no value and no
conversation id anywhere in the exposition."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from coatcheck.middleware.gateway.apikeys import Role
from tests.export.gateway_app import GatewayFactory, Harness
from tests.external.loopback import closed_port

CONV = "conv-metrics-7f3a"
EMAIL = "jane.metrics@example.com"
PHONE = "+1 415 555 0199"
CONFIG: dict[str, Any] = {
    "types": {"EMAIL_ADDRESS": {"confirm": True}},
    "actions": {"action_send_mail": ["EMAIL_ADDRESS"]},
    "checks": {"declared": {"email_nonempty": {"type": "EMAIL_ADDRESS", "op": "length", "min": 1}}},
}

Snapshot = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(gw: Harness) -> tuple[str, Snapshot]:
    response = gw.call("GET", "/metrics", Role.MONITOR)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found: Snapshot = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, found


def delta(before: Snapshot, after: Snapshot, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def post(gw: Harness, path: str, body: dict[str, Any], role: Role) -> Any:
    return gw.call("POST", path, role, json=body)


def test_every_door_is_counted_and_no_value_or_id_is_exposed(gateways: GatewayFactory) -> None:
    gw = gateways.build(CONFIG)
    _, before = scrape(gw)
    for _ in range(2):  # the echo bot repeats the references: confirmations reveal them
        [reply] = gw.say(CONV, f"mail {EMAIL} or call {PHONE}")
        assert EMAIL in reply["text"]  # the confirmation door, on the channel leg
    body = {"text": f"mail {EMAIL}", "conversation_id": CONV}
    entity = post(gw, "/v1/redact", body, Role.CHANNEL)
    ref = entity.json()["entities"][0]["ref"]
    cid = gw.cid(CONV)  # the channel speaks the real sender id, every other role its pseudonym
    grant_body = {
        "conversation_id": cid,
        "entity_types": ["EMAIL_ADDRESS"],
        "purpose": "send mail",
        "action": "action_send_mail",
    }
    grant = post(gw, "/v1/grants", grant_body, Role.ACTION_SERVER).json()["grant"]
    reveal = {"conversation_id": cid, "ref": ref, "grant": grant}
    assert post(gw, "/v1/reveal", reveal, Role.ACTION_SERVER).status_code == 200
    foreign = {**reveal, "conversation_id": "another-conversation"}
    assert post(gw, "/v1/reveal", foreign, Role.ACTION_SERVER).status_code == 403
    staff = {"conversation_id": cid, "ref": ref}
    assert post(gw, "/v1/reveal", staff, Role.AGENT).status_code == 200
    check = {"conversation_id": cid, "ref": ref, "check": "email_nonempty"}
    assert post(gw, "/v1/check", check, Role.BOT).status_code == 200
    assert gw.call("GET", f"/v1/conversations/{cid}/history", Role.VIEWER).status_code == 200

    text, after = scrape(gw)
    assert delta(before, after, "coatcheck_messages_total", outcome="forwarded") == 2
    assert delta(before, after, "coatcheck_entities_total", type="EMAIL_ADDRESS") == 3
    assert delta(before, after, "coatcheck_entities_total", type="PHONE_NUMBER") == 2
    assert delta(before, after, "coatcheck_reveals_total", door="confirmation") == 2
    assert delta(before, after, "coatcheck_reveals_total", door="service") == 1
    assert delta(before, after, "coatcheck_reveals_total", door="staff") == 1
    assert delta(before, after, "coatcheck_reveals_total", door="check") == 1
    refused = delta(
        before, after, "coatcheck_refusals_total", door="service", reason="GrantRefused"
    )
    assert refused == 1
    assert delta(before, after, "coatcheck_vault_seconds_count", op="tokenize") == 3
    assert delta(before, after, "coatcheck_vault_seconds_count", op="reveal") == 5
    assert delta(before, after, "coatcheck_vault_seconds_count", op="check") == 1
    assert delta(before, after, "coatcheck_bot_seconds_count") == 2
    history = {"route": "/v1/conversations/{conversation_id}/history", "method": "GET"}
    assert delta(before, after, "coatcheck_http_requests_total", **history, status="200") == 1
    # labels are templates, types, doors and class names: never an id or a value
    for secret in (CONV, cid, "another-conversation", EMAIL, "jane.metrics", "555 0199", "5550199"):
        assert secret not in text


def test_a_bot_that_is_down_counts_as_failed_message_and_error(gateways: GatewayFactory) -> None:
    gw = gateways.build({}, bot_url=f"http://127.0.0.1:{closed_port()}/webhooks/rest/webhook")
    _, before = scrape(gw)
    failed = gw.call(
        "POST", "/webhooks/rest/webhook", Role.CHANNEL, json={"sender": CONV, "message": "hi"}
    )
    assert failed.status_code == 502
    _, after = scrape(gw)
    assert delta(before, after, "coatcheck_messages_total", outcome="failed") == 1
    assert delta(before, after, "coatcheck_errors_total", source="bot") == 1
    assert delta(before, after, "coatcheck_errors_total", source="http") == 1
    assert delta(before, after, "coatcheck_bot_seconds_count") == 1


def test_metrics_take_a_monitor_key(gateways: GatewayFactory) -> None:
    gw = gateways.build({})
    assert gw.call("GET", "/metrics", None).status_code == 401
    assert gw.call("GET", "/metrics", Role.CHANNEL).status_code == 403
    assert gw.call("GET", "/metrics", Role.MONITOR).status_code == 200
    # and a monitor key opens nothing else
    body = {"conversation_id": CONV, "ref": "CC_EMAIL_ADDRESS_0123456789"}
    assert post(gw, "/v1/reveal", body, Role.MONITOR).status_code == 403
