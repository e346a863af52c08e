"""Hostile device strings in a real browser (issue 18): a gateway whose store, zone, line and
camera names and device errors are HTML and spreadsheet payloads; the pages must show them
as text, run nothing, pass their Content-Security-Policy, export neutralised CSV, and live
with a floor plan that does not load."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise

import pytest
from playwright.sync_api import Browser, Page

from dashboards.browser import signed_in_context
from dashboards.demo import FLOORPLAN_STORE, PLAN_HOMOGRAPHY, DemoGateway, serve
from gateway.auth import create_token
from gateway.storage import Storage
from storesense.schema import (
    DWELL_BIN_EDGES_S,
    CameraStatus,
    DeviceStatus,
    Heatmap,
    LineCount,
    OccupancyStats,
    Transition,
    WindowAggregate,
    ZoneStats,
    message_id,
    utcnow,
)
from tests.dashboards.conftest import YESTERDAY, OpenPage, wait_settled

pytestmark = pytest.mark.browser

# Each sets a mark a test can see if it ever runs as script.
IMG = "<img src=x onerror=\"window.__pwned=1;document.title='pwned'\">"
SVG = "<svg onload=\"window.__pwned='svg'\">"
FORMULA = '=HYPERLINK("http://evil.test","click")'
AT, MINUS = "@SUM(1+1)", "-2+3 zone"
ZONES = (IMG, SVG, FORMULA, AT, MINUS)
ERROR = "<b onmouseover=\"window.__pwned='err'\">camera lost</b>"
EVIL, BROKEN_PLAN = "evil-1", "evil-2"
# Pages record every CSP violation, from their first script on.
WATCH_CSP = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
             "(e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));")


def _zone(name: str, visits: int) -> ZoneStats:
    hist = [0] * len(DWELL_BIN_EDGES_S)
    hist[3] = visits
    return ZoneStats(zone=name, entries=visits, visits=visits, stops=visits // 2,
                     dwell_total_s=15.0 * visits, dwell_mean_s=15.0, dwell_p50_s=15.0,
                     dwell_p90_s=15.0, dwell_histogram=hist,
                     occupancy=OccupancyStats(avg=1.0, max=2))


def _windows(store_id: str, day: date) -> list[WindowAggregate]:
    start = datetime.combine(day, time(10), UTC)
    end = start + timedelta(hours=1)
    door = WindowAggregate(
        message_id=message_id(store_id, "door", start), store_id=store_id, camera_id="door",
        window_start=start, window_end=end, frames=100, occupancy=OccupancyStats(avg=1, max=3),
        lines=[LineCount(line=IMG, in_count=12, out_count=9)])
    floor = WindowAggregate(
        message_id=message_id(store_id, "floor", start), store_id=store_id, camera_id="floor",
        window_start=start, window_end=end, frames=100, occupancy=OccupancyStats(avg=1, max=3),
        zones=[_zone(z, 6 + i) for i, z in enumerate(ZONES)],
        transitions=[Transition(from_zone=a, to_zone=b, count=4)
                     for a, b in pairwise(ZONES)],
        heatmap=Heatmap(cols=4, rows=2, cells=[5.0, 1.0, 0.0, 2.0, 3.0, 0.0, 8.0, 1.0]))
    return [door, floor]


def _seed(storage: Storage, now: datetime) -> None:
    cams = [{"camera_id": "door", "role": "entrance", "name": IMG},
            {"camera_id": "floor", "role": "floor", "name": SVG, "homography": PLAN_HOMOGRAPHY}]
    storage.upsert_stores([
        {"store_id": sid, "name": f"{IMG} {sid}", "name_zh": f"{SVG} {sid}", "region": SVG,
         "franchisee": FORMULA, "timezone": "UTC", "cameras": cams}
        for sid in (EVIL, BROKEN_PLAN)])
    today = now.date()
    for sid in (EVIL, BROKEN_PLAN):
        for back in (1, 2, 8, 9):
            storage.store_windows(_windows(sid, today - timedelta(days=back)))
    status = DeviceStatus(
        store_id=EVIL, device_id="edge-1", state="online", sent_at=now,
        cameras=[CameraStatus(camera_id="floor", state="failed", since=now, fps=0.0, lag_s=0.0,
                              frames_total=1, dropped_frames=0, last_error=ERROR)])
    storage.ingest([(storage.topics.status(EVIL, "edge-1"), status.to_json())])
    # stored before uploads were checked: a PNG signature and then nothing that decodes
    storage.set_floorplan(BROKEN_PLAN, b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, hq token) of a real gateway holding the hostile stores."""
    storage = Storage(tmp_path_factory.mktemp("hostile") / "gateway.db")
    try:
        _seed(storage, utcnow())
        token = create_token(storage, "HQ", "hq")
        with serve(storage) as url:
            yield url, token
    finally:
        storage.close()


