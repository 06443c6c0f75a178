"""Redactor on the real vault (SQLite and PostgreSQL), and `coatcheck redact` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from coatcheck.middleware.detect import Context
from coatcheck.middleware.pipeline import Redactor
from coatcheck.middleware.render import parse_references
from coatcheck.vault import Vault, VaultError

CONFIG = {
    "types": {
        "CREDIT_CARD": {"display": "mask", "mask": {"first": 0, "last": 4, "symbol": "#"}},
        "EMAIL_ADDRESS": {"confirm": True},
        "PIN": {"display": "replacement", "replacement": "****"},
    },
    "custom_types": [{"name": "ACCOUNT_ID", "regex": r"\bACC-\d{6}\b", "confirm": True}],
}
TEXT = "I'm a.b@example.com, card 4111 1111 1111 1111, acct ACC-123456."


def test_redact_replaces_every_value(vault: Vault) -> None:
    redactor = Redactor.from_yaml(CONFIG, vault)
    result = redactor.redact("conv-1", TEXT)
    for value in ("a.b@example.com", "4111 1111 1111 1111", "ACC-123456"):
        assert value not in result.text
    assert [e.type for e in result.entities] == ["EMAIL_ADDRESS", "CREDIT_CARD", "ACCOUNT_ID"]
    for entity in result.entities:
        info = vault.lookup("conv-1", entity.ref.rsplit("_", 1)[1])
        assert info.entity_type == entity.type
    assert [TEXT[e.start : e.end] for e in result.entities] == [
        "a.b@example.com",
        "4111 1111 1111 1111",
        "ACC-123456",
    ]
    parsed = parse_references(result.text)
    assert [p.reference for p in parsed] == [e.ref for e in result.entities]
    card = result.entities[1]
    assert card.display == "4111_1111_1111_####"


def test_same_value_same_reference(vault: Vault) -> None:
    redactor = Redactor.from_yaml(CONFIG, vault)
    one = redactor.redact("conv-1", "mail a.b@example.com")
    two = redactor.redact("conv-1", "again: a.b@example.com")
    other = redactor.redact("conv-2", "mail a.b@example.com")
    assert one.entities[0].ref == two.entities[0].ref
    assert one.entities[0].ref != other.entities[0].ref


def test_context_and_replacement_display(vault: Vault) -> None:
    redactor = Redactor.from_yaml(CONFIG, vault)
    result = redactor.redact("conv-1", "4821", Context("PIN"))
    [entity] = result.entities
    assert (entity.type, entity.rule, entity.display) == ("PIN", "context", "****")
    assert result.text == f"{entity.ref}(****)"


def test_lookalike_is_defanged_in_the_output(vault: Vault) -> None:
    redactor = Redactor.from_yaml(CONFIG, vault)
    result = redactor.redact("conv-1", "see CC_EMAIL_ADDRESS_7k2m9xq4cw")
    assert result.text == "see CC-EMAIL_ADDRESS_7k2m9xq4cw"
    assert result.entities == []


def test_vault_error_propagates_and_nothing_is_half_done(vault: Vault) -> None:
    redactor = Redactor.from_yaml(CONFIG, vault)
    with pytest.raises(VaultError) as info:
        redactor.redact("", TEXT)
    assert "example" not in str(info.value)


def test_gateway_settings(vault: Vault) -> None:
    redactor = Redactor.from_yaml(CONFIG, vault)
    assert redactor.confirm_types() == frozenset({"EMAIL_ADDRESS", "ACCOUNT_ID"})
    assert redactor.settings_for("PIN").replacement == "****"


def test_cli_redact_json_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"text": "mail a.b@example.com", "conversation_id": "c1"}),
        "{not json: a.b@example.com",
        json.dumps({"text": "4821", "context": {"expect": "PIN"}}),
        json.dumps({"text": "x", "context": {"expect": "NOPE"}}),
        json.dumps({"text": "x", "a.b@example.com": 1}),
    ]
    env = dict(os.environ)
    env.pop("COATCHECK_MASTER_KEY", None)
    env.pop("COATCHECK_DATABASE_URL", None)
    env["COATCHECK_KEY_FILE"] = str(tmp_path / "k.key")
    env["COATCHECK_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cc.db'}"
    proc = subprocess.run(
        [sys.executable, "-c", "from coatcheck.middleware.cli import main; main()", "redact"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-500:]
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == 5
    assert out[0]["entities"][0]["type"] == "EMAIL_ADDRESS"
    assert "a.b@example.com" not in proc.stdout
    assert out[1]["error"] == "invalid_input" and out[1]["line"] == 2
    assert out[2]["entities"][0]["type"] == "PIN"
    assert out[3] == {"error": "invalid_context", "line": 4, "message": out[3]["message"]}
    assert "NOPE" in out[3]["message"]
    assert out[4] == {"error": "invalid_input", "line": 5, "message": "unknown field"}


VALUES = [
    "4111 1111 1111 1111",
    "a.b@example.com",
    "DE89 3704 0044 0532 0130 00",
    "(212) 456-7890",
    "192.168.10.1",
    "123-45-6780",
    "ACC-123456",
]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from([" hi ", " and ", ", then ", "\n"]), st.sampled_from(VALUES)),
        min_size=1,
        max_size=4,
    ),
    st.text(alphabet="CC_ABc(x) ", max_size=12),
)
@example(parts=[(" hi ", "4111 1111 1111 1111")], noise="AB C")  # noise read as a name
def test_property_no_value_survives_redaction(
    vault: Vault, parts: list[tuple[str, str]], noise: str
) -> None:
    redactor = Redactor.from_yaml(CONFIG, vault)
    text = noise + "".join(a + b for a, b in parts)
    result = redactor.redact("conv-prop", text)
    for _, value in parts:
        assert value not in result.text
    assert len(parse_references(result.text)) == len(result.entities)
    # the noise itself may read as a name ("AB C" before "hi"): every value, and only
    # names besides them
    assert len([e for e in result.entities if e.type != "PERSON"]) == len(parts)
    assert all(e.start < len(noise) for e in result.entities if e.type == "PERSON")
