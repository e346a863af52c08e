"""CSV downloads on every page, in a real browser: each card's button gives a UTF-8 file with a
byte-order mark (Excel on a Chinese Windows reads Chinese names right), the figures the API
gives, suppressed demographic cells empty, and formulas from devices neutralised (also on
the alerts page)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from playwright.sync_api import Browser, Page

from dashboards.browser import signed_in_context
from dashboards.demo import FLOORPLAN_STORE, DemoGateway, serve
from gateway import alerts_store
from gateway.alerts import Alert, Changes
from gateway.auth import create_token
from gateway.storage import Storage
from storesense.schema import utcnow
from storesense.simulate import DEMO_STORES
from tests.dashboards.conftest import YESTERDAY, OpenPage, wait_settled
from tests.dashboards.test_hostile import AT, EVIL, FORMULA, MINUS, ZONES, _seed

pytestmark = pytest.mark.browser

BOM = b"\xef\xbb\xbf"
START = (date.fromisoformat(YESTERDAY) - timedelta(days=6)).isoformat()
Rows = list[dict[str, str]]


def download(page: Page, button: str) -> tuple[str, Rows]:
    """Click a CSV button; (file name, rows) of what the browser saved."""
    with page.expect_download() as dl:
        page.click(button)
    raw = dl.value.path().read_bytes()
    assert raw.startswith(BOM), raw[:20]
    text = raw[len(BOM):].decode("utf-8")
    assert text.endswith("\r\n")
    return dl.value.suggested_filename, list(csv.DictReader(io.StringIO(text)))


def buttons(page: Page) -> list[str]:
    ids: list[str] = page.evaluate(
        "() => [...document.querySelectorAll('button.csv-button, #export-csv')].map(b => b.id)")
    return ids


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_overview_csvs_hold_what_the_page_shows(open_page: OpenPage, gateway: DemoGateway,
                                                lang: str) -> None:
    page = open_page(f"/?date={YESTERDAY}&days=7", token=gateway.hq_token, lang=lang)
    assert buttons(page) == ["csv-trend", "csv-members", "csv-weather", "csv-ranking",
                             "csv-devices"]
    assert page.inner_text("#csv-ranking") == "CSV"
    with gateway.client(gateway.hq_token) as api:
        ov = api.get("/overview", params={"date": YESTERDAY, "days": 7}).json()
        devices = api.get("/devices").json()
    name, stores = download(page, "#csv-ranking")
    assert name.startswith("stores-") and name.endswith(f"_{YESTERDAY}.csv")
    # sorted as on screen (visitors, most first), both names whatever the language
    assert [r["store_id"] for r in stores] == [
        s["store_id"] for s in sorted(ov["stores"], key=lambda s: -s["visitors"])]
    by_id = {s["store_id"]: s for s in ov["stores"]}
    for r in stores:
        s = by_id[r["store_id"]]
        assert int(r["visitors"]) == s["visitors"] and r["period_start"] == ov["period_start"]
        assert r["conversion"] == ("" if s["conversion"] is None else str(s["conversion"]))
    assert {r["name_zh"] for r in stores} == {s.name_zh for s in DEMO_STORES}
    _, trend = download(page, "#csv-trend")
    assert [(r["date"], int(r["visitors"])) for r in trend] == [
        (p["date"], p["visitors"]) for p in ov["trend"]]
    _, devs = download(page, "#csv-devices")
    assert len(devs) == sum(max(1, len(d["cameras"])) for d in devices)
    assert {r["online"] for r in devs} == {"true", "false"}
    _, members = download(page, "#csv-members")
    assert members[0]["store_id"] == "all" and float(members[0]["member_share"]) > 0
    _, weather = download(page, "#csv-weather")
    assert [r["weather"] for r in weather] == ["rainy", "dry", "snow"]


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_store_page_csvs_hold_what_the_page_shows(open_page: OpenPage, gateway: DemoGateway,
                                                  lang: str) -> None:
    store = FLOORPLAN_STORE
    page = open_page(f"/store.html?store={store}&start={START}&end={YESTERDAY}",
                     token=gateway.hq_token, lang=lang)
    assert buttons(page) == ["csv-traffic", "csv-zones", "csv-flow", "csv-demographics",
                             "csv-conversion", "csv-visitors", "csv-queues", "csv-members",
                             "csv-weather", "csv-cameras"]
    span = {"start": START, "end": YESTERDAY}
    with gateway.client(gateway.hq_token) as api:
        traffic = api.get("/traffic", params={**span, "store_id": store,
                                              "granularity": "day"}).json()
        zones = api.get(f"/stores/{store}/zones", params=span).json()["zones"]
        demo = api.get(f"/stores/{store}/demographics", params=span).json()
        conversion = api.get("/conversion", params={**span, "store_id": store,
                                                    "granularity": "day"}).json()
    name, rows = download(page, "#csv-traffic")
    assert name == f"traffic-{store}-{START}_{YESTERDAY}.csv"
    assert [(r["period"], int(r["in"]), int(r["visitors"])) for r in rows] == [
        (p["period"], p["in"], p["visitors"]) for p in traffic["series"]]
    assert {r["store_id"] for r in rows} == {store} and rows[0]["granularity"] == "day"
    _, rows = download(page, "#csv-zones")
    assert {r["zone"]: int(r["entries"]) for r in rows} == {z["zone"]: z["entries"]
                                                            for z in zones}
    _, rows = download(page, "#csv-demographics")
    for r in rows:
        n = demo[r["dimension"]][r["group"]]
        assert r["visitors"] == ("" if n is None else str(n))  # a suppressed cell stays empty
        assert r["suppressed"] == ("true" if n is None else "false")
    _, rows = download(page, "#csv-conversion")
    assert [r["transactions"] for r in rows] == [str(p["transactions"])
                                                 for p in conversion["series"]]
    _, rows = download(page, "#csv-visitors")
    with gateway.client(gateway.hq_token) as api:
        visitors = api.get("/visitors", params={**span, "store_id": store,
                                                "granularity": "day"}).json()
    assert [(r["period"], int(r["passes"])) for r in rows] == [
        (p["period"], p["passes"]) for p in visitors["series"]]
    for button in ("#csv-flow", "#csv-queues", "#csv-members", "#csv-weather", "#csv-cameras"):
        _, rows = download(page, button)
        assert rows, button


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_heatmap_csv_keeps_its_columns(open_page: OpenPage, gateway: DemoGateway,
                                       lang: str) -> None:
    page = open_page(f"/heatmap.html?store={FLOORPLAN_STORE}", token=gateway.hq_token,
                     lang=lang)
    assert buttons(page) == ["export-csv"]
    name, rows = download(page, "#export-csv")
    assert name.startswith(f"heatmap-{FLOORPLAN_STORE}-") and rows
    assert all(float(r["entries_before"]) >= 0 for r in rows)


@pytest.fixture(scope="module")
def hostile_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    storage = Storage(tmp_path_factory.mktemp("hostile-csv") / "gateway.db")
    try:
        _seed(storage, utcnow())
        with storage.transaction() as conn:  # a device id that is a formula, in an alert
            alerts_store.apply(conn, Changes(raised=(Alert(
                "device_offline", EVIL, FORMULA, {"last_seen": "x", "state": "offline",
                                                  "minutes": 12.5}),)), "2026-12-06T10:00:00Z")
        token = create_token(storage, "HQ", "hq")
        with serve(storage) as url:
            yield url, token
    finally:
        storage.close()


def test_formulas_from_the_registry_and_devices_are_neutralised(
        browser: Browser, hostile_url: tuple[str, str]) -> None:
    url, token = hostile_url
    ctx = signed_in_context(browser, token, "en")
    try:
        page = ctx.new_page()
        page.goto(f"{url}/")
        wait_settled(page)
        _, stores = download(page, "#csv-ranking")
        assert {r["franchisee"] for r in stores} == {"'" + FORMULA}
        page.goto(f"{url}/store.html?store={EVIL}&start={YESTERDAY}&end={YESTERDAY}")
        wait_settled(page)
        _, zones = download(page, "#csv-zones")
        neutral = {"'" + z if z[0] in "=+-@" else z for z in ZONES}
        assert {r["zone"] for r in zones} == neutral
        assert {"'" + FORMULA, "'" + AT, "'" + MINUS} <= neutral
        assert all(float(r["entries"]) > 0 for r in zones)  # numbers are left as numbers
        page.goto(f"{url}/alerts.html")
        wait_settled(page)
        assert buttons(page) == ["csv-alerts"]
        name, alerts = download(page, "#csv-alerts")
        assert name == "alerts-open-all.csv"
        assert [(r["kind"], r["store_id"], r["subject"]) for r in alerts] == [
            ("device_offline", EVIL, "'" + FORMULA)]
        assert json.loads(alerts[0]["detail"])["minutes"] == 12.5
    finally:
        ctx.close()
