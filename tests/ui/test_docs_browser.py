"""`/docs` renders in a browser that can reach nothing but the gateway (no CDN).

FastAPI's own page loaded Swagger UI from a CDN and stayed blank offline.  Every request
the page makes to another host is aborted here and counted.
"""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, Route, expect
from ui_live import Live


def test_swagger_ui_renders_offline(browser: Browser, live: Live) -> None:
    page = browser.new_context().new_page()
    elsewhere: list[str] = []

    def only_the_gateway(route: Route) -> None:
        if route.request.url.startswith(live.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_gateway)
    page.goto(f"{live.url}/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
    schema = httpx.get(f"{live.url}/openapi.json", timeout=30).json()
    operations = sum(len(item) for item in schema["paths"].values())
    assert page.locator(".opblock").count() == operations  # every API route is listed
    expect(page.locator(".btn.authorize")).to_be_visible()  # the bearer scheme
    assert elsewhere == []
