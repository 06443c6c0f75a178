"""A person's data on request: pseudonyms, erasure (final per provider) and export, through
the vault and the admin routes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.render import parse_references
from coatcheck.vault import (
    PSEUDONYM_RE,
    ConversationShredded,
    Grant,
    Policies,
    Retention,
    ValueState,
)
from coatcheck.vault._keks import YOUNG_KEK_SECONDS
from coatcheck.vault.keys import KeyProvider, ProviderUnavailable
from tests.atrest.conftest import VaultFactory
from tests.conftest import FakeClock
from tests.harness import open_gateway
from tests.service.gateway_helpers import Service, make_settings

SENDER = "+14155550123"


def _grant(conversation_id: str, clock: FakeClock, *types: str) -> Grant:
    return Grant(conversation_id, frozenset(types or {"EMAIL"}), "p", "test", clock.now + 30)


def test_pseudonyms_are_keyed_stable_and_shaped_apart_from_ids(
    db_url: str, make_vault: VaultFactory, file_provider: KeyProvider
) -> None:
    vault = make_vault(db_url, file_provider)
    pseudonym = vault.pseudonym(SENDER)
    assert PSEUDONYM_RE.fullmatch(pseudonym) and len(pseudonym) == 28
    assert SENDER not in pseudonym and "5550123" not in pseudonym
    assert make_vault(db_url, file_provider).pseudonym(SENDER) == pseudonym  # another worker
    assert vault.pseudonym(SENDER + "4") != pseudonym
    assert make_vault(db_url, file_provider, tenant="t2").pseudonym(SENDER) != pseudonym


@pytest.mark.parametrize("kind", ["file", "pkcs11"])
def test_erase_shreds_every_conversation_of_the_person_and_destroys_their_keks(
    kind: str,
    request: pytest.FixtureRequest,
    db_url: str,
    make_vault: VaultFactory,
    copy_database: Callable[[str], str],
    clock: FakeClock,
) -> None:
    provider: KeyProvider = request.getfixturevalue(
        f"{'token' if kind == 'pkcs11' else 'file'}_provider"
    )
    vault = make_vault(db_url, provider)
    pseudonym = vault.pseudonym(SENDER)
    new = vault.tokenize(pseudonym, "EMAIL", "jane@example.org")
    legacy = vault.tokenize(SENDER, "PHONE", SENDER)  # stored under the raw id (legacy edge)
    other = vault.tokenize("someone-else", "EMAIL", "other@example.org")
    backup = copy_database(db_url)

    done = vault.subject_erase(SENDER, "admin")

    assert (done.conversations, done.epochs) == (2, 2)
    assert done.keks_destroyed >= 1 and done.final is (kind == "pkcs11")
    with pytest.raises(ConversationShredded):
        vault.reveal(pseudonym, new, _grant(pseudonym, clock))
    with pytest.raises(ConversationShredded):
        vault.reveal(SENDER, legacy, _grant(SENDER, clock, "PHONE"))
    # Someone else under the same (now destroyed) KEK moved to its next generation first.
    assert vault.reveal("someone-else", other, _grant("someone-else", clock)) == "other@example.org"
    summary = vault.audit_rows(action="subject_erase")[0]
    assert summary.conversation_id == pseudonym and summary.purpose == "2 conversations"

    restored = make_vault(backup, provider)  # a copy from before the erasure
    if kind == "pkcs11":  # final at once: its KEK is gone from the token, no bucket to wait for
        # A KEK row younger than YOUNG_KEK_SECONDS whose key the token lacks is not taken
        # for destroyed (SoftHSM2 may not show another process's new object yet): the copy
        # answers "unavailable" meanwhile, and "shredded" after; it opens nothing either way.
        with pytest.raises(ProviderUnavailable):
            restored.reveal(pseudonym, new, _grant(pseudonym, clock))
        clock.now += YOUNG_KEK_SECONDS
        with pytest.raises(ConversationShredded):
            restored.reveal(pseudonym, new, _grant(pseudonym, clock))
    else:  # the host bound: an older copy with the key file still opens (docs/keys.md)
        assert restored.reveal(pseudonym, new, _grant(pseudonym, clock)) == "jane@example.org"


def test_export_hands_back_that_persons_values_only_each_audited(
    db_url: str, make_vault: VaultFactory, file_provider: KeyProvider, clock: FakeClock
) -> None:
    policies = Policies(retention={"EMAIL": Retention("mask")})
    vault = make_vault(db_url, file_provider, policies=policies)
    pseudonym = vault.pseudonym(SENDER)
    vault.tokenize_many(pseudonym, [("EMAIL", "jane@example.org"), ("CARD", "4111111111111111")])
    vault.end(pseudonym, "bot", "api")  # EMAIL kept masked, CARD shredded
    vault.tokenize(pseudonym, "PHONE", SENDER)  # a new session
    vault.tokenize(SENDER, "EMAIL", "legacy@example.org")
    vault.tokenize("someone-else", "EMAIL", "other@example.org")

    values = vault.subject_export(SENDER, "admin")

    found = {(v.conversation_id, v.entity_type, v.value, v.status) for v in values}
    assert found == {
        (pseudonym, "EMAIL", "jane@example.org", "masked"),
        (pseudonym, "PHONE", SENDER, None),
        (SENDER, "EMAIL", "legacy@example.org", None),
    }
    rows = vault.audit_rows(action="subject_export")
    assert len(rows) == 4 and rows[0].conversation_id == pseudonym  # 3 values, 1 summary
    assert {r.ref for r in rows[1:]} == {v.ref for v in values}
    assert all(r.purpose == "subject_access" for r in rows[1:])
    assert all("@" not in (r.purpose or "") for r in rows)  # no value in the trail
    masked_only = vault.reveal_for(
        pseudonym,
        next(v.ref for v in values if v.status == "masked"),
        actor="auditor",
        purpose="reporting",
        policy=lambda state: None if isinstance(state, ValueState) else "no",
    )
    assert masked_only == "jane@example.org"


def test_admin_routes_erase_and_export(tmp_path: Path) -> None:
    client, keys, clock = open_gateway(make_settings(tmp_path))
    service = Service(client, keys, clock)
    try:
        pseudonym = service.services.vault.pseudonym(SENDER)
        answer = service.say(SENDER, "mail me at jane@example.org")  # keyed by the pseudonym
        [ref] = parse_references(answer.json()[0]["text"])
        body = {"sender": SENDER}
        export = client.post("/v1/subjects/export", json=body, headers=service.auth(Role.ADMIN))
        assert export.status_code == 200 and export.headers["cache-control"] == "no-store"
        doc = export.json()
        assert doc["subject"] == pseudonym
        values = sorted((v["type"], v["ref"], v["value"]) for v in doc["values"])
        [(_, sender_ref, _)] = [v for v in values if v[0] == "SENDER_ID"]
        assert values == [  # their own sender id is theirs too (vaulted as SENDER_ID)
            ("EMAIL_ADDRESS", ref.ref_id, "jane@example.org"),
            ("SENDER_ID", sender_ref, SENDER),
        ]
        refused = client.post("/v1/subjects/erase", json=body, headers=service.auth(Role.AUDITOR))
        assert refused.status_code == 403 and SENDER not in refused.text
        erased = client.post("/v1/subjects/erase", json=body, headers=service.auth(Role.ADMIN))
        assert erased.status_code == 200, erased.text
        assert erased.json() == {
            "subject": pseudonym,
            "conversations": 1,
            "shredded_epochs": 1,
            "keks_destroyed": 1,
            "final": False,  # the key file: final for the live database only
            "gateway": {"history_lines": 2, "states": 1, "rate_rows": 1},
        }
        reveal = {"conversation_id": pseudonym, "ref": ref.reference, "purpose": "check"}
        gone = client.post("/v1/reveal", json=reveal, headers=service.auth(Role.AUDITOR))
        assert gone.status_code == 410
        again = client.post("/v1/subjects/export", json=body, headers=service.auth(Role.ADMIN))
        assert again.json()["values"] == []
    finally:
        client.__exit__(None, None, None)


def _gateway_rows(engine: Engine, conversation_id: str) -> dict[str, int]:
    """How many rows of each gateway table are keyed by `conversation_id`."""
    keyed = {
        "gw_history": "conversation_id",
        "gw_conversation_state": "conversation_id",
        "gw_rate_counters": "sender",
    }
    with engine.connect() as conn:
        return {
            table: conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE {column} = :id"), {"id": conversation_id}
            ).scalar_one()
            for table, column in keyed.items()
        }


def _legacy_rows(service: Service, sender: str) -> None:
    """A conversation stored under the raw sender id, as the edge wrote it before
    pseudonyms: a vaulted value (bot-side redact), two history lines, a state row and a
    rate counter."""
    done = service.client.post(
        "/v1/redact",
        json={"text": "mail me at jane@example.org", "conversation_id": sender},
        headers=service.auth(Role.BOT),
    )
    assert done.status_code == 200
    now = service.clock.now
    with service.services.store.transaction() as tx:
        for direction in ("in", "out"):
            tx.execute(
                text(
                    "INSERT INTO gw_history (conversation_id, direction, text, created_at) "
                    "VALUES (:c, :d, 'x', :at)"
                ),
                {"c": sender, "d": direction, "at": now},
            )
        tx.execute(
            text(
                "INSERT INTO gw_conversation_state (conversation_id, updated_at, status, "
                "started_at, last_activity) VALUES (:c, :at, 'active', :at, :at)"
            ),
            {"c": sender, "at": now},
        )
        tx.execute(
            text("INSERT INTO gw_rate_counters (sender, window_start, count) VALUES (:c, 0, 1)"),
            {"c": sender},
        )


def test_erase_removes_the_gateway_rows_of_the_person_under_both_ids(tmp_path: Path) -> None:
    """The conversation id is personal (here a phone number): after an erasure no history
    line, state row or rate counter of the person is left in the gateway's tables, whether
    the edge stored the raw id or the pseudonym; someone else's stay; the summary audit row
    (under the pseudonym) counts what went."""
    client, keys, clock = open_gateway(make_settings(tmp_path))
    service = Service(client, keys, clock)
    try:
        services = service.services
        pseudonym = services.vault.pseudonym(SENDER)
        for sender in (SENDER, "someone-else"):  # the edge keys both by pseudonym
            assert service.say(sender, "mail me at jane@example.org").status_code == 200
        assert service.say(SENDER, "and again").status_code == 200
        _legacy_rows(service, SENDER)  # what the edge wrote under the raw id before pseudonyms
        history = f"/v1/conversations/{pseudonym}/history"
        assert len(client.get(history, headers=service.auth(Role.AUDITOR)).json()["messages"]) == 4
        other = service.cid("someone-else")

        erased = client.post(
            "/v1/subjects/erase", json={"sender": SENDER}, headers=service.auth(Role.ADMIN)
        )

        assert erased.status_code == 200, erased.text
        done = erased.json()
        assert (done["conversations"], done["shredded_epochs"]) == (2, 2)
        for gone in (SENDER, pseudonym):
            assert _gateway_rows(services.engine, gone) == {
                "gw_history": 0,
                "gw_conversation_state": 0,
                "gw_rate_counters": 0,
            }
            lines = client.get(
                f"/v1/conversations/{gone}/history", headers=service.auth(Role.AUDITOR)
            )
            assert lines.status_code == 200 and lines.json()["messages"] == []
        assert done["gateway"] == {"history_lines": 6, "states": 2, "rate_rows": 2}
        assert _gateway_rows(services.engine, other) == {
            "gw_history": 2,
            "gw_conversation_state": 1,
            "gw_rate_counters": 1,
        }
        listed = {c["conversation_id"] for c in services.records.list_conversations()}
        assert listed == {other}
        # Newest first: the summary, then the shred of the pseudonymous conversation.
        summary, shred = services.vault.audit_rows(
            action="subject_erase", conversation_id=pseudonym
        )
        assert shred.purpose is None and shred.id < summary.id
        assert summary.purpose == (
            "2 conversations; gateway: 6 history lines, 2 states, 2 rate rows"
        )
        assert summary.actor.startswith("admin:key:")
        assert not any(SENDER in (r.purpose or "") for r in services.vault.audit_rows())
        # The person writes again: a new conversation, nothing of the old one comes back.
        assert service.say(SENDER, "hello again").status_code == 200
        lines = client.get(history, headers=service.auth(Role.AUDITOR)).json()["messages"]
        assert [line["direction"] for line in lines] == ["in", "out"]
    finally:
        client.__exit__(None, None, None)
