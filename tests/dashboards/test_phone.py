"""A phone's width (390 px): no page is wider than the screen; wide tables scroll in place."""

from __future__ import annotations

import pytest

from dashboards.demo import DemoGateway
from tests.dashboards.conftest import OpenPage

PHONE = 390
PAGES = ["/", "/store.html?store=sh-001", "/heatmap.html?store=sh-001"]


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
@pytest.mark.parametrize("path", PAGES)
def test_no_page_is_wider_than_a_phone(
        open_page: OpenPage, gateway: DemoGateway, path: str, lang: str) -> None:
    page = open_page(path, token=gateway.hq_token, lang=lang, width=PHONE)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE, f"{path} ({lang}) is {width} px wide"
