"""Live pages and the one occupancy definition, against the real thing: Mosquitto, a
`storesense gateway run` process (MQTT ingest, SQLite, API, pages) and Chromium. Windows are
published after a page has loaded; the page must show them without a reload. Simulated
windows must be labelled as simulated on every page."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import msgspec
import pytest
from playwright.sync_api import Browser, Page

from dashboards.browser import READY, signed_in_context
from gateway.auth import create_token
from gateway.storage import Storage
from storesense.broker import Mosquitto, free_port
from storesense.demo_setup import wait_http
from storesense.schema import WindowAggregate
from tests.gateway.helpers import message, store, window
from tests.gateway.mqtt_helpers import count, publish_all, start_gateway, stop, write_config

pytestmark = [pytest.mark.browser, pytest.mark.broker]


def _noon_zone(now: datetime) -> str:
    """An Etc/GMT zone where it is now about noon, so the past hours of today exist."""
    offset = (12 - now.hour + 12) % 24 - 12  # -12..11 hours from UTC
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"


class LiveGateway:
    def __init__(self, base_url: str, token: str, broker: Mosquitto, db: Path) -> None:
        self.base_url, self.token, self.broker, self.db = base_url, token, broker, db
        self.api = httpx.Client(base_url=f"{base_url}/api/v1", timeout=30,
                                headers={"Authorization": f"Bearer {token}"})

    def ingest(self, windows: list[WindowAggregate]) -> None:
        """Publish through the broker and wait until the gateway has stored them all."""
        publish_all(self.broker, [message(w) for w in windows])
        ids = json.dumps(sorted(w.message_id for w in windows))
        sql = ("SELECT COUNT(*) FROM windows WHERE message_id IN "
               f"(SELECT value FROM json_each('{ids}'))")
        deadline = time.monotonic() + 30
        while (stored := count(self.db, sql)) < len(windows):
            assert time.monotonic() < deadline, f"stored {stored} of {len(windows)} windows"
            time.sleep(0.1)


@pytest.fixture
def live(tmp_path: Path, broker: Mosquitto) -> Iterator[LiveGateway]:
    db = tmp_path / "gateway.db"
    now = datetime.now(UTC)
    storage = Storage(db)
    try:
        storage.upsert_stores([store("real-1", tz=_noon_zone(now)),
                               store("sim-2", tz=_noon_zone(now))])
        token = create_token(storage, "test hq", "hq")
    finally:
        storage.close()
    port = free_port()
    proc = start_gateway(write_config(tmp_path / "gateway.toml", broker, db, "live-test",
                                      api_port=port), tmp_path / "gateway.log", api=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v1/health", 60, proc)
        yield LiveGateway(f"http://127.0.0.1:{port}", token, broker, db)
    finally:
        stop(proc)


OpenLive = Callable[..., Page]


@pytest.fixture
def open_live(browser: Browser, live: LiveGateway) -> Iterator[OpenLive]:
    contexts, errors = [], []

    def _open(path: str, lang: str = "en") -> Page:
        ctx = signed_in_context(browser, live.token, lang)
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(live.base_url + path)
        page.wait_for_selector(READY, timeout=15_000)
        return page

    yield _open
    for ctx in contexts:
        ctx.close()
    assert not errors, f"script errors in the page: {errors}"


def _zone(live: LiveGateway, store_id: str) -> ZoneInfo:
    stores = {s["store_id"]: s for s in live.api.get("/stores").json()}
    return ZoneInfo(stores[store_id]["timezone"])


def _local_today(live: LiveGateway, store_id: str) -> tuple[datetime, datetime]:
    """(local midnight of the store's today, as UTC; the start of the current minute)."""
    now = datetime.now(_zone(live, store_id))
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC), now.replace(second=0, microsecond=0).astimezone(UTC)


def _local_date(live: LiveGateway, store_id: str) -> str:
    """The store's local today (the UTC date of its local midnight is the day before
    wherever the store is east of UTC)."""
    return datetime.now(_zone(live, store_id)).date().isoformat()


def _hourly(day: datetime, flows: list[tuple[int, int]], store_id: str = "real-1",
            simulated: bool = False) -> list[WindowAggregate]:
    """One 60 s window at the start of each local hour from 08:00: (ins, outs) each."""
    out = []
    for h, (ins, outs) in enumerate(flows):
        w = window(store_id, day + timedelta(hours=8 + h), ins=ins, outs=outs)
        out.append(msgspec.structs.replace(w, simulated=simulated))
    return out


