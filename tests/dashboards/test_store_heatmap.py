"""Store page and merchandiser heatmap view in a real browser against a real gateway."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest

from dashboards.demo import (
    FLOORPLAN_STORE,
    NO_POS_STORE,
    OFFLINE_STORE,
    PLAN_HOMOGRAPHY,
    DemoGateway,
)
from tests.dashboards.conftest import YESTERDAY, OpenPage, number

pytestmark = pytest.mark.browser

NON_WHITE_PIXELS = """(sel) => {
  const c = document.querySelector(sel + ' canvas');
  if (!c) return -1;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] < 235 || d[i + 1] < 235 || d[i + 2] < 235) n++;
  return n;
}"""


def test_store_page_shows_zones_demographics_and_conversion(
        open_page: OpenPage, gateway: DemoGateway) -> None:
    store = FLOORPLAN_STORE
    page = open_page(f"/store.html?store={store}&start={YESTERDAY}", token=gateway.hq_token)
    start, end = page.input_value("#f-start"), page.input_value("#f-end")
    with gateway.client(gateway.hq_token) as api:
        zones = api.get(f"/stores/{store}/zones", params={"start": start, "end": end}).json()
        demo = api.get(f"/stores/{store}/demographics",
                       params={"start": start, "end": end}).json()
        traffic = api.get("/traffic", params={"store_id": store, "start": start, "end": end,
                                              "granularity": "hour"}).json()
    assert "Shanghai Nanjing Rd" in page.inner_text("#store-name")
    drawn_in = page.evaluate("echarts.getInstanceByDom(document.querySelector('#traffic-chart'))"
                             ".getOption().series[0].data")
    assert drawn_in == [p["in"] for p in traffic["series"]]
    assert sum(drawn_in) > 0

    for z in zones["zones"]:
        row = page.locator(f"#zones-table tr[data-zone='{z['zone']}'] td").all_inner_texts()
        assert number(row[1]) == z["entries"]
        assert number(row[3]) == pytest.approx(100 * z["stop_rate"], abs=0.051)
    assert page.locator("#flow-chart canvas").count() == 1

    # Small demographic cells (and their complements) are shown as "hidden", never a number.
    hidden = [(dim, k) for dim in ("age_bands", "genders") for k, v in demo[dim].items()
              if v is None]
    assert hidden, "the demo data has at least one suppressed cell (age 'unknown')"
    assert {f"{dim}.{key}" for dim, key in hidden} == set(demo["suppressed"])
    for dim, key in hidden:
        cells = page.locator(f"#demo table[data-dim='{dim}'] tr[data-group='{key}'] td"
                             ).all_inner_texts()
        assert cells[1] == "hidden", (key, cells)
    for dim in ("age_bands", "genders"):
        for key, v in demo[dim].items():
            if v is not None:
                cells = page.locator(f"#demo table[data-dim='{dim}'] tr[data-group='{key}'] td"
                                     ).all_inner_texts()
                assert number(cells[1]) == v, (dim, key)
    assert "fewer than 5" in page.inner_text("#demo-note")
    assert page.locator("#conversion-chart canvas").count() == 1


def test_store_page_says_what_is_missing(open_page: OpenPage, gateway: DemoGateway) -> None:
    page = open_page(f"/store.html?store={NO_POS_STORE}", token=gateway.hq_token)
    assert "No POS data" in page.inner_text("#conversion-chart")
    page = open_page(f"/store.html?store={OFFLINE_STORE}", token=gateway.hq_token)
    assert page.locator("#camera-warning").is_visible()
    assert "Camera offline" in page.inner_text("#camera-warning")
    # A day before any data: every chart says so instead of drawing an empty frame.
    page = open_page(f"/store.html?store={FLOORPLAN_STORE}&start=2020-01-06&end=2020-01-06",
                     token=gateway.hq_token)
    assert "No data yet" in page.inner_text("#traffic-chart")
    assert "No zone visits" in page.inner_text("#zones-chart")
    assert "No zone-to-zone movement" in page.inner_text("#flow-chart")
    assert "No demographic" in page.inner_text("#demo")
    assert page.locator("#traffic-chart canvas").count() == 0


def test_heatmap_view_renders_compares_and_exports(
        open_page: OpenPage, gateway: DemoGateway) -> None:
    store = FLOORPLAN_STORE
    page = open_page(f"/heatmap.html?store={store}", token=gateway.hq_token)
    for panel in ("#heat-a", "#heat-b", "#heat-d"):
        assert page.evaluate(NON_WHITE_PIXELS, panel) > 1000, panel
    assert page.locator("#plan-note").is_hidden(), "sh-001 has a floor plan"
    with gateway.client(gateway.hq_token) as api:
        camera = page.input_value("#f-camera")
        # the page's "after" period: whole past days (the store's today may hold minutes)
        shown = {"start": page.input_value("#b-start"), "end": page.input_value("#b-end")}
        heat = api.get(f"/stores/{store}/heatmap", params={**shown, "camera_id": camera})
    assert heat.status_code == 200, heat.text
    assert heat.json()["space"] == "floor", "the floor camera's heatmap is mapped onto the plan"

    a = {"start": page.input_value("#a-start"), "end": page.input_value("#a-end")}
    b = {"start": page.input_value("#b-start"), "end": page.input_value("#b-end")}
    assert date.fromisoformat(a["end"]) < date.fromisoformat(b["start"])
    with gateway.client(gateway.hq_token) as api:
        za = {z["zone"]: z for z in api.get(f"/stores/{store}/zones", params=a).json()["zones"]}
        zb = {z["zone"]: z for z in api.get(f"/stores/{store}/zones", params=b).json()["zones"]}
    assert za and set(za) == set(zb)
    for zone in za:
        row = page.locator(f"#zone-compare tr[data-zone='{zone}']")
        assert number(row.locator("[data-col=entries-a]").inner_text()) == za[zone]["entries"]
        assert number(row.locator("[data-col=entries-b]").inner_text()) == zb[zone]["entries"]
        assert number(row.locator("[data-col=stop-b]").inner_text()) == pytest.approx(
            100 * zb[zone]["stop_rate"], abs=0.051)

    with page.expect_download() as dl:
        page.click("#export-csv")
    text = dl.value.path().read_text(encoding="utf-8-sig")
    rows = {r["zone"]: r for r in csv.DictReader(io.StringIO(text))}
    assert set(rows) == set(za)
    for zone, r in rows.items():
        assert int(r["entries_before"]) == za[zone]["entries"]
        assert int(r["entries_after"]) == zb[zone]["entries"]
        assert float(r["stop_rate_after"]) == pytest.approx(zb[zone]["stop_rate"], abs=1e-4)

    with page.expect_download() as dl:
        page.click("#export-png")
    png = dl.value.path().read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000

    # The entrance camera has no heatmap: the panels give the API's reason.
    with gateway.client(gateway.hq_token) as api:
        missing = api.get(f"/stores/{store}/heatmap", params={**b, "camera_id": "entrance"})
    assert missing.status_code == 404
    loads = page.evaluate("document.body.dataset.loads")
    page.select_option("#f-camera", "entrance")
    page.wait_for_function(f"() => document.body.dataset.loads !== '{loads}' && "
                           "document.body.dataset.state === 'ready'")
    assert "No heatmap for this camera" in page.inner_text("#heat-b")
    assert missing.json()["detail"] in page.inner_text("#heat-b")

    # A plan, but a camera with no homography to it: not drawn over the plan, and said so.
    page.select_option("#f-camera", camera)
    page.wait_for_function("() => document.body.dataset.state === 'ready'")
    with gateway.client(gateway.hq_token) as api:
        record = next(r for r in api.get("/stores").json() if r["store_id"] == store)
        body = {k: v for k, v in record.items() if k not in ("store_id", "has_floorplan")}
        assert api.put(f"/stores/{store}", json=body).status_code == 200  # cameras, no matrix
        try:
            page.reload()
            page.wait_for_function("() => document.body.dataset.state === 'ready'")
            assert page.locator("#plan-note").is_visible()
            assert "homography" in page.inner_text("#plan-note")
            assert page.evaluate(NON_WHITE_PIXELS, "#heat-b") > 1000
        finally:
            for cam in body["cameras"]:
                if cam["camera_id"] == camera:
                    cam["homography"] = PLAN_HOMOGRAPHY
            assert api.put(f"/stores/{store}", json=body).status_code == 200

    # Without a floor plan the grid is drawn, with a note saying why.
    other = next(s.store_id for s in gateway.stores if s.store_id != store)
    page = open_page(f"/heatmap.html?store={other}", token=gateway.hq_token)
    assert page.locator("#plan-note").is_visible()
    assert page.evaluate(NON_WHITE_PIXELS, "#heat-b") > 1000


@pytest.mark.parametrize(("lang", "says"), [("en", "No difference"), ("zh-CN", "无差异")])
def test_the_same_period_twice_shows_no_difference_not_no_data(
        open_page: OpenPage, gateway: DemoGateway, lang: str, says: str) -> None:
    days = {"a_start": "{s}", "a_end": "{e}", "b_start": "{s}", "b_end": "{e}"}
    end = date.fromisoformat(YESTERDAY)
    start = (end - timedelta(days=6)).isoformat()
    query = "&".join(f"{k}={v.format(s=start, e=YESTERDAY)}" for k, v in days.items())
    page = open_page(f"/heatmap.html?store={FLOORPLAN_STORE}&{query}", token=gateway.hq_token,
                     lang=lang)
    for panel in ("#heat-a", "#heat-b"):
        assert page.evaluate(NON_WHITE_PIXELS, panel) > 1000, panel  # both periods have data
    text = page.inner_text("#heat-d")
    assert says in text, text