Open = Callable[..., Page]


@pytest.fixture
def open_hostile(browser: Browser, hostile: tuple[str, str]) -> Iterator[Open]:
    """open_hostile(path, lang) -> a settled page of the hostile gateway; afterwards no
    script may have run from a payload, and no page error or CSP violation happened."""
    url, token = hostile
    pages: list[Page] = []
    errors: list[str] = []

    def _open(path: str, lang: str = "en") -> Page:
        ctx = signed_in_context(browser, token, lang)
        ctx.add_init_script(WATCH_CSP)
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        response = page.goto(url + path)
        assert response is not None and "script-src 'self'" in response.headers[
            "content-security-policy"]
        wait_settled(page)
        assert page.evaluate("document.body.dataset.state") == "ready", page.inner_text("body")
        pages.append(page)
        return page

    yield _open
    for page in pages:
        assert page.evaluate("window.__pwned") is None, "a payload ran as script"
        assert page.title() != "pwned"
        assert page.evaluate("window.__csp") == [], "CSP violations"
        page.context.close()
    assert not errors, errors


def _tooltip(page: Page, chart: str, action: str) -> str:
    """Show a chart's tooltip through ECharts (as hovering does) and return its text, after
    checking that no element came out of a payload."""
    page.evaluate(f"""() => {{
        const box = document.querySelector('{chart}');
        // the tooltip is the container's one child that is not the canvas's: emptied first
        // so that the text read below is this tooltip's
        for (const div of box.querySelectorAll(':scope > div')) {{
          if (!div.querySelector('canvas')) div.replaceChildren();
        }}
        echarts.getInstanceByDom(box).dispatchAction({action});
    }}""")
    page.wait_for_function(f"() => document.querySelector('{chart}').textContent.trim() !== ''")
    for tag in ("img", "svg", "b"):
        assert page.locator(f"{chart} {tag}").count() == 0, f"{tag} element in {chart}"
    return page.inner_text(chart)


def _hover_flow(page: Page, i: int) -> str:
    """Move the mouse onto the Sankey's i-th flow band; its tooltip's text."""
    page.locator("#flow-chart").scroll_into_view_if_needed()
    x, y = page.evaluate(f"""() => {{
        const box = document.querySelector('#flow-chart');
        const series = echarts.getInstanceByDom(box).getModel().getSeriesByIndex(0);
        const el = series.getEdgeData().getItemGraphicEl({i});
        const s = el.shape;
        const r = box.getBoundingClientRect();
        for (const div of box.querySelectorAll(':scope > div')) {{
          if (!div.querySelector('canvas')) div.replaceChildren();
        }}
        // a quarter down the band: its middle is where the node labels are drawn
        const [x, y] = el.transformCoordToGlobal((s.x1 + s.x2) / 2,
                                                 (s.y1 + s.y2) / 2 + s.extent / 4);
        return [r.left + x, r.top + y];
    }}""")
    page.mouse.move(x, y)
    # a function, not an expression: Playwright evals expressions, which the CSP refuses
    page.wait_for_function("() => document.querySelector('#flow-chart').textContent"
                           ".includes('→')")
    for tag in ("img", "svg", "b"):
        assert page.locator(f"#flow-chart {tag}").count() == 0
    return page.inner_text("#flow-chart")


def test_store_page_shows_device_names_as_text_in_tooltips(open_hostile: Open) -> None:
    page = open_hostile(f"/store.html?store={EVIL}&start={YESTERDAY}&end={YESTERDAY}")
    names = page.evaluate("""echarts.getInstanceByDom(document.querySelector('#flow-chart'))
                             .getOption().series[0].data.map((d) => d.name)""")
    assert sorted(names) == sorted(ZONES)
    for i, name in enumerate(names):  # each zone's node, then each flow between two zones
        text = _tooltip(page, "#flow-chart", f"{{type: 'showTip', seriesIndex: 0, "
                                             f"dataIndex: {i}}}")
        assert name in text, (name, text)
    for i in range(len(ZONES) - 1):  # a flow's tooltip comes from hovering it
        text = _hover_flow(page, i)
        assert f"{ZONES[i]} → {ZONES[i + 1]}" in text, text
    for i, name in enumerate(page.evaluate(
            "echarts.getInstanceByDom(document.querySelector('#zones-chart'))"
            ".getOption().yAxis[0].data")):
        text = _tooltip(page, "#zones-chart", f"{{type: 'showTip', seriesIndex: 0, "
                                              f"dataIndex: {i}}}")
        assert name in text, (name, text)
    assert _tooltip(page, "#traffic-chart", "{type: 'showTip', seriesIndex: 0, dataIndex: 0}")
    tables = page.inner_text("#zones-table") + page.inner_text("#cameras")
    for text in (*ZONES, ERROR):
        assert text in tables, text
    assert IMG in page.inner_text("#store-name")


