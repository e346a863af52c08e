"""A real gateway (uvicorn + SQLite) with 21 days of demo data; the one headless Chromium
(``browser``) is tests/conftest.py's, shared with the edge node's installer page tests."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta

import pytest
from playwright.sync_api import Browser, Page

from dashboards.browser import READY, signed_in_context
from dashboards.demo import DemoGateway, demo_gateway

# Just after a store's local midnight its today holds minutes of data (no demographics yet):
# store-page tests read from yesterday, which keeps the page at hourly granularity.
YESTERDAY = (date.today() - timedelta(days=1)).isoformat()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoGateway]:
    with demo_gateway(tmp_path_factory.mktemp("gateway") / "gateway.db", days=21) as gw:
        yield gw


OpenPage = Callable[..., Page]


@pytest.fixture
def open_page(browser: Browser, gateway: DemoGateway) -> Iterator[OpenPage]:
    """open_page(path, token=..., lang=...) -> a page that finished loading its data.

    Uncaught script errors fail the test, and so does any request that leaves the gateway
    (a CDN, a web font): the pages must work on an intranet with no internet."""
    contexts = []
    errors: list[str] = []
    foreign: list[str] = []

    def _open(path: str, token: str | None = None, lang: str | None = "en",
              locale: str | None = None, wait: bool = True, width: int = 1440) -> Page:
        ctx = signed_in_context(browser, token, lang, locale, width=width)
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: None if r.url.startswith(
            (gateway.base_url + "/", "blob:", "data:")) else foreign.append(r.url))
        page.goto(gateway.base_url + path)
        if wait:
            wait_settled(page)
        return page

    yield _open
    for ctx in contexts:
        ctx.close()
    assert not errors, f"script errors in the page: {errors}"
    assert not foreign, f"requests outside the gateway: {foreign}"


# The pages' CSP refuses eval: give page.wait_for_function a function ("() => ..."), never a
# bare expression, which Playwright evaluates as a string and the page then refuses.


def wait_settled(page: Page, timeout_ms: float = 15_000) -> None:
    page.wait_for_selector(READY, timeout=timeout_ms)


def number(text: str) -> float:
    """A number as the page shows it: grouping separators, signs, % and units removed."""
    m = re.search(r"[-+−]?\d[\d,]*(?:\.\d+)?", text)
    if not m:
        raise AssertionError(f"no number in {text!r}")
    return float(m.group(0).replace(",", "").replace("−", "-"))
