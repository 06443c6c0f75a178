"""Fail closed: when values cannot be stored, the message is refused and the bot sees nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest
from gateway_helpers import Service, StubBot
from sqlalchemy import create_engine, make_url, text

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.vault.db import normalise_url

EMAIL = "jane.doe@example.com"


PG_URL = os.environ.get("COATCHECK_TEST_PG_URL")


def history_rows(service: Service) -> str:
    with service.services.engine.connect() as conn:
        return json.dumps([list(r) for r in conn.execute(text("SELECT * FROM gw_history"))])


def test_vault_write_failure_refuses_message(
    service_factory: Callable[..., Service], stub_bot: StubBot
) -> None:
    service = service_factory(bot_url=stub_bot.url)
    assert service.say("u1", "warm up").status_code == 200
    # A real storage failure on the vault's table only (as a full disk would do):
    with service.services.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER disk_full BEFORE INSERT ON stored_values "
            "BEGIN INSERT INTO no_space_left VALUES (1); END"
        )
    response = service.say("u1", f"mail {EMAIL}")
    assert response.status_code == 503
    assert EMAIL not in response.text
    assert [p["message"] for p in stub_bot.received] == ["warm up"]
    assert EMAIL not in history_rows(service)
    # Storage back: the same message goes through, nothing was lost on the way.
    with service.services.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER disk_full")
    assert service.say("u1", f"mail {EMAIL}").status_code == 200
    assert len(stub_bot.received) == 2


@pytest.mark.postgres
@pytest.mark.parametrize("route", ["webhook", "redact"])
def test_database_gone(
    service_factory: Callable[..., Service], stub_bot: StubBot, pg_database: str, route: str
) -> None:
    service = service_factory(bot_url=stub_bot.url, database_url=pg_database)
    assert service.say("u1", "warm up").status_code == 200
    admin = create_engine(normalise_url(PG_URL or ""), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        name = make_url(pg_database).database
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
    if route == "webhook":
        response = service.say("u1", f"mail {EMAIL}")
    else:
        response = service.client.post(
            "/v1/redact",
            json={"text": f"mail {EMAIL}", "conversation_id": "u1"},
            headers=service.auth(Role.BOT),
        )
    assert response.status_code == 503
    assert response.json()["error"] == "storage_unavailable"
    assert EMAIL not in response.text
    assert [p["message"] for p in stub_bot.received] == ["warm up"]
    health = service.client.get("/health")
    assert (health.status_code, health.json()["error"]) == (503, "storage_unavailable")


def test_history_write_failure_rolls_back_the_values_too(
    service_factory: Callable[..., Service], stub_bot: StubBot
) -> None:
    """The inbound record commits in the vault's transaction: all of it, or none of it."""
    service = service_factory(bot_url=stub_bot.url)
    assert service.say("u1", "warm up").status_code == 200
    with service.services.engine.begin() as conn:
        before = conn.exec_driver_sql("SELECT count(*) FROM stored_values").scalar_one()
        conn.exec_driver_sql(
            "CREATE TRIGGER history_full BEFORE INSERT ON gw_history "
            "BEGIN INSERT INTO no_space_left VALUES (1); END"
        )
    response = service.say("u1", f"mail {EMAIL}")
    assert response.status_code == 503
    assert EMAIL not in response.text
    assert [p["message"] for p in stub_bot.received] == ["warm up"]
    with service.services.engine.begin() as conn:
        after = conn.exec_driver_sql("SELECT count(*) FROM stored_values").scalar_one()
        conn.exec_driver_sql("DROP TRIGGER history_full")
    assert after == before  # the e-mail's value row was rolled back with the history line
    assert service.say("u1", f"mail {EMAIL}").status_code == 200
    assert len(stub_bot.received) == 2
