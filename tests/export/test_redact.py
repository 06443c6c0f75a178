"""apply_export_config on nested records: allow, deny, mandatory fields, default, lists."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from coatcheck.middleware.export import (
    MANDATORY_FIELDS,
    ConversationRecord,
    ExportConfig,
    apply_export_config,
)

RECORD: dict[str, Any] = {
    "conversation_id": "c-1",
    "tenant": "acme",
    "started_at": "2026-11-24T10:00:00Z",
    "ended_at": "2026-11-24T10:05:00Z",
    "status": "ended",
    "channel": "web",
    "turns": [
        {
            "direction": "user",
            "text": "mail CC_EMAIL_ADDRESS_7k2m9xq4cw",
            "entities": [{"type": "EMAIL_ADDRESS", "ref": "CC_EMAIL_ADDRESS_7k2m9xq4cw"}],
            "at": "2026-11-24T10:00:01Z",
        },
        {"direction": "bot", "text": "thanks", "entities": [], "at": "2026-11-24T10:00:02Z"},
    ],
    "metrics": {"latency_ms": {"p50": 12, "p99": 80}, "turns": 2},
}
MANDATORY = {"conversation_id": "c-1", "tenant": "acme", "ended_at": "2026-11-24T10:05:00Z"}
TURNS_NO_TEXT = [{k: v for k, v in turn.items() if k != "text"} for turn in RECORD["turns"]]

CASES: list[tuple[str, dict[str, Any] | None, dict[str, Any]]] = [
    ("default is mandatory only", None, MANDATORY),
    ("empty allow is mandatory only", {"type": "allow", "fields": []}, MANDATORY),
    (
        "allow top-level field",
        {"type": "allow", "fields": ["status"]},
        {**MANDATORY, "status": "ended"},
    ),
    (
        "allow without mandatory still keeps them",
        {"type": "allow", "fields": ["channel"]},
        {**MANDATORY, "channel": "web"},
    ),
    (
        "allow nested dict path",
        {"type": "allow", "fields": ["metrics.latency_ms.p99"]},
        {**MANDATORY, "metrics": {"latency_ms": {"p99": 80}}},
    ),
    (
        "allow path through a list",
        {"type": "allow", "fields": ["turns.direction"]},
        {**MANDATORY, "turns": [{"direction": "user"}, {"direction": "bot"}]},
    ),
    (
        "allow through nested lists",
        {"type": "allow", "fields": ["turns.entities.type"]},
        {**MANDATORY, "turns": [{"entities": [{"type": "EMAIL_ADDRESS"}]}, {"entities": []}]},
    ),
    (
        "shorter allow path swallows a longer one",
        {"type": "allow", "fields": ["metrics.turns", "metrics"]},
        {**MANDATORY, "metrics": RECORD["metrics"]},
    ),
    ("allow missing path: no match", {"type": "allow", "fields": ["nope.deeper"]}, MANDATORY),
    (
        "allow path below a scalar: no match",
        {"type": "allow", "fields": ["status.code"]},
        MANDATORY,
    ),
    (
        "deny nothing keeps everything",
        {"type": "deny", "fields": []},
        RECORD,
    ),
    (
        "deny a list element field",
        {"type": "deny", "fields": ["turns.text"]},
        {**RECORD, "turns": TURNS_NO_TEXT},
    ),
    (
        "deny nested dict path",
        {"type": "deny", "fields": ["metrics.latency_ms"]},
        {**RECORD, "metrics": {"turns": 2}},
    ),
    ("deny missing path: no match", {"type": "deny", "fields": ["nope", "turns.nope"]}, RECORD),
]


@pytest.mark.parametrize(("name", "config", "expected"), CASES, ids=[c[0] for c in CASES])
def test_apply_export_config(
    name: str, config: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    before = copy.deepcopy(RECORD)
    cfg = ExportConfig.model_validate(config) if config is not None else None
    out = apply_export_config(RECORD, cfg)
    assert out == expected
    assert before == RECORD  # never mutates input


def test_output_shares_no_objects_with_input() -> None:
    out = apply_export_config(RECORD, ExportConfig(type="allow", fields=("turns",)))
    out["turns"][0]["entities"].clear()
    assert RECORD["turns"][0]["entities"]
    out = apply_export_config(RECORD, ExportConfig(type="deny", fields=("status",)))
    out["metrics"]["latency_ms"]["p50"] = 0
    assert RECORD["metrics"]["latency_ms"]["p50"] == 12


@pytest.mark.parametrize("field", [*sorted(MANDATORY_FIELDS), "tenant.name"])
def test_deny_of_mandatory_field_is_rejected(field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ExportConfig.model_validate({"type": "deny", "fields": ["status", field]})
    assert "mandatory" in str(info.value)
    assert "fields[1]" in str(info.value)  # the position, and the mandatory field's name
    assert repr(field.split(".")[0]) in str(info.value)


BAD_CONFIGS: list[tuple[dict[str, Any], str]] = [
    ({"type": "allow", "fields": ["turns[0].text"]}, "not supported"),
    ({"type": "allow", "fields": ["turns..text"]}, "invalid path"),
    ({"type": "allow", "fields": [""]}, "invalid path"),
    ({"type": "redact", "fields": []}, "type"),
    ({"type": "allow", "fields": ["a"], "extra": 1}, "extra"),
    ({"fields": ["a"]}, "type"),
]


@pytest.mark.parametrize(("data", "needle"), BAD_CONFIGS)
def test_bad_configs_name_the_problem(data: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        ExportConfig.model_validate(data)
    assert needle in str(info.value)


def test_valid_config_accepts_plain_paths() -> None:
    cfg = ExportConfig.model_validate({"type": "deny", "fields": ["turns.text", "metrics"]})
    assert cfg.fields == ("turns.text", "metrics")


def test_record_model_dump_feeds_the_filter() -> None:
    record = ConversationRecord.model_validate(RECORD)
    out = apply_export_config(record.model_dump(mode="json"), None)
    assert set(out) == MANDATORY_FIELDS
    assert out["tenant"] == "acme"
