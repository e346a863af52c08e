"""Issue 16 on the store page in a real browser against a real gateway: passes, unique
visitors, groups, staff passes, conversion per visitor and per group, and queues, in English
and Chinese, each figure as the API gives it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from dashboards.demo import FLOORPLAN_STORE, DemoGateway
from tests.dashboards.conftest import YESTERDAY, OpenPage, number

pytestmark = pytest.mark.browser

LABELS = {
    "en": {"passes": "Passes", "unique_visitors": "Unique visitors", "groups": "Groups",
           "staff": "Staff passes", "conversion_per_visitor": "Conversion per visitor",
           "conversion_per_group": "Conversion per group", "title": "Passes, visitors and groups",
           "queues": "Queues", "wait": "Wait (median)", "abandon": "Abandonment"},
    "zh-CN": {"passes": "进店人次", "unique_visitors": "独立访客", "groups": "结伴组数",
              "staff": "员工进出", "conversion_per_visitor": "按访客转化率",
              "conversion_per_group": "按组转化率", "title": "进店人次、访客与结伴",
              "queues": "排队", "wait": "等待（中位数）", "abandon": "放弃率"},
}


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_store_page_shows_the_retail_figures(open_page: OpenPage, gateway: DemoGateway,
                                             lang: str) -> None:
    store = FLOORPLAN_STORE
    page = open_page(f"/store.html?store={store}&start={YESTERDAY}&end={YESTERDAY}",
                     token=gateway.hq_token, lang=lang)
    with gateway.client(gateway.hq_token) as api:
        series = api.get("/visitors", params={"store_id": store, "start": YESTERDAY,
                                               "end": YESTERDAY, "granularity": "hour"}
                         ).json()["series"]
        queues = api.get(f"/stores/{store}/queues",
                         params={"start": YESTERDAY, "end": YESTERDAY}).json()["queues"]
    words = LABELS[lang]
    assert words["title"] in page.inner_text("#retail-visitors h2")

    def shown(figure: str) -> tuple[str, float]:
        row = page.locator(f"#retail-table tr[data-figure={figure}]")
        return row.locator("th").inner_text(), number(row.locator("td").inner_text())

    sums = {k: sum(p[k] for p in series) for k in ("passes", "unique_visitors", "groups",
                                                   "staff_in")}
    assert sums["passes"] > sums["unique_visitors"] > sums["groups"] > 0  # the demo has all
    for figure, key in (("passes", "passes"), ("unique_visitors", "unique_visitors"),
                        ("groups", "groups"), ("staff", "staff_in")):
        label, value = shown(figure)
        assert label == words[figure] and value == sums[key], figure
    pos = [p for p in series if p["transactions"] is not None]
    tx = sum(p["transactions"] for p in pos)
    for figure, den in (("conversion_per_visitor", "unique_visitors"),
                        ("conversion_per_group", "groups")):
        label, value = shown(figure)
        expected = 100 * tx / sum(p[den] for p in pos)
        assert label == words[figure] and value == pytest.approx(expected, abs=0.051), figure
    drawn = page.evaluate("echarts.getInstanceByDom(document.querySelector('#retail-chart'))"
                          ".getOption().series.map(s => s.data)")
    assert drawn == [[p[k] for p in series] for k in ("passes", "unique_visitors", "groups")]

    assert page.inner_text("section:has(#retail-queues) h2") == words["queues"]
    [q] = queues
    cells = page.locator(f"#queues-table tr[data-zone='{q['zone']}']")
    head = page.locator("#queues-table thead").inner_text()
    assert words["wait"] in head and words["abandon"] in head
    assert number(cells.locator("[data-figure=served]").inner_text()) == q["served"]
    assert number(cells.locator("[data-figure=abandoned]").inner_text()) == q["abandoned"]
    assert number(cells.locator("[data-figure=length_max]").inner_text()) == q["length_max"]
    assert number(cells.locator("[data-figure=abandonment_rate]").inner_text()) == \
        pytest.approx(100 * q["abandonment_rate"], abs=0.051)
    wait = cells.locator("[data-figure=wait_p50]").inner_text()
    unit = ("sec" in wait or "min" in wait) if lang == "en" else ("秒" in wait or "分钟" in wait)
    assert unit, wait
    minutes = q["wait_p50_s"] >= 120
    assert number(wait) == pytest.approx(q["wait_p50_s"] / 60 if minutes else q["wait_p50_s"],
                                         abs=0.051 if minutes else 0.51)


def test_demographics_within_unique_visitors_on_every_demo_store_and_day(
        gateway: DemoGateway) -> None:
    """Issue 16's check on the whole demo: per store and day, demographic totals are at or
    below the unique visitors (and so below the passes)."""
    with gateway.client(gateway.hq_token) as api:
        stores = [s["store_id"] for s in api.get("/stores").json()]
        days = sorted({p["period"] for p in api.get(
            "/visitors", params={"start": (date.today() - timedelta(days=40)).isoformat(),
                                 "end": (date.today() + timedelta(days=1)).isoformat()},
        ).json()["series"]})
        assert len(days) >= 20
        checked = 0
        for store in stores:
            for day in days:
                d = api.get(f"/stores/{store}/demographics",
                            params={"start": day, "end": day}).json()
                ages = sum(n for n in d["age_bands"].values() if n is not None)
                assert d["visitors"] <= d["unique_visitors"], (store, day)
                assert ages <= d["unique_visitors"], (store, day)
                checked += 1
        assert checked == len(stores) * len(days)