def test_in_store_now_equals_the_last_hour_of_the_chart(live: LiveGateway) -> None:
    """The live figure (/overview) and the hourly chart's in-store line (/traffic) are one
    definition: entrance ins - outs since the local day began, clamped at 0."""
    day, _ = _local_today(live, "real-1")
    # more leave than came in at 09:00 (people who came before the count began): clamped
    flows = [(5, 1), (2, 9), (12, 3), (4, 6)]
    live.ingest(_hourly(day, flows))
    series = live.api.get("/traffic", params={"store_id": "real-1", "granularity": "hour",
                                              "start": _local_date(live, "real-1")}
                         ).json()["series"]
    running, expected = 0, []
    for ins, outs in flows:
        running += ins - outs
        expected.append(max(0, running))
    assert [p["in_store"] for p in series] == expected
    now_row = live.api.get("/overview", params={"store_id": "real-1"}).json()["stores"][0]
    assert now_row["occupancy_now"] == series[-1]["in_store"] == max(0, running)
    # the camera-view figure is another measure, and stays apart
    assert all(p["occupancy_avg"] == 1.5 for p in series)


def _wait_text(page: Page, selector: str, text: str, timeout_ms: float = 20_000) -> None:
    page.wait_for_function(
        f"() => document.querySelector({json.dumps(selector)})?.textContent.trim() === "
        f"{json.dumps(text)}", timeout=timeout_ms)


def test_pages_show_new_windows_without_a_reload(live: LiveGateway,
                                                 open_live: OpenLive) -> None:
    day, _ = _local_today(live, "real-1")
    live.ingest(_hourly(day, [(6, 1)]))
    store_page = open_live("/store.html?store=real-1&live_s=1")
    overview = open_live("/?live_s=1")
    assert store_page.inner_text("#in-store-value") == "5"
    assert overview.inner_text("#kpi-occupancy") == "5"
    for page in (store_page, overview):
        page.evaluate("() => { window.__sameDocument = true; }")

    live.ingest(_hourly(day, [(0, 0), (9, 2)]))  # 09:00: 7 more in the store
    _wait_text(store_page, "#in-store-value", "12")
    _wait_text(overview, "#kpi-occupancy", "12")
    for page in (store_page, overview):
        assert page.evaluate("() => window.__sameDocument === true")  # updated, not reloaded
    ranking = overview.inner_text("#ranking tr[data-store-id=real-1] td[data-col=occupancy_now]")
    assert ranking == "12"
    # the chart's in-store line ends on the same figure
    last = store_page.evaluate(
        "() => echarts.getInstanceByDom(document.querySelector('#traffic-chart')).getOption()"
        ".series.find((s) => s.name === 'In store (entrance in − out)').data.at(-1)")
    assert last == 12


def test_simulated_data_are_labelled_on_every_page(live: LiveGateway,
                                                   open_live: OpenLive) -> None:
    day, _ = _local_today(live, "real-1")
    live.ingest(_hourly(day, [(3, 1), (2, 2)], "real-1")
                + _hourly(day, [(8, 2), (5, 5)], "sim-2", simulated=True))

    overview = open_live("/")
    note = overview.locator("#simulated-note")
    assert note.is_visible() and note.get_attribute("data-kind") == "stores"
    assert "1 of 2 stores" in note.inner_text()
    mark = overview.locator("#ranking tr[data-store-id=sim-2] .badge.sim")
    assert mark.get_attribute("data-simulated") == "all"
    assert mark.evaluate("e => getComputedStyle(e, '::after').content") == '"simulated"'
    assert overview.locator("#ranking tr[data-store-id=real-1] .badge.sim").count() == 0
    alerts = open_live("/alerts.html").locator("#simulated-note")
    assert alerts.is_visible() and "1 of 2 stores" in alerts.inner_text()

    today = _local_date(live, "sim-2")
    for path in ("/store.html?store=sim-2",
                 f"/heatmap.html?store=sim-2&b_start={today}&b_end={today}"):
        page = open_live(path)
        box = page.locator("#simulated-note")
        assert box.is_visible(), path
        assert box.get_attribute("data-kind") == "all", path
        assert "simulator" in box.inner_text(), path
    real = open_live("/store.html?store=real-1")
    assert real.locator("#simulated-note").is_hidden()

    zh = open_live("/store.html?store=sim-2", lang="zh-CN")
    assert "模拟" in zh.inner_text("#simulated-note")
    zh_overview = open_live("/", lang="zh-CN")
    mark = zh_overview.locator("#ranking tr[data-store-id=sim-2] .badge.sim")
    assert mark.evaluate("e => getComputedStyle(e, '::after').content") == '"模拟"'
