"""HQ overview in a real browser against a real gateway: the page shows the API's numbers."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from dashboards.demo import OFFLINE_STORE, DemoGateway
from tests.dashboards.conftest import OpenPage, number

pytestmark = pytest.mark.browser


def ranking(page) -> dict[str, dict[str, str]]:
    rows = {}
    for tr in page.locator("#ranking tbody tr").all():
        cells = {td.get_attribute("data-col"): td.inner_text().strip()
                 for td in tr.locator("td").all()}
        rows[tr.get_attribute("data-store-id")] = cells
    return rows


def test_overview_shows_the_api_numbers(open_page: OpenPage, gateway: DemoGateway) -> None:
    page = open_page("/", token=gateway.hq_token)
    with gateway.client(gateway.hq_token) as api:
        ov = api.get("/overview").json()
    assert ov["stores_total"] == len(gateway.stores)
    assert number(page.inner_text("#kpi-visitors")) == ov["visitors"]
    assert number(page.inner_text("#kpi-occupancy")) == ov["occupancy_now"]
    online = page.inner_text("#kpi-online").split("/")
    assert (number(online[0]), number(online[1])) == (ov["stores_online"], ov["stores_total"])

    rows = ranking(page)
    assert set(rows) == {s["store_id"] for s in ov["stores"]}
    for s in ov["stores"]:
        row = rows[s["store_id"]]
        assert number(row["visitors"]) == s["visitors"], s["store_id"]
        if s["conversion"] is None:
            assert row["conversion"] == "—"
        else:
            assert number(row["conversion"]) == pytest.approx(100 * s["conversion"], abs=0.051)
        assert ("Offline" in row["online"]) == (not s["online"])
    ranked = [number(r["visitors"]) for r in rows.values()]
    assert ranked == sorted(ranked, reverse=True), "ranked by visitors, most first"

    # The trend chart draws exactly the API's series.
    drawn = page.evaluate(
        "echarts.getInstanceByDom(document.querySelector('#trend-chart')).getOption().series[0].data")
    assert drawn == [p["visitors"] for p in ov["trend"]]
    assert sum(drawn) > 0

    # The offline demo store is flagged under device health.
    assert page.locator(f"#devices li[data-store-id='{OFFLINE_STORE}']").count() == 1


def yesterday(gateway: DemoGateway) -> tuple[str, dict, dict]:
    """Yesterday's date and its overview, for every region and for East China (the API's)."""
    with gateway.client(gateway.hq_token) as api:
        today = api.get("/overview").json()["date"]
        day = (date.fromisoformat(today) - timedelta(days=1)).isoformat()
        everyone = api.get("/overview", params={"date": day}).json()
        east = api.get("/overview", params={"date": day, "region": "East China"}).json()
    return day, everyone, east


def test_filters_change_the_numbers(open_page: OpenPage, gateway: DemoGateway) -> None:
    page = open_page("/", token=gateway.hq_token)
    day, everyone, east = yesterday(gateway)
    assert 0 < east["visitors"] < everyone["visitors"]

    loads = page.evaluate("document.body.dataset.loads")
    page.fill("#f-date", day)
    page.dispatch_event("#f-date", "change")
    page.wait_for_function(f"() => document.body.dataset.loads !== '{loads}' && "
                           "document.body.dataset.state === 'ready'")
    assert number(page.inner_text("#kpi-visitors")) == everyone["visitors"]

    loads = page.evaluate("document.body.dataset.loads")
    page.select_option("#f-region", "East China")
    page.wait_for_function(f"() => document.body.dataset.loads !== '{loads}' && "
                           "document.body.dataset.state === 'ready'")
    assert number(page.inner_text("#kpi-visitors")) == east["visitors"]
    rows = ranking(page)
    assert set(rows) == {s["store_id"] for s in east["stores"]}
    assert {r["region"] for r in rows.values()} == {"East China"}
    for s in east["stores"]:
        assert number(rows[s["store_id"]]["visitors"]) == s["visitors"]
    # The filter is kept in the address, so a reload shows the same selection.
    assert "region=East+China" in page.url or "region=East%20China" in page.url


def _kpis(page) -> tuple[float, float]:
    return (number(page.inner_text("#kpi-visitors")),
            number(page.inner_text("#kpi-lastweek").split(":")[-1]))


def _kpis_of(ov) -> tuple[int, int]:
    return ov["visitors"], ov["visitors_last_week"]


def test_period_shows_the_api_period_figures(open_page: OpenPage,
                                             gateway: DemoGateway) -> None:
    page = open_page("/", token=gateway.hq_token)
    assert page.input_value("#f-days") == "1"
    with gateway.client(gateway.hq_token) as api:
        before = api.get("/overview", params={"days": 7}).json()
        loads = page.evaluate("document.body.dataset.loads")
        page.select_option("#f-days", "7")
        page.wait_for_function(f"() => document.body.dataset.loads !== '{loads}' && "
                               "document.body.dataset.state === 'ready'")
        after = api.get("/overview", params={"days": 7}).json()
    # The comparison's last day is cut at the current local time: an hour may turn between
    # the page's request and ours, so the page must match one of the two reads.
    shown = _kpis(page)
    assert shown in (_kpis_of(before), _kpis_of(after))
    week = after if shown == _kpis_of(after) else before
    assert week["days"] == 7 and week["visitors"] > 0
    assert "7 days to" in page.inner_text("#kpi-visitors-label")
    assert page.inner_text("#ranking th[data-col=visitors_last_week]").startswith(
        "Previous 7 days")
    assert page.inner_text("#ranking th[data-col=visitors]").startswith("Visitors, 7 days")
    rows = ranking(page)
    for s in week["stores"]:
        row = rows[s["store_id"]]
        assert number(row["visitors"]) == s["visitors"], s["store_id"]
        assert number(row["visitors_last_week"]) == s["visitors_last_week"], s["store_id"]
        if s["conversion"] is not None:
            assert number(row["conversion"]) == pytest.approx(100 * s["conversion"], abs=0.051)

    # Kept in the address: a reload shows the same period.
    assert "days=7" in page.url
    page.reload()
    page.wait_for_selector("body[data-state=ready]")
    assert page.input_value("#f-days") == "7"
    assert number(page.inner_text("#kpi-visitors")) == week["visitors"]

    page.select_option("#lang-select", "zh-CN")
    assert page.inner_text("#ranking th[data-col=visitors_last_week]").startswith("此前 7 天")
    assert "7 天客流" in page.inner_text("#kpi-visitors-label")


def test_an_older_reload_answering_last_does_not_overwrite_the_newer(
    open_page: OpenPage, gateway: DemoGateway
) -> None:
    """Two filter changes in quick succession (or a filter change during a live refresh): the
    first reload's /overview answer is held back until after the second's, and the page must
    still show the figures of the filters chosen last, and say "ready" only when both are in."""
    page = open_page("/", token=gateway.hq_token)
    day, everyone, east = yesterday(gateway)
    assert east["visitors"] != everyone["visitors"]

    held: list = []

    def hold_all_regions(route) -> None:
        if "region=" in route.request.url:
            route.continue_()
        else:
            held.append(route)  # answered after the region's reload has finished

    page.route("**/api/v1/overview?*", hold_all_regions)
    loads = int(page.evaluate("document.body.dataset.loads"))
    page.fill("#f-date", day)
    page.dispatch_event("#f-date", "change")  # reload 1: every region
    page.wait_for_function("() => document.body.dataset.state === 'loading'")
    page.select_option("#f-region", "East China")  # reload 2, while 1 waits
    page.wait_for_function(f"() => Number(document.body.dataset.loads) >= {loads + 1}")
    assert page.evaluate("document.body.dataset.state") == "loading"  # reload 1 still out
    assert held, "the first reload's request was not held"
    for route in held:
        route.continue_()
    page.wait_for_function(f"() => Number(document.body.dataset.loads) >= {loads + 2} && "
                           "document.body.dataset.state === 'ready'")
    assert number(page.inner_text("#kpi-visitors")) == east["visitors"]
