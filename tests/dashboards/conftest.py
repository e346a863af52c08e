"""A real gateway (uvicorn + SQLite) with 21 days of demo data, and one headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from dashboards.demo import DemoGateway, demo_gateway

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoGateway]:
    with demo_gateway(tmp_path_factory.mktemp("gateway") / "gateway.db", days=21) as gw:
        yield gw


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium not found at /usr/bin/chromium (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


OpenPage = Callable[..., Page]


@pytest.fixture
def open_page(browser: Browser, gateway: DemoGateway) -> Iterator[OpenPage]:
    """open_page(path, token=..., lang=...) -> a page that finished loading its data.

    Uncaught script errors fail the test."""
    contexts = []
    errors: list[str] = []

    def _open(path: str, token: str | None = None, lang: str | None = "en",
              locale: str | None = None, wait: bool = True) -> Page:
        ctx = browser.new_context(viewport={"width": 1440, "height": 1000},
                                  locale=locale or lang or "en", accept_downloads=True)
        contexts.append(ctx)
        # Token and language are set once per tab, as a user would; reloads keep their changes.
        script = ""
        if lang:
            script += f"localStorage.setItem('storesense.lang', {lang!r});"
        if token:
            script += f"sessionStorage.setItem('storesense.token', {token!r});"
        ctx.add_init_script("if (!sessionStorage.getItem('test.init')) {"
                            f"sessionStorage.setItem('test.init', '1'); {script} }}")
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(gateway.base_url + path)
        if wait:
            wait_settled(page)
        return page

    yield _open
    for ctx in contexts:
        ctx.close()
    assert not errors, f"script errors in the page: {errors}"


def wait_settled(page: Page, timeout_ms: float = 15_000) -> None:
    page.wait_for_selector("body[data-state=ready], body[data-state=error], "
                           "body[data-state=signin]", timeout=timeout_ms)


def number(text: str) -> float:
    """A number as the page shows it: grouping separators, signs, % and units removed."""
    m = re.search(r"[-+−]?\d[\d,]*(?:\.\d+)?", text)
    if not m:
        raise AssertionError(f"no number in {text!r}")
    return float(m.group(0).replace(",", "").replace("−", "-"))
