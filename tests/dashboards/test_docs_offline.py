"""The gateway's /docs (Swagger UI) works with no CDN: everything it loads is the gateway's."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Browser

from dashboards.demo import DemoGateway


def test_docs_render_the_api_from_the_gateway_alone(browser: Browser, gateway: DemoGateway):
    ctx = browser.new_context()
    page = ctx.new_page()
    requested: list[str] = []
    violations: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    try:
        page.goto(f"{gateway.base_url}/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)  # operations listed
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/api/v1/stores" in p for p in paths), paths
    finally:
        ctx.close()
    ours = urlsplit(gateway.base_url).netloc
    elsewhere = [u for u in requested if not u.startswith("data:") and urlsplit(u).netloc != ours]
    assert elsewhere == [], elsewhere
    assert violations == [], violations
