"""Member share, join rate and rainy vs dry days on the store page and the overview, in a real
browser against the demo gateway (its POS hours carry members, a weather feed pushed its
days), in both languages."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page

from dashboards.demo import FLOORPLAN_STORE, NO_POS_STORE, DemoGateway
from tests.dashboards.conftest import YESTERDAY, OpenPage, number

pytestmark = pytest.mark.browser

START = (date.fromisoformat(YESTERDAY) - timedelta(days=13)).isoformat()
WORDS = {"en": ("Member share of transactions", "Join rate of non-members", "Rainy days",
                "Dry days"),
         "zh-CN": ("会员交易占比", "非会员入会率", "雨天", "无雨天")}


def check_cards(page: Page, members: dict[str, Any], weather: dict[str, Any],
                lang: str) -> None:
    share, join, rainy, dry = WORDS[lang]
    tot = members["totals"]
    assert tot["hours"] > 0 and 0 < tot["member_share"] < 1 and 0 < tot["join_rate"] < 1
    assert share in page.inner_text("#member-share")
    assert join in page.inner_text("#join-rate")
    assert number(page.inner_text("#member-share .kpi-value")) == pytest.approx(
        100 * tot["member_share"], abs=0.051)
    assert number(page.inner_text("#join-rate .kpi-value")) == pytest.approx(
        100 * tot["join_rate"], abs=0.051)
    assert weather["rainy"]["days"] > 0 and weather["dry"]["days"] > 0
    for kind, label in (("rainy", rainy), ("dry", dry)):
        row = page.locator(f"#weather-table tr[data-kind={kind}]")
        assert row.locator("td").first.inner_text() == label
        g = weather[kind]
        assert number(row.locator("[data-col=days]").inner_text()) == g["days"]
        assert number(row.locator("[data-col=visitors]").inner_text()) == pytest.approx(
            g["visitors_per_day"], abs=0.051)
        assert number(row.locator("[data-col=conversion]").inner_text()) == pytest.approx(
            100 * g["conversion"], abs=0.051)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_store_page_shows_member_share_join_rate_and_rainy_vs_dry(
        open_page: OpenPage, gateway: DemoGateway, lang: str) -> None:
    span = {"start": START, "end": YESTERDAY}
    page = open_page(f"/store.html?store={FLOORPLAN_STORE}&start={START}&end={YESTERDAY}",
                     token=gateway.hq_token, lang=lang)
    with gateway.client(gateway.hq_token) as api:
        members = api.get("/members", params={**span, "store_id": FLOORPLAN_STORE}).json()
        weather = api.get("/weather/compare",
                          params={**span, "store_id": FLOORPLAN_STORE}).json()
    assert [s["store_id"] for s in members["stores"]] == [FLOORPLAN_STORE]
    assert weather["rainy"]["days"] + weather["dry"]["days"] + weather["snow"]["days"] == 14
    check_cards(page, members, weather, lang)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_overview_shows_the_chains_members_and_rainy_vs_dry_for_its_period(
        open_page: OpenPage, gateway: DemoGateway, lang: str) -> None:
    page = open_page(f"/?date={YESTERDAY}&days=28", token=gateway.hq_token, lang=lang)
    first = (date.fromisoformat(YESTERDAY) - timedelta(days=27)).isoformat()
    with gateway.client(gateway.hq_token) as api:
        members = api.get("/members", params={"start": first, "end": YESTERDAY}).json()
        weather = api.get("/weather/compare", params={"start": first, "end": YESTERDAY}).json()
    # every store with POS data, the demo's 21 days of it
    assert len(members["stores"]) == len(gateway.stores) - 1
    check_cards(page, members, weather, lang)
    # a region filter narrows both cards to its stores
    page.select_option("#f-region", "Europe")
    page.wait_for_selector("body[data-state=ready]")
    empty = page.inner_text("#members")
    assert ("No member data" if lang == "en" else "没有会员数据") in empty


def test_a_store_without_pos_or_whole_days_says_so(open_page: OpenPage,
                                                    gateway: DemoGateway) -> None:
    page = open_page(f"/store.html?store={NO_POS_STORE}&start={START}&end={YESTERDAY}",
                     token=gateway.hq_token)
    assert "No member data" in page.inner_text("#members")
    assert page.locator("#weather-table").count() == 1  # weather needs no POS
    # today only: no whole day with weather yet
    page = open_page(f"/store.html?store={FLOORPLAN_STORE}", token=gateway.hq_token, lang="zh-CN")
    assert "没有带天气记录的完整日子" in page.inner_text("#weather")
