"""Language switch: text, store names, dates and units follow the chosen language."""

from __future__ import annotations

import pytest

from dashboards.demo import DemoGateway
from storesense.simulate import DEMO_STORES
from tests.dashboards.conftest import YESTERDAY, OpenPage

pytestmark = pytest.mark.browser


def test_switch_to_chinese_and_back(open_page: OpenPage, gateway: DemoGateway) -> None:
    page = open_page("/", token=gateway.hq_token, lang="en")
    assert page.inner_text("h1") == "HQ overview"
    assert page.evaluate("document.documentElement.lang") == "en"
    english_dwell = page.locator("#ranking td[data-col=avg_dwell_s]").all_inner_texts()
    english_label = page.inner_text("#kpi-visitors-label")
    visitors = page.inner_text("#kpi-visitors")

    page.select_option("#lang-select", "zh-CN")
    assert page.inner_text("h1") == "总部总览"
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert page.evaluate("localStorage.getItem('storesense.lang')") == "zh-CN"
    names = page.locator("#ranking td[data-col=name]").all_inner_texts()
    assert set(names) == {s.name_zh for s in DEMO_STORES}
    label = page.inner_text("#kpi-visitors-label")
    assert "年" in label and "月" in label and label != english_label  # "2026年11月22日周日"
    dwell = page.locator("#ranking td[data-col=avg_dwell_s]").all_inner_texts()
    assert all(("秒" in d or "分钟" in d) for d in dwell if d != "—"), dwell
    assert page.inner_text("#kpi-visitors") == visitors  # same figure, zh-CN grouping
    # the offline demo store's cameras: their state is translated too
    assert "已停止" in page.locator("#devices .badge.warn").all_inner_texts()

    # The choice survives a reload (localStorage), then switch back.
    page.reload()
    page.wait_for_selector("body[data-state=ready]")
    assert page.inner_text("h1") == "总部总览"
    page.select_option("#lang-select", "en")
    assert page.inner_text("h1") == "HQ overview"
    assert page.locator("#ranking td[data-col=avg_dwell_s]").all_inner_texts() == english_dwell
    assert set(page.locator("#ranking td[data-col=name]").all_inner_texts()) == {
        s.name for s in DEMO_STORES}


def test_default_language_follows_the_browser(open_page: OpenPage, gateway: DemoGateway) -> None:
    page = open_page("/", token=gateway.hq_token, lang=None, locale="zh-CN")
    assert page.evaluate("localStorage.getItem('storesense.lang')") is None
    assert page.inner_text("h1") == "总部总览"
    page = open_page("/", token=gateway.hq_token, lang=None, locale="en-GB")
    assert page.inner_text("h1") == "HQ overview"


def test_store_and_heatmap_pages_in_chinese(open_page: OpenPage, gateway: DemoGateway) -> None:
    store = DEMO_STORES[0]
    page = open_page(f"/store.html?store={store.store_id}&start={YESTERDAY}",
                     token=gateway.hq_token, lang="zh-CN")
    assert page.inner_text("#store-name") == store.name_zh
    assert "各区域停留时长" in page.inner_text("body")
    genders = page.locator("#demo table[data-dim='genders'] td:first-child").all_inner_texts()
    assert {"女", "男"} <= set(genders)
    page.select_option("#lang-select", "en")
    assert page.inner_text("#store-name") == store.name
    assert "Dwell by zone" in page.inner_text("body")

    page = open_page(f"/heatmap.html?store={store.store_id}", token=gateway.hq_token,
                     lang="zh-CN")
    assert page.inner_text("#title-a").startswith("调整前")
    assert "年" in page.inner_text("#title-a")
    assert page.inner_text("#export-csv") == "导出 CSV"
