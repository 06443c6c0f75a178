"""The request walker: every string that goes up is collected, structure is not, bad shapes
are 400s that name the parameter and never the value."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coatcheck.middleware.llm import InvalidRequest, plan_request

VALUE = "jane.doe@example.com"


def _body() -> dict[str, Any]:
    return {
        "model": "gpt-test",
        "stream": True,
        "temperature": 0.2,
        "user": "end-user-7",
        "messages": [
            {"role": "system", "content": f"system {VALUE}"},
            {
                "role": "user",
                "name": f"name {VALUE}",
                "content": [{"type": "text", "text": f"part {VALUE}"}],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "send_mail",
                            "arguments": json.dumps({"to": VALUE, "n": 4111111111111111}),
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": f"result {VALUE}"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": f"refusal {VALUE}"}]},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "send_mail",
                    "description": f"description {VALUE}",
                    "parameters": {
                        "type": "object",
                        "properties": {"to": {"type": "string", "description": f"param {VALUE}"}},
                    },
                },
            }
        ],
        "metadata": {"note": f"metadata {VALUE}"},
        "session_note": f"unknown {VALUE}",
        "stop": [f"stop {VALUE}"],
    }


def test_every_string_that_goes_up_is_collected_and_nothing_else() -> None:
    plan = plan_request(_body())
    carrying = {path for path, text in zip(plan.paths, plan.texts, strict=True) if VALUE in text}
    assert carrying == {
        "messages[0].content",
        "messages[1].name",
        "messages[1].content[0].text",
        "messages[2].tool_calls[0].function.arguments.to",
        "messages[3].content",
        "messages[4].content[0].refusal",
        "tools[0].function.description",
        "tools[0].function.parameters.properties.to.description",
        "metadata.note",
        "session_note",
        "stop[0]",
    }
    assert "4111111111111111" in plan.texts  # a number inside arguments is collected too
    assert (
        "gpt-test" not in plan.texts
        and "send_mail" not in plan.texts
        and "call_1" not in plan.texts
    )
    assert plan.stream and plan.user == "end-user-7" and plan.model == "gpt-test"


def test_fill_puts_redacted_strings_back_and_keeps_json_valid() -> None:
    plan = plan_request(_body())
    redacted = [
        t.replace(VALUE, "[EMAIL_1]").replace("4111111111111111", "[CARD_1]") for t in plan.texts
    ]
    body = plan.fill(redacted)
    assert VALUE not in json.dumps(body) and "4111111111111111" not in json.dumps(body)
    assert "user" not in body  # the end-user id does not go up
    arguments = json.loads(body["messages"][2]["tool_calls"][0]["function"]["arguments"])
    assert arguments == {"to": "[EMAIL_1]", "n": "[CARD_1]"}
    assert body["temperature"] == 0.2 and body["tools"][0]["function"]["name"] == "send_mail"
    untouched = plan.fill(plan.texts)
    assert (
        json.loads(untouched["messages"][2]["tool_calls"][0]["function"]["arguments"])["n"]
        == 4111111111111111
    )


def test_arguments_that_are_not_json_are_redacted_as_text() -> None:
    body = _body()
    body["messages"][2]["tool_calls"][0]["function"]["arguments"] = f'{{"to": "{VALUE}"'
    plan = plan_request(body)
    assert f'{{"to": "{VALUE}"' in plan.texts


@pytest.mark.parametrize(
    ("mutate", "param", "code"),
    [
        (lambda b: b.pop("model"), "model", "invalid_model"),
        (lambda b: b.update(messages=[]), "messages", "invalid_messages"),
        (lambda b: b.update(stream=VALUE), "stream", "invalid_type"),
        (lambda b: b["messages"][0].update(role=VALUE), "messages[0].role", "invalid_role"),
        (
            lambda b: b["messages"][1].update(
                content=[{"type": "image_url", "image_url": {"url": VALUE}}]
            ),
            "messages[1].content[0].type",
            "unsupported_content",
        ),
        (
            lambda b: b["messages"][1].update(content=[{"type": VALUE}]),
            "messages[1].content[0].type",
            "unsupported_content",
        ),
        (lambda b: b["messages"][1].update(content=7), "messages[1].content", "invalid_content"),
        (
            lambda b: b.update(tools=[{"type": "function", "function": {"description": VALUE}}]),
            "tools[0]",
            "invalid_tools",
        ),
    ],
)
def test_bad_shapes_are_400_naming_the_parameter_never_the_value(
    mutate: Any, param: str, code: str
) -> None:
    body = _body()
    mutate(body)
    with pytest.raises(InvalidRequest) as caught:
        plan_request(body)
    error = caught.value
    assert error.status == 400
    assert error.body()["error"]["param"] == param and error.body()["error"]["code"] == code
    assert VALUE not in json.dumps(error.body())


def test_depth_is_bounded() -> None:
    deep: Any = "x"
    for _ in range(200):
        deep = {"k": deep}
    with pytest.raises(InvalidRequest, match="nested too deeply"):
        plan_request({"model": "m", "messages": [{"role": "user", "content": "hi"}], "extra": deep})
    with pytest.raises(InvalidRequest, match="JSON object"):
        plan_request([VALUE])
