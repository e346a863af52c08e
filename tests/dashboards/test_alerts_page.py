"""The alerts page in real Chromium on the demo gateway: open and resolved alerts in both
languages, within a franchisee's scope, at a phone's width."""

from __future__ import annotations

import pytest

from dashboards.demo import DemoGateway
from gateway import alerts_store
from gateway.alerts import Alert, Changes
from tests.dashboards.conftest import OpenPage, wait_settled

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def raised(gateway: DemoGateway) -> dict[str, str]:
    """Alerts at two stores, one of the franchisee's and one not; one of them resolved."""
    with gateway.client(gateway.franchisee_token) as api:
        mine = api.get("/me").json()["store_ids"][0]
    other = next(s.store_id for s in gateway.stores if s.store_id != mine
                 and s.franchisee != gateway.franchisee)
    with gateway.storage.transaction() as conn:
        alerts_store.apply(conn, Changes(raised=(
            Alert("device_offline", other, "edge-9", {"last_seen": "x", "state": "offline",
                                                      "minutes": 12.5}),
            Alert("occupancy_high", mine, mine, {"occupancy": 61, "limit": 60}),
            Alert("traffic_low", mine, "2026-12-06", {"today": 3, "usual": 120.0, "hours": 5,
                                                      "fraction": 0.3, "weeks": 4}),
        )), "2026-12-06T10:00:00Z")
        alerts_store.apply(conn, Changes(resolved=(f"traffic_low:{mine}:2026-12-06",)),
                           "2026-12-06T11:00:00Z")
    return {"mine": mine, "other": other}


def test_open_alerts_then_all_in_english(open_page: OpenPage, gateway: DemoGateway,
                                         raised: dict[str, str]) -> None:
    page = open_page("/alerts.html", token=gateway.hq_token)
    rows = page.locator("#alerts tbody tr")
    assert rows.count() == 2  # open ones only by default
    text = page.inner_text("#alerts")
    assert "Device offline" in text and "Not heard from for 12.5 min" in text
    assert "61 people in store, limit 60" in text and "Open" in text
    page.select_option("#f-state", "all")
    wait_settled(page)
    page.wait_for_function("() => document.querySelectorAll('#alerts tbody tr').length === 3")
    last = page.locator("#alerts tbody tr").nth(2).inner_text()
    assert "Traffic far below usual" in last and "3 visitors in the first 5 h, usually 120" in last
    assert "Resolved" in last


def test_chinese_franchisee_and_phone(open_page: OpenPage, gateway: DemoGateway,
                                      raised: dict[str, str]) -> None:
    page = open_page("/alerts.html?state=all", token=gateway.franchisee_token, lang="zh-CN",
                     width=390)
    text = page.inner_text("#alerts")
    assert "店内人数超限" in text and "店内 61 人，上限 60 人" in text
    assert "客流远低于平常" in text and "已于" in text
    assert "设备离线" not in text  # the other franchisee's store
    assert page.locator("#alerts tbody tr").count() == 2
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    page = open_page("/alerts.html", token=gateway.hq_token, lang="en", width=390)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390


def test_no_alerts_says_so(open_page: OpenPage, gateway: DemoGateway,
                           raised: dict[str, str]) -> None:
    page = open_page(f"/alerts.html?store={raised['other']}&state=resolved",
                     token=gateway.hq_token)
    assert "No alerts." in page.inner_text("#alerts-box")