def test_overview_shows_device_errors_and_names_as_text(open_hostile: Open) -> None:
    page = open_hostile("/")
    body = page.inner_text("body")
    assert ERROR in body and f"{IMG} {EVIL}" in body and SVG in body
    assert _tooltip(page, "#trend-chart", "{type: 'showTip', seriesIndex: 0, dataIndex: 27}")


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_heatmap_page_names_as_text_and_formulas_neutralised_in_csv(open_hostile: Open,
                                                                    lang: str) -> None:
    page = open_hostile(f"/heatmap.html?store={EVIL}", lang)
    options = page.locator("#f-camera option").all_inner_texts()
    assert f"{IMG} (door)" in options and f"{SVG} (floor)" in options
    assert all(z in page.inner_text("#zone-compare") for z in ZONES)
    data = page.evaluate("echarts.getInstanceByDom(document.querySelector('#heat-b'))"
                         ".getOption().series[0].data.length")
    assert data > 0
    assert _tooltip(page, "#heat-b", "{type: 'showTip', seriesIndex: 0, dataIndex: 0}")
    rows = list(csv.DictReader(io.StringIO(page.evaluate("window.storesenseHeatmap.csvText()"))))
    zones = {r["zone"] for r in rows}
    # formulas get a leading quote; the HTML payloads are not formulas and stay as they are
    assert zones == {IMG, SVG, "'" + FORMULA, "'" + AT, "'" + MINUS}
    assert all(r["store_id"] == EVIL and r["camera_id"] == "floor" for r in rows)
    assert all(float(r["entries_before"]) > 0 for r in rows)  # numbers are left as numbers


@pytest.mark.parametrize(("lang", "words"), [("en", "could not be loaded"),
                                             ("zh-CN", "无法加载")])
def test_a_floor_plan_that_does_not_load_leaves_the_page_working(
        open_hostile: Open, lang: str, words: str) -> None:
    page = open_hostile(f"/heatmap.html?store={BROKEN_PLAN}", lang)
    assert page.locator("#plan-note").is_visible()
    assert words in page.inner_text("#plan-note")
    assert page.evaluate("echarts.getInstanceByDom(document.querySelector('#heat-b'))"
                         ".getOption().series[0].data.length") > 0


def _csp_violations(page: Page) -> list[str]:
    got: list[str] = page.evaluate("window.__csp")
    return got


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_demo_pages_pass_their_csp_with_charts_drawn(open_page: OpenPage, gateway: DemoGateway,
                                                     lang: str) -> None:
    paths = {"/": ["#trend-chart"],
             f"/store.html?store={FLOORPLAN_STORE}&start={YESTERDAY}":
                 ["#traffic-chart", "#zones-chart", "#flow-chart", "#conversion-chart"],
             f"/heatmap.html?store={FLOORPLAN_STORE}": ["#heat-a", "#heat-b", "#heat-d"]}
    for path, charts in paths.items():
        page = open_page(path, token=gateway.hq_token, lang=lang, wait=False)
        page.context.add_init_script(WATCH_CSP)  # from the reload's first script on
        console: list[str] = []
        page.on("console", lambda m, seen=console: seen.append(m.text))
        response = page.reload()
        assert response is not None and "script-src 'self'" in response.headers[
            "content-security-policy"]
        wait_settled(page)
        assert page.evaluate("document.body.dataset.state") == "ready", path
        for chart in charts:
            assert page.locator(f"{chart} canvas").count() == 1, (path, chart)
            _tooltip(page, chart, "{type: 'showTip', seriesIndex: 0, dataIndex: 0}")
        if path.startswith("/heatmap"):
            page.click("#export-png")  # decodes a data: URL, which connect-src would refuse
            page.evaluate("window.storesenseHeatmap.pngDataUrl()")
        assert _csp_violations(page) == [], path
        assert not [m for m in console if "Content Security Policy" in m], (path, console)
