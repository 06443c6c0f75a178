"""The log viewer over plain HTTP against the live server: no raw value in any page,
session cookie flags, CSRF on every form, role gates on sign-in and reveal."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import httpx
from ui_live import CANARIES, CANARY_EMAIL, CSRF_RE, Live

from coatcheck.middleware.gateway.apikeys import Role


def _csrf(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match is not None
    return match.group(1)


def _first_reference(html: str, entity_type: str) -> str:
    marker = f'data-reference="CC_{entity_type}_'
    start = html.index(marker) + len('data-reference="')
    return html[start : html.index('"', start)]


def test_pages_before_any_reveal_hold_no_raw_value(live: Live) -> None:
    cid = live.seed("nohtml")
    for role in (Role.VIEWER, Role.AGENT, Role.AUDITOR):
        with live.sign_in(role) as client:
            pages = {
                "list": client.get("/ui/"),
                "search": client.get("/ui/", params={"search": cid}),
                "conversation": client.get(f"/ui/conversations/{cid}"),
                "audit": client.get("/ui/audit", params={"conversation": cid}),
            }
            for name, page in pages.items():
                # the audit view is for auditors (and admins) only: tests/edges
                opens = name != "audit" or role is Role.AUDITOR
                assert page.status_code == (200 if opens else 403), (role, name)
                assert page.headers["cache-control"] == "no-store"
                for canary in CANARIES:
                    assert canary not in page.text, (role, name, canary)
            # The pages really show the conversation: the id, and chips for both types.
            assert cid in pages["search"].text
            transcript = pages["conversation"].text
            assert transcript.count('class="chip"') >= 4  # two values, echoed back by the bot
            assert 'data-reference="CC_EMAIL_ADDRESS_' in transcript
            assert 'data-reference="CC_CREDIT_CARD_' in transcript
            assert ('class="reveal inline"' in transcript) is (role is not Role.VIEWER)


def test_session_cookie_flags_and_contents(live: Live) -> None:
    client = httpx.Client(base_url=live.url, timeout=30)
    form = client.get("/ui/login")
    login_cookie = form.headers["set-cookie"].lower()
    assert "httponly" in login_cookie and "samesite=strict" in login_cookie
    key = live.keys["agent"]
    done = client.post("/ui/login", data={"api_key": key, "csrf": _csrf(form.text)})
    assert done.status_code == 303
    header = next(h for h in done.headers.get_list("set-cookie") if h.startswith("cc_ui_session="))
    attributes = [part.strip().lower() for part in header.split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/ui" in attributes
    assert "secure" not in attributes  # plain http on loopback (docs/ui.md)
    value = header.split(";", 1)[0].split("=", 1)[1]
    body = value.split(".")[0]
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    digest = hashlib.sha256(key.encode()).hexdigest()
    secret_part = key.split("_", 2)[2]
    for field in payload.values():
        assert secret_part not in str(field) and digest not in str(field)
    assert secret_part not in value and digest not in value
    client.close()


def test_csrf_missing_or_wrong_is_403(live: Live) -> None:
    cid = live.seed("csrf")
    with httpx.Client(base_url=live.url, timeout=30) as anon:
        anon.get("/ui/login")  # has the pre-session cookie, but sends no token
        refused = anon.post("/ui/login", data={"api_key": live.keys["agent"]})
        assert refused.status_code == 403
        assert refused.json()["error"] == "csrf_failed"
        assert "cc_ui_session" not in refused.headers.get("set-cookie", "")
    with live.sign_in(Role.AGENT) as client:
        page = client.get(f"/ui/conversations/{cid}").text
        reference = _first_reference(page, "EMAIL_ADDRESS")
        url = f"/ui/conversations/{cid}/reveal"
        for data in ({"reference": reference}, {"reference": reference, "csrf": "x" * 43}):
            answer = client.post(url, data=data)
            assert answer.status_code == 403
            assert answer.json()["error"] == "csrf_failed"
            assert CANARY_EMAIL not in answer.text
        assert client.post("/ui/logout", data={}).status_code == 403
        # The same request with the page's token goes through: the token is what mattered.
        allowed = client.post(url, data={"reference": reference, "csrf": _csrf(page)})
        assert allowed.status_code == 200
        assert allowed.json()["value"] == CANARY_EMAIL
        assert allowed.headers["cache-control"] == "no-store"


def test_sign_in_gates(live: Live) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        assert client.get("/ui/").status_code == 303
        for key in (live.keys["channel"], live.keys["bot"], "cck_000000000000_nope"):
            form = client.get("/ui/login")
            answer = client.post("/ui/login", data={"api_key": key, "csrf": _csrf(form.text)})
            assert answer.status_code == 401
            assert "cc_ui_session" not in answer.headers.get("set-cookie", "")
            assert key not in answer.text
        client.cookies.set("cc_ui_session", "e30.AAAA", path="/ui")
        forged = client.get("/ui/")
        assert forged.status_code == 303 and forged.headers["location"] == "/ui/login"


def test_reveal_rules_and_audit(live: Live) -> None:
    cid = live.seed("rules")
    with live.sign_in(Role.VIEWER) as viewer:
        page = viewer.get(f"/ui/conversations/{cid}").text
        reference = _first_reference(page, "EMAIL_ADDRESS")
        answer = viewer.post(
            f"/ui/conversations/{cid}/reveal", data={"reference": reference, "csrf": _csrf(page)}
        )
        assert answer.status_code == 403 and CANARY_EMAIL not in answer.text
    with live.sign_in(Role.AUDITOR) as auditor:
        page = auditor.get(f"/ui/conversations/{cid}").text
        url, token = f"/ui/conversations/{cid}/reveal", _csrf(page)
        bare = auditor.post(url, data={"reference": reference, "csrf": token})
        assert bare.status_code == 403 and CANARY_EMAIL not in bare.text
        purpose = "ticket 42, asked by someone.else@example.org"
        ok = auditor.post(url, data={"reference": reference, "csrf": token, "purpose": purpose})
        assert ok.status_code == 200 and ok.json()["value"] == CANARY_EMAIL
        live.verify_audit()
        audit = auditor.get("/ui/audit", params={"conversation": cid, "action": "reveal"}).text
        assert "Chain verified" in audit and "every link holds" in audit
        assert audit.count('<tr class="outcome-') >= 3  # viewer refused, auditor refused, ok
        assert "someone.else@example.org" not in audit  # the purpose is masked before audit
        assert "ticket 42" in audit
        for canary in CANARIES:
            assert canary not in audit


def test_staff_find_a_conversation_by_the_real_sender_id(live: Live) -> None:
    """The viewer's sender search: a POST (CSRF), HMAC'd to the pseudonym, redirected to
    that transcript; an unknown sender leads to an empty one, a missing token to 403."""
    sender = "+14155550166"
    headers = {"Authorization": f"Bearer {live.keys['channel']}"}
    said = httpx.post(
        f"{live.url}/webhooks/rest/webhook",
        json={"sender": sender, "message": f"Hi, I am {CANARY_EMAIL}"},
        headers=headers,
        timeout=30,
    )
    assert said.status_code == 200
    with live.sign_in(Role.VIEWER) as client:
        csrf = _csrf(client.get("/ui/").text)
        found = client.post("/ui/find-sender", data={"sender": sender, "csrf": csrf})
        assert found.status_code == 303
        cid = found.headers["location"].removeprefix("/ui/conversations/")
        assert cid == live.pseudonym(sender) and sender not in found.headers["location"]
        page = client.get(found.headers["location"])
        assert page.status_code == 200 and "CC_EMAIL_ADDRESS_" in page.text
        assert sender not in page.text and CANARY_EMAIL not in page.text
        other = client.post("/ui/find-sender", data={"sender": "+14155550167", "csrf": csrf})
        assert other.headers["location"] != found.headers["location"]
        refused = client.post("/ui/find-sender", data={"sender": sender})
        assert refused.status_code == 403


def test_list_filters_by_id_status_and_date(live: Live) -> None:
    ended, running = live.seed("filter-ended"), live.seed("filter-running")
    live.end(ended)
    today = datetime.now(UTC).date()
    tomorrow, yesterday = today + timedelta(days=1), today - timedelta(days=1)
    with live.sign_in(Role.VIEWER) as client:

        def listed(**params: str) -> set[str]:
            page = client.get("/ui/", params=params)
            assert page.status_code == 200
            return {cid for cid in (ended, running) if f">{cid}</a>" in page.text}

        both = {ended, running}
        assert listed(search=ended) == {ended}
        assert listed(search=running) == {running}
        assert listed(search="p_") >= both  # every id is a pseudonym
        assert listed(search="filter-") == set()  # the senders' own ids are stored nowhere
        assert listed(search="p_", status="active") & both == {running}
        assert listed(search="p_", status="shredded") & both == {ended}
        assert listed(search="p_", since=today.isoformat()) & both == both
        assert listed(search="p_", since=tomorrow.isoformat()) & both == set()
        assert listed(search="p_", until=yesterday.isoformat()) & both == set()
        assert listed(search="p_", until=today.isoformat()) & both == both
        assert listed(search="%") == set()  # LIKE wildcards are matched literally
