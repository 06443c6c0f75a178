"""The log viewer in a real browser: Debian's chromium driven by Playwright, live server.

Sign in, list, search, open, chips; reveal as an agent (value shown, then wiped); a viewer
gets no control and is refused when it posts anyway; an auditor is refused without a
purpose and served with one; after the conversation ends the agent is refused; the audit
view lists the reveals and says the chain verifies.  Screenshots go to the test's tmp_path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect
from ui_live import CANARIES, CANARY_EMAIL, Live

from coatcheck.middleware.gateway.apikeys import Role
from coatcheck.middleware.ui.views import REVEAL_SECONDS


def _sign_in(browser: Browser, live: Live, role: Role) -> Page:
    page = browser.new_context(base_url=live.url).new_page()
    page.set_default_timeout(20_000)
    page.goto("/ui/")
    expect(page).to_have_url(f"{live.url}/ui/login")
    page.fill("input[name=api_key]", live.keys[role.value])
    page.click("#login button[type=submit]")
    expect(page).to_have_url(f"{live.url}/ui/")
    expect(page.locator("#who")).to_contain_text(role.value)
    return page


def _no_canary(page: Page) -> None:
    html = page.content()
    for canary in CANARIES:
        assert canary not in html, canary


def _chip(page: Page, entity_type: str) -> Any:
    return page.locator(f'.chip[data-reference^="CC_{entity_type}_"]').first


def test_agent_reveals_viewer_cannot_and_ending_stops_agents(
    browser: Browser, live: Live, tmp_path: Path
) -> None:
    cid = live.seed("browser")
    other = live.seed("other")
    agent = _sign_in(browser, live, Role.AGENT)

    # List and search.
    expect(agent.locator("#conversations")).to_contain_text(cid)
    agent.fill("#search input[name=search]", cid)
    agent.click("#search button[type=submit]")
    rows = agent.locator("#conversations tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(cid)
    expect(agent.locator("#conversations")).not_to_contain_text(other)
    _no_canary(agent)

    # Open: both directions, chips with type, rule and display form; no value yet.
    agent.click(f"a.conv:text('{cid}')")
    expect(agent.locator("#cid")).to_have_text(cid)
    expect(agent.locator("#status")).to_have_text("active")
    expect(agent.locator(".msg.user")).to_have_count(2)
    expect(agent.locator(".msg.bot")).to_have_count(2)
    chip = _chip(agent, "EMAIL_ADDRESS")
    expect(chip.locator(".type")).to_have_text("EMAIL_ADDRESS")
    expect(chip.locator(".rule")).to_have_text("rule: EMAIL_ADDRESS")  # the recognizer
    expect(agent.locator(".msg.bot .chip .rule").first).not_to_contain_text("not recorded")
    expect(chip.locator(".display")).not_to_be_empty()
    expect(_chip(agent, "CREDIT_CARD")).to_be_visible()
    _no_canary(agent)
    agent.screenshot(path=str(tmp_path / "agent-transcript.png"), full_page=True)

    # Reveal as an agent: shown, then wiped after the timeout.
    chip.locator("button").click()
    shown = chip.locator(".revealed")
    expect(shown).to_have_text(CANARY_EMAIL)
    agent.screenshot(path=str(tmp_path / "agent-revealed.png"), full_page=True)
    expect(shown).to_have_attribute("data-state", "wiped", timeout=(REVEAL_SECONDS + 10) * 1000)
    expect(shown).to_have_text("")
    _no_canary(agent)

    # A viewer sees no reveal control, and a hand-made reveal post is refused.
    viewer = _sign_in(browser, live, Role.VIEWER)
    viewer.goto(f"/ui/conversations/{cid}")
    expect(_chip(viewer, "EMAIL_ADDRESS")).to_be_visible()
    expect(viewer.locator("form.reveal")).to_have_count(0)
    reference = _chip(viewer, "EMAIL_ADDRESS").get_attribute("data-reference")
    status = viewer.evaluate(
        """async ([cid, ref]) => {
            const data = new FormData();
            data.append("csrf", document.querySelector("#logout input[name=csrf]").value);
            data.append("reference", ref);
            const url = `/ui/conversations/${cid}/reveal`;
            const resp = await fetch(url, {method: "POST", body: data});
            return [resp.status, await resp.text()];
        }""",
        [cid, reference],
    )
    assert status[0] == 403 and CANARY_EMAIL not in status[1]
    _no_canary(viewer)
    viewer.screenshot(path=str(tmp_path / "viewer-transcript.png"), full_page=True)

    # The conversation ends: the agent's open page is refused on the next click, and after
    # a reload the control is gone.
    live.end(cid)
    chip.locator("button").click()
    expect(shown).to_have_attribute("data-state", "refused")
    expect(shown).to_contain_text("refused")
    _no_canary(agent)
    agent.screenshot(path=str(tmp_path / "agent-after-end.png"), full_page=True)
    agent.reload()
    expect(agent.locator("#status")).not_to_have_text("active")
    expect(agent.locator("form.reveal")).to_have_count(0)
    agent.context.close()
    viewer.context.close()
    for name in ("agent-transcript", "agent-revealed", "viewer-transcript", "agent-after-end"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_auditor_needs_a_purpose_and_the_audit_view_shows_it(
    browser: Browser, live: Live, tmp_path: Path
) -> None:
    cid = live.seed("audit")
    auditor = _sign_in(browser, live, Role.AUDITOR)
    auditor.goto(f"/ui/conversations/{cid}")
    chip = _chip(auditor, "EMAIL_ADDRESS")
    shown = chip.locator(".revealed")
    _no_canary(auditor)

    chip.locator("button").click()  # no purpose stated
    expect(shown).to_have_attribute("data-state", "refused")
    expect(shown).to_contain_text("403")
    _no_canary(auditor)

    auditor.fill("#purpose", "complaint review 7")
    chip.locator("button").click()
    expect(shown).to_have_text(CANARY_EMAIL)
    expect(shown).to_have_attribute("data-state", "wiped", timeout=(REVEAL_SECONDS + 10) * 1000)
    _no_canary(auditor)

    live.verify_audit()
    auditor.click("header nav a:text('Audit')")
    expect(auditor.locator("#chain")).to_contain_text("Chain verified")
    auditor.fill("#audit-filter input[name=conversation]", cid)
    auditor.fill("#audit-filter input[name=action]", "reveal")
    auditor.click("#audit-filter button[type=submit]")
    rows = auditor.locator("#audit tbody tr")
    expect(rows).to_have_count(2)
    expect(auditor.locator("#audit tbody tr.outcome-ok")).to_contain_text("complaint review 7")
    expect(auditor.locator("#audit tbody tr.outcome-ok")).to_contain_text("auditor")
    expect(auditor.locator("#audit tbody tr.outcome-refused")).to_have_count(1)
    _no_canary(auditor)
    auditor.screenshot(path=str(tmp_path / "audit.png"), full_page=True)
    auditor.fill("#audit-filter input[name=actor]", "nobody-at-all")
    auditor.click("#audit-filter button[type=submit]")
    expect(auditor.locator("#audit tbody tr.outcome-ok")).to_have_count(0)
    auditor.context.close()
    assert (tmp_path / "audit.png").stat().st_size > 1000
