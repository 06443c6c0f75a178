"""Issue 19, finding 10: the audit view only for the roles that need it, and a misused
grant audited under the key that presented it.

Against a running gateway (uvicorn on loopback), signing in through the log viewer's
form like a user.  On the code before, every staff role (viewer included) opened the
whole audit view, and a grant used on the wrong conversation or type was audited under
the grant's action name, not the presenting key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from coatcheck.middleware.gateway.apikeys import Role
from tests.edges.live import Live, live_gateway

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
ACTION = "action_send_mail"


@contextmanager
def signed_in(live: Live, role: Role) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        form = client.get("/ui/login")
        token = CSRF_RE.search(form.text)
        assert token is not None
        done = client.post("/ui/login", data={"api_key": live.keys[role], "csrf": token.group(1)})
        assert done.status_code == 303, done.text
        yield client


@pytest.mark.parametrize(
    ("audit_roles", "opens"),
    [
        (None, {Role.AUDITOR, Role.ADMIN}),  # the default
        (["viewer"], {Role.VIEWER, Role.ADMIN}),  # configured: admin always may
        (["agent", "auditor"], {Role.AGENT, Role.AUDITOR, Role.ADMIN}),
    ],
)
def test_the_audit_view_opens_only_for_its_roles(
    tmp_path: Path, audit_roles: list[str] | None, opens: set[Role]
) -> None:
    config: dict[str, Any] = {} if audit_roles is None else {"ui": {"audit_roles": audit_roles}}
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    with live_gateway(tmp_path, db_url=db, config=config) as live:
        live.say("audited", "mail audited@example.com")
        for role in (Role.VIEWER, Role.AGENT, Role.AUDITOR, Role.ADMIN):
            with signed_in(live, role) as client:
                page = client.get("/ui/audit", params={"conversation": "audited"})
                listing = client.get("/ui/")
                assert page.status_code == (200 if role in opens else 403), role
                assert ('href="/ui/audit"' in listing.text) is (role in opens), role
                if role not in opens:
                    assert 'id="audit"' not in page.text  # no table, no rows


def test_an_unknown_audit_role_is_refused_at_start(tmp_path: Path) -> None:
    from coatcheck.middleware.app import create_app
    from coatcheck.middleware.settings import Settings

    path = tmp_path / "bad.yml"
    path.write_text("ui:\n  audit_roles: [channel]\n", encoding="utf-8")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", config=path)
    with pytest.raises(ValueError, match=r"COATCHECK_CONFIG: ui\.audit_roles"):
        create_app(settings)


def _planted(live: Live, sender: str, mail: str) -> str:
    answer = live.say(sender, f"mail {mail}")
    assert answer.status_code == 200
    history = live.services.store.messages.history(live.cid(sender))
    ref = re.search(r"CC_EMAIL_ADDRESS_[0-9a-z]{10}", history[0]["text"])
    assert ref is not None
    return ref.group(0)


def _grant(live: Live, cid: str, types: list[str]) -> str:
    body = {"conversation_id": cid, "entity_types": types, "purpose": "p", "action": ACTION}
    answer = live.call("POST", "/v1/grants", Role.ACTION_SERVER, json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["grant"])


@pytest.mark.parametrize(
    ("grant_for", "types", "reveal_in", "outcome", "status"),
    [
        ("conv-a", ["EMAIL_ADDRESS"], "conv-b", "refused", 403),
        ("conv-b", ["PHONE_NUMBER"], "conv-b", "refused", 403),
        ("conv-b", ["EMAIL_ADDRESS"], "conv-b", "ok", 200),  # no match: audited as before
    ],
)
def test_a_misused_grant_is_audited_under_the_presenting_key(
    tmp_path: Path, grant_for: str, types: list[str], reveal_in: str, outcome: str, status: int
) -> None:
    config = {
        "actions": {ACTION: ["EMAIL_ADDRESS", "PHONE_NUMBER"]},
        "types": {"EMAIL_ADDRESS": {"confirm": False}},
    }
    db = f"sqlite:///{tmp_path / 'grants.db'}"
    with live_gateway(tmp_path, db_url=db, config=config) as live:
        _planted(live, "conv-a", "ann.grant@example.com")
        ref_b = _planted(live, "conv-b", "bob.grant@example.com")
        grant = _grant(live, live.cid(grant_for), types)
        presenter = live.new_key(Role.ACTION_SERVER)
        answer = live.http.post(
            "/v1/reveal",
            json={"conversation_id": live.cid(reveal_in), "ref": ref_b, "grant": grant},
            headers={"Authorization": f"Bearer {presenter}"},
        )
        assert answer.status_code == status, answer.text
        assert (status == 200) is ("bob.grant@example.com" in answer.text)
        rows = live.services.vault.audit_rows(conversation_id=live.cid(reveal_in), action="reveal")
        [row] = rows
    assert row.outcome == outcome
    prefix = presenter.split("_")[1]
    expected = ACTION if outcome == "ok" else f"action-server:key:{prefix}"
    assert row.actor == expected
