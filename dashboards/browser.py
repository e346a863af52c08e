"""Headless Chromium for the browser tests, screenshots and the benchmark: Debian's
/usr/bin/chromium driven by Playwright (no browser download), never touching the network
beyond the local gateway."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, sync_playwright

CHROMIUM = Path(os.environ.get("STORESENSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync")
READY = "body[data-state=ready], body[data-state=error], body[data-state=signin]"


@contextmanager
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        raise FileNotFoundError(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


def signed_in_context(browser: Browser, token: str | None, lang: str | None = "en",
                      locale: str | None = None, width: int = 1440,
                      height: int = 1000) -> BrowserContext:
    """A fresh context whose first page starts with ``token`` and ``lang`` set, as if the
    user had signed in and picked the language; reloads keep whatever the page changes."""
    ctx = browser.new_context(viewport={"width": width, "height": height},
                              locale=locale or lang or "en", accept_downloads=True)
    script = ""
    if lang:
        script += f"localStorage.setItem('storesense.lang', {lang!r});"
    if token:
        script += f"sessionStorage.setItem('storesense.token', {token!r});"
    ctx.add_init_script("if (!sessionStorage.getItem('storesense.init')) {"
                        f"sessionStorage.setItem('storesense.init', '1'); {script} }}")
    return ctx
