"""Signing out ends a session on the server: a copy of its cookie is refused at once.

The attack: someone who copied an agent's session cookie (a shared machine, a proxy log)
keeps using it after the agent signed out.  Sessions were signed stateless cookies, valid
until they expired (8 h); now each has a row that sign-out deletes.
"""

from __future__ import annotations

import httpx
from ui_live import CSRF_RE, Live

from coatcheck.middleware.service.apikeys import Role
from coatcheck.middleware.ui.session import SESSION_COOKIE


def test_a_copied_cookie_dies_with_sign_out(live: Live) -> None:
    cid = live.seed("signout")
    with live.sign_in(Role.AGENT) as client:
        stolen = client.cookies[SESSION_COOKIE]
        page = client.get(f"/ui/conversations/{cid}")
        assert page.status_code == 200
        csrf = CSRF_RE.search(page.text)
        assert csrf is not None
        with httpx.Client(base_url=live.url, timeout=30) as thief:
            thief.cookies.set(SESSION_COOKIE, stolen, path="/ui")
            assert thief.get("/ui/").status_code == 200  # the copy works while signed in
            out = client.post("/ui/logout", data={"csrf": csrf.group(1)})
            assert out.status_code == 303 and out.headers["location"] == "/ui/login"
            after = thief.get("/ui/", follow_redirects=False)
            assert (after.status_code, after.headers.get("location")) == (303, "/ui/login")
            reveal = thief.post(
                f"/ui/conversations/{cid}/reveal",
                data={"reference": "CC_EMAIL_ADDRESS_0123456789", "csrf": csrf.group(1)},
            )
            assert (reveal.status_code, reveal.json()["error"]) == (401, "not_signed_in")


def test_other_sessions_of_the_same_key_live_on(live: Live) -> None:
    with live.sign_in(Role.VIEWER) as first, live.sign_in(Role.VIEWER) as second:
        page = first.get("/ui/")
        csrf = CSRF_RE.search(page.text)
        assert csrf is not None
        assert first.post("/ui/logout", data={"csrf": csrf.group(1)}).status_code == 303
        assert first.get("/ui/", follow_redirects=False).status_code == 303
        assert second.get("/ui/", follow_redirects=False).status_code == 200
