"""The log viewer's queries and reveal path on PostgreSQL (live server, own schema)."""

from __future__ import annotations

import pytest
from ui_live import CANARIES, CANARY_EMAIL, CSRF_RE, Live

from coatcheck.middleware.gateway.apikeys import Role


@pytest.mark.postgres
def test_list_reveal_end_and_audit_on_postgres(live_pg: Live) -> None:
    cid, other = live_pg.seed("pg"), live_pg.seed("pg-other")
    with live_pg.sign_in(Role.AGENT) as agent:
        listing = agent.get("/ui/", params={"search": cid, "status": "active"}).text
        assert f">{cid}</a>" in listing and f">{other}</a>" not in listing
        page = agent.get(f"/ui/conversations/{cid}").text
        for canary in CANARIES:
            assert canary not in page
        marker = 'data-reference="'
        start = page.index(marker + "CC_EMAIL_ADDRESS_") + len(marker)
        reference = page[start : page.index('"', start)]
        token = CSRF_RE.search(page)
        assert token is not None
        form = {"reference": reference, "csrf": token.group(1)}
        url = f"/ui/conversations/{cid}/reveal"
        shown = agent.post(url, data=form)
        assert shown.status_code == 200 and shown.json()["value"] == CANARY_EMAIL
        live_pg.end(cid)
        refused = agent.post(url, data=form)
        assert refused.status_code in (403, 410) and CANARY_EMAIL not in refused.text
        live_pg.verify_audit()
        assert agent.get("/ui/audit").status_code == 403  # the audit view is an auditor's
    with live_pg.sign_in(Role.AUDITOR) as auditor:
        assert "Chain verified" in auditor.get("/ui/audit", params={"conversation": cid}).text
