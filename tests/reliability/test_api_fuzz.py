"""schemathesis against the service's own OpenAPI: every operation, authenticated.

Each operation is fuzzed with positive and negative cases (bounded examples, no deadline),
once with an admin key and once with a key of a role the route allows. Promises checked:
no 5xx; no error body repeats any string the request carried (8+ characters); and, with
every string of a valid request replaced by canary PII, no response (error or not) carries
a canary in raw form.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rel_support import EXPECT, PUBLIC, App, running_app, running_bot
from schemathesis.generation import GenerationMode

from coatcheck.middleware.app import create_app
from coatcheck.middleware.gateway.apikeys import Role
from tests.harness import threaded
from tests.llm.fake_upstream import Answer, FakeUpstream

EXAMPLES = 20
SCHEMA = schemathesis.openapi.from_dict(create_app().openapi())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


def _has_inputs(op: Any) -> bool:
    return bool(len(op.body) or len(op.path_parameters) or len(op.query) or len(op.headers))


# negative cases need something to break: an operation with no inputs gets positive only
FUZZ_CASES = [
    pytest.param(op, mode, id=f"{op.method}:{op.path}-{mode.value}")
    for op in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or _has_inputs(op)
]
CANARIES = [
    "zq.canary.fuzz@example.com",
    "+1 415 555 0179",
    "4111 1111 1111 1111",
    "078-05-1120",
    "DE89 3704 0044 0532 0130 00",
]
CANARY_TEXT = "hello " + " and ".join(CANARIES)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    path: Path = tmp_path_factory.mktemp("fuzz")
    # the LLM routes get a model provider that answers every chat with the same text
    model = FakeUpstream(answer=lambda _body: Answer(content="noted"))
    with (
        running_bot() as bot,
        threaded(model.app()) as upstream,
        running_app(path, bot.url, llm_upstream_url=upstream + "/v1") as app,
    ):
        # something real to aim at: a conversation holding values
        for text in ("mail zq.canary.fuzz@example.com", "card 4111 1111 1111 1111"):
            response = app.client.post(
                "/webhooks/rest/webhook",
                json={"sender": "u1", "message": text},
                headers=app.auth(Role.CHANNEL),
            )
            assert response.status_code == 200
        yield app


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():  # values only: field names are named in errors on purpose
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def _role_for(method: str, path: str) -> Role:
    allowed = EXPECT[(method.upper(), path)]
    if allowed == PUBLIC:
        return Role.ADMIN
    assert isinstance(allowed, frozenset)
    return sorted(allowed)[0] if allowed else Role.ADMIN  # empty: admin only


def _send(app: App, kwargs: dict[str, Any], role: Role) -> Any:
    headers = {
        k: v
        for k, v in kwargs.get("headers", {}).items()
        if k.lower() in ("content-type", "accept")
    }
    headers["Authorization"] = f"Bearer {app.keys[role]}"
    url = kwargs["url"].removeprefix("http://testserver")
    extra: dict[str, Any] = {}
    if "json" in kwargs:
        extra["json"] = kwargs["json"]
    elif "data" in kwargs:
        extra["content"] = kwargs["data"]
    return app.client.request(
        kwargs["method"], url, headers=headers, params=kwargs.get("params") or None, **extra
    )


def _check(response: Any, sent: list[str], where: str) -> None:
    assert response.status_code < 500, (where, response.status_code, response.text)
    if response.status_code < 400:
        return
    body = response.json()
    error = body.get("error")
    if isinstance(error, dict):  # OpenAI's shape, on /openai/ (docs/llm.md)
        assert set(error) == {"message", "type", "param", "code"}, (where, body)
        message = str(error["message"])
    else:
        assert set(body) == {"error", "message"}, (where, body)
        message = body["message"]
    echoed = [s for s in sent if len(s) >= 8 and s in message]
    assert not echoed, (where, echoed, body)


@pytest.mark.parametrize(("operation", "mode"), FUZZ_CASES)
def test_fuzz_operation(live: App, operation: Any, mode: GenerationMode) -> None:
    role = _role_for(operation.method, operation.path)
    seen: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), admin=st.booleans())
    def run(case: Any, admin: bool) -> None:
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        sent = list(_strings(kwargs.get("json"))) + list(_strings(case.path_parameters))
        sent += list(_strings(kwargs.get("params")))
        response = _send(live, kwargs, Role.ADMIN if admin else role)
        seen.append(response.status_code)
        _check(response, sent, f"{operation.method} {operation.path}")

    run()
    assert seen, "hypothesis generated no case"


# identifiers are not scanned for PII by design (the Rasa sender is the conversation id and
# comes back as `recipient_id`); they are left as generated. `type` names an entity type
# (temporary values) or `allow`/`deny` (export config): a canary there only tests the 422.
IDENTIFIERS = frozenset({"sender", "conversation_id", "type"})
# Routes whose 200 answer is a person's own values (docs/keys.md, "A person's data").
VALUE_DOORS = frozenset({"/v1/subjects/export"})


def _canaried(value: Any) -> Any:
    if isinstance(value, str):
        return CANARY_TEXT
    if isinstance(value, dict):
        return {k: v if k in IDENTIFIERS else _canaried(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canaried(v) for v in value]
    return value


def _raw_forms(text: str) -> list[str]:
    forms = []
    for canary in CANARIES:
        forms.append(canary.lower())
        digits = "".join(c for c in canary if c.isdigit())
        if len(digits) >= 9:
            forms.append(digits)
    lowered = text.lower()
    return [f for f in forms if f in lowered or f in "".join(c for c in lowered if c.isdigit())]


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method}:{op.path}")
def test_canaries_never_come_back(live: App, operation: Any) -> None:
    """Every string of schema-valid requests becomes canary PII; no response returns it."""
    bodies: list[Any] = []

    @settings(max_examples=5, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def run(case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        if "json" in kwargs:
            kwargs["json"] = _canaried(kwargs["json"])
        for role in {Role.ADMIN, _role_for(operation.method, operation.path)}:
            response = _send(live, kwargs, role)
            assert response.status_code < 500, response.text
            if operation.path in VALUE_DOORS and response.status_code == 200:
                # a person's own values, by design (an admin's access request): when the
                # fuzzer happens to ask for a sender it used before, the canaries it sent
                # as that sender come back; the answer must not be cached
                assert response.headers["cache-control"] == "no-store"
                bodies.append(response.status_code)
                continue
            text = response.text  # /metrics answers in Prometheus' text format
            if response.headers.get("content-type", "").startswith("application/json"):
                text = json.dumps(response.json(), ensure_ascii=False)
            found = _raw_forms(text)
            assert not found, (operation.method, operation.path, role, found)
            bodies.append(response.status_code)

    run()
    assert bodies
