"""The REST API of docs/api.md on real storage: scopes, error shape, endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import cv2
import msgspec
import numpy as np
import pytest
from fastapi.testclient import TestClient

from gateway.api import create_app
from gateway.auth import create_token, revoke_token
from gateway.config import GatewaySettings
from gateway.registry import CameraRecord
from gateway.storage import Storage
from storesense.schema import DeviceStatus, Heatmap
from tests.gateway.helpers import TOPICS, store, window

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
DAY = "2026-11-23"


@pytest.fixture
def api(storage: Storage) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    storage.clock = lambda: NOW
    storage.upsert_stores([
        store("a1", region="Europe", franchisee="fa"),
        store("a2", region="Asia", franchisee="fa", tz="Asia/Tokyo"),
        store("b1", region="Europe", franchisee="fb"),
    ])
    t = datetime(2026, 11, 23, 10, tzinfo=UTC)
    # demographics are votes of the entrance camera's visitors (issue 16)
    storage.store_windows([window("a1", t, ins=10, ages={"<25": 7, "65+": 2}),
                           window("a2", t, ins=20), window("b1", t, ins=40),
                           window("a1", t, camera_id="floor", ins=0, outs=0, zone_visits=3)])
    status = DeviceStatus(store_id="a1", device_id="box", state="online",
                          sent_at=NOW - timedelta(seconds=5))
    storage.ingest([(TOPICS.status("a1", "box"), status.to_json())])
    tokens = {name: {"Authorization": f"Bearer {create_token(storage, name, scope)}"}
              for name, scope in (("hq", "hq"), ("fa", "franchisee:fa"),
                                  ("fb", "franchisee:fb"), ("eu", "region:Europe"))}
    app = create_app(GatewaySettings(), storage, clock=lambda: NOW)
    with TestClient(app) as client:
        yield client, tokens


def test_missing_unknown_and_revoked_tokens_are_401(api, storage: Storage) -> None:
    client, tok = api
    assert client.get("/api/v1/health").json()["status"] == "ok"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        r = client.get("/api/v1/stores", headers=headers)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert revoke_token(storage, "fb") == 1
    assert client.get("/api/v1/stores", headers=tok["fb"]).status_code == 401
    hashes = [r[0] for r in storage.read().execute("SELECT token_sha256 FROM tokens")]
    assert all(tok["hq"]["Authorization"].split()[1] not in h for h in hashes)


@pytest.mark.parametrize("path", [
    "/api/v1/stores/b1/zones", "/api/v1/stores/b1/transitions", "/api/v1/stores/b1/heatmap",
    "/api/v1/stores/b1/demographics", "/api/v1/stores/b1/floorplan",
    "/api/v1/traffic?store_id=b1", "/api/v1/overview?store_id=b1",
    "/api/v1/conversion?store_id=b1", "/api/v1/devices?store_id=b1",
])
def test_franchisee_gets_403_for_another_franchisees_store(api, path: str) -> None:
    client, tok = api
    r = client.get(path, headers=tok["fa"])
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "forbidden" and "b1" in r.json()["detail"]


def test_multi_store_endpoints_only_include_the_scope(api) -> None:
    client, tok = api
    q = f"start={DAY}&end={DAY}"
    cases = {"hq": (["a1", "a2", "b1"], 70), "fa": (["a1", "a2"], 30), "fb": (["b1"], 40),
             "eu": (["a1", "b1"], 50)}
    for name, (ids, visitors) in cases.items():
        h = tok[name]
        assert [s["store_id"] for s in client.get("/api/v1/stores", headers=h).json()] == ids
        assert client.get("/api/v1/me", headers=h).json()["store_ids"] == ids
        series = client.get(f"/api/v1/traffic?granularity=day&{q}", headers=h).json()["series"]
        assert sum(p["visitors"] for p in series) == visitors
        ov = client.get(f"/api/v1/overview?date={DAY}", headers=h).json()
        assert [s["store_id"] for s in ov["stores"]] == ids
        assert ov["visitors"] == visitors
    devs = client.get("/api/v1/devices", headers=tok["fb"]).json()
    assert devs == []
    assert [d["online"] for d in client.get("/api/v1/devices", headers=tok["fa"]).json()] == [
        True]


def test_hq_only_endpoints_refuse_scoped_tokens(api) -> None:
    client, tok = api
    assert client.get("/api/v1/deadletters", headers=tok["fa"]).status_code == 403
    r = client.put("/api/v1/stores/a1", headers=tok["fa"],
                   json={"name": "x", "timezone": "UTC"})
    assert r.status_code == 403
    assert client.post("/api/v1/pos", headers=tok["fa"], json=[]).status_code == 403


def test_errors_are_json_with_reason(api) -> None:
    client, tok = api
    h = tok["hq"]
    r = client.get("/api/v1/traffic?granularity=week", headers=h)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    assert "granularity" in r.json()["detail"]
    r = client.get("/api/v1/traffic?start=2026-11-23&end=2026-11-01", headers=h)
    assert r.status_code == 400 and "after" in r.json()["detail"]
    r = client.put("/api/v1/stores/x9", headers=h, json={"name": "X", "timezone": "Mars/X"})
    assert r.status_code == 422 and "time zone" in r.json()["detail"]
    assert client.get("/api/v1/stores/zz/zones", headers=h).status_code == 404
    r = client.get("/api/v1/stores/a2/heatmap", headers=h)
    assert r.status_code == 404 and "heatmap" in r.json()["detail"]


def test_store_page_endpoints(api) -> None:
    client, tok = api
    h = tok["fa"]
    q = f"?start={DAY}&end={DAY}"
    zones = client.get(f"/api/v1/stores/a1/zones{q}", headers=h).json()["zones"]
    assert [(z["zone"], z["visits"]) for z in zones] == [("promo", 3)]
    demo = client.get(f"/api/v1/stores/a1/demographics{q}", headers=h).json()
    # 65+ (2) is under 5; with <25 (7) shown, the total minus it would give 65+ away, so
    # <25 is suppressed too (complementary suppression, gateway/suppress.py)
    assert demo["age_bands"]["<25"] is None and demo["age_bands"]["65+"] is None
    assert {"age_bands.65+", "age_bands.<25"} <= set(demo["suppressed"])
    ov = client.get(f"/api/v1/overview?date={DAY}", headers=h).json()
    a1 = next(s for s in ov["stores"] if s["store_id"] == "a1")
    assert (a1["visitors"], a1["occupancy_now"], a1["online"]) == (10, 8, True)
    assert ov["trend"][-1] == {"date": DAY, "visitors": 30} and len(ov["trend"]) == 28


def test_registry_floorplan_and_pos_conversion(api) -> None:
    client, tok = api
    h = tok["hq"]
    r = client.put("/api/v1/stores/c1", headers=h, json={
        "name": "C", "timezone": "Europe/Paris",
        "cameras": [{"camera_id": "d", "role": "entrance", "homography": [[1, 0, 0],
                                                                          [0, 1, 0],
                                                                          [0, 0, 1]]}]})
    assert r.status_code == 200 and r.json()["cameras"][0]["role"] == "entrance"
    ok, buf = cv2.imencode(".png", np.zeros((30, 40, 3), np.uint8))  # a plan that decodes
    assert ok
    png = buf.tobytes()
    assert client.put("/api/v1/stores/c1/floorplan", headers=h, content=png).status_code == 200
    assert client.get("/api/v1/stores/c1/floorplan", headers=h).content == png
    assert client.put("/api/v1/stores/c1/floorplan", headers=h,
                      content=b"GIF89a").status_code == 415
    files = {"file": ("stores.csv", "store_id,name,timezone\nd1,D,UTC\n", "text/csv")}
    assert client.post("/api/v1/stores/import", headers=h, files=files).json() == {
        "imported": 1}
    r = client.post("/api/v1/pos", headers=h, json=[
        {"store_id": "a1", "hour_start": "2026-11-23T10:00", "transactions": 4}])
    assert r.json() == {"stored": 1}
    csv = ("store_id,date,hour,transactions,revenue\nb1,2026-11-23,10,8,100.5\n"
           "zz,2026-11-23,10,1,\nb1,2026-11-23,25,1,\n")
    r = client.post("/api/v1/pos/upload", headers=h,
                    files={"file": ("pos.csv", csv, "text/csv")}).json()
    assert r["stored"] == 1 and [x["line"] for x in r["rejected"]] == [3, 4]
    conv = client.get(f"/api/v1/conversion?granularity=hour&start={DAY}&end={DAY}",
                      headers=h).json()["series"]
    # 10:00 UTC is 10:00 in London (a1, b1) and 19:00 in Tokyo (a2, no POS data)
    assert conv == [{"period": "2026-11-23T10:00", "visitors": 50, "transactions": 12,
                     "conversion": 0.24},
                    {"period": "2026-11-23T19:00", "visitors": 20, "transactions": None,
                     "conversion": None}]


def test_dashboards_are_served_after_the_api(api) -> None:
    client, _ = api
    assert client.get("/api/v1/health").status_code == 200
    r = client.get("/")
    assert r.status_code == 200 and "<html" in r.text.lower()
    assert client.get("/static/vendor/echarts.min.js").status_code == 200


def test_last_week_today_counts_only_windows_ended_by_now(storage: Storage) -> None:
    """Seen at 19:45 local: last week's 19:00 hourly window had not ended (not counted),
    last week's one-minute windows of 19:00-19:44 had."""
    storage.upsert_stores([store("h1", tz="Asia/Shanghai"), store("m1", tz="Asia/Shanghai")])
    now = datetime(2026, 11, 23, 11, 45, tzinfo=UTC)  # 19:45 in Shanghai
    week = now - timedelta(days=7)
    h18, h19 = week.replace(minute=0) - timedelta(hours=1), week.replace(minute=0)
    storage.store_windows([window("h1", h18, ins=100, span_s=3600),
                           window("h1", h19, ins=100, span_s=3600)])
    storage.store_windows([window("m1", h19 + timedelta(minutes=i), ins=1) for i in range(60)])
    token = create_token(storage, "hq", "hq")
    app = create_app(GatewaySettings(), storage, clock=lambda: now)
    with TestClient(app) as client:
        ov = client.get("/api/v1/overview", headers={"Authorization": f"Bearer {token}"})
    last = {s["store_id"]: s["visitors_last_week"] for s in ov.json()["stores"]}
    assert last["h1"] == 100
    assert 43 <= last["m1"] <= 45  # the 44 or 45 minute windows ended by 19:45


PERIOD_END = date(2026, 11, 22)


@pytest.fixture
def history_api(storage: Storage) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    """190 days (a 90-day period and the 90 before it) of one door window a day per store (a
    different count each day), zone visits every third day and POS on some days, some of it
    sent twice with new figures, in two zones; 10:00 UTC is the same local date in London
    and Tokyo."""
    storage.clock = lambda: NOW
    storage.upsert_stores([store("a1", franchisee="fa"),
                           store("a2", franchisee="fa", tz="Asia/Tokyo"),
                           store("b1", franchisee="fb")])
    windows = []
    for k in range(190):
        t = datetime(2026, 11, 23, 10, tzinfo=UTC) - timedelta(days=k)
        for i, sid in enumerate(("a1", "a2", "b1")):
            windows.append(window(sid, t, ins=(7 * k + 5 * i) % 23 + 1))
            if k % 3 == i:
                windows.append(window(sid, t, camera_id="floor", ins=0, outs=0,
                                      zone_visits=k % 5 + 1))
    storage.store_windows(windows)
    tokens = {name: {"Authorization": f"Bearer {create_token(storage, name, scope)}"}
              for name, scope in (("hq", "hq"), ("fa", "franchisee:fa"))}
    app = create_app(GatewaySettings(), storage, clock=lambda: NOW)
    with TestClient(app) as client:
        for step, extra in ((2, 0), (6, 3)):  # the second import replaces some hours
            pos = [{"store_id": sid, "hour_start": f"{PERIOD_END - timedelta(days=k)}T10:00",
                    "transactions": k + 2 + extra}
                   for k in range(0, 150, step) for sid in ("a1", "a2")]
            assert client.post("/api/v1/pos", headers=tokens["hq"],
                               json=pos).status_code == 200
        yield client, tokens


def _daily_sum(client: TestClient, h: dict[str, str], path: str, key: str, start: date,
               end: date, **sel: str) -> int | None:
    """Sum of ``key`` over the day series of ``path`` (None when every day is null)."""
    series = client.get(path, headers=h, params={
        "granularity": "day", "start": start.isoformat(), "end": end.isoformat(),
        **sel}).json()["series"]
    values = [p[key] for p in series if p[key] is not None]
    return sum(values) if values else None


@pytest.mark.parametrize("days", [7, 28, 90])
def test_overview_period_sums_the_daily_figures(history_api, days: int) -> None:
    client, tok = history_api
    h = tok["hq"]
    start = PERIOD_END - timedelta(days=days - 1)
    before = (PERIOD_END - timedelta(days=2 * days - 1), PERIOD_END - timedelta(days=days))
    ov = client.get("/api/v1/overview", headers=h,
                    params={"date": PERIOD_END.isoformat(), "days": days}).json()
    assert (ov["date"], ov["days"], ov["period_start"]) == (
        PERIOD_END.isoformat(), days, start.isoformat())
    assert ov["visitors"] == _daily_sum(client, h, "/api/v1/traffic", "visitors", start,
                                        PERIOD_END)
    assert ov["visitors_last_week"] == _daily_sum(client, h, "/api/v1/traffic", "visitors",
                                                  *before)
    assert ov["change_pct"] == round(
        100 * (ov["visitors"] - ov["visitors_last_week"]) / ov["visitors_last_week"], 1)
    for s in ov["stores"]:
        sid = s["store_id"]
        visitors = _daily_sum(client, h, "/api/v1/traffic", "visitors", start, PERIOD_END,
                              store_id=sid)
        assert visitors and s["visitors"] == visitors, sid
        assert s["visitors_last_week"] == _daily_sum(
            client, h, "/api/v1/traffic", "visitors", *before, store_id=sid), sid
        tx = _daily_sum(client, h, "/api/v1/conversion", "transactions", start, PERIOD_END,
                        store_id=sid)
        assert s["transactions"] == tx, sid
        assert s["conversion"] == (round(tx / visitors, 4) if tx is not None else None), sid
        zones = client.get(f"/api/v1/stores/{sid}/zones", headers=h, params={
            "start": start.isoformat(), "end": PERIOD_END.isoformat()}).json()["zones"]
        visits = sum(z["visits"] for z in zones)
        assert visits > 0
        assert s["avg_dwell_s"] == round(sum(z["dwell_total_s"] for z in zones) / visits, 1)
    assert ov["stores"][2]["transactions"] is None  # b1 has no POS data


def test_overview_day_period_is_the_default(history_api) -> None:
    client, tok = history_api
    h = tok["hq"]
    for q in ("", f"date={PERIOD_END}"):
        default = client.get(f"/api/v1/overview?{q}", headers=h).json()
        assert client.get(f"/api/v1/overview?{q}&days=1", headers=h).json() == default
        assert default["days"] == 1 and default["period_start"] == default["date"]
    week_ago = PERIOD_END - timedelta(days=7)
    a1 = next(s for s in default["stores"] if s["store_id"] == "a1")
    assert (a1["visitors"], a1["visitors_last_week"]) == (
        _daily_sum(client, h, "/api/v1/traffic", "visitors", PERIOD_END, PERIOD_END,
                   store_id="a1"),
        _daily_sum(client, h, "/api/v1/traffic", "visitors", week_ago, week_ago,
                   store_id="a1"))


@pytest.mark.parametrize("value", ["5", "0", "-7", "30", "91", "x", "7.5"])
def test_overview_refuses_other_periods(history_api, value: str) -> None:
    client, tok = history_api
    r = client.get(f"/api/v1/overview?days={value}", headers=tok["hq"])
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request" and "days" in r.json()["detail"]


def test_overview_period_keeps_the_franchisee_scope(history_api) -> None:
    client, tok = history_api
    h = tok["fa"]
    q = {"date": PERIOD_END.isoformat(), "days": 7}
    ov = client.get("/api/v1/overview", headers=h, params=q).json()
    assert [s["store_id"] for s in ov["stores"]] == ["a1", "a2"]
    start = PERIOD_END - timedelta(days=6)
    assert ov["visitors"] == _daily_sum(client, h, "/api/v1/traffic", "visitors", start,
                                        PERIOD_END)
    hq = client.get("/api/v1/overview", headers=tok["hq"], params=q).json()
    assert ov["visitors"] == sum(s["visitors"] for s in hq["stores"]
                                 if s["store_id"] in ("a1", "a2"))
    assert client.get("/api/v1/overview", headers=h,
                      params={**q, "store_id": "b1"}).status_code == 403


def test_period_ending_today_cuts_the_comparisons_last_day(storage: Storage) -> None:
    """Seen at 19:45 local on the 23rd, 7 days: the 10th-15th count in full, the 16th (the
    comparison's last day, same weekday) only windows ended by 19:45."""
    storage.upsert_stores([store("h1", tz="Asia/Shanghai")])
    now = datetime(2026, 11, 23, 11, 45, tzinfo=UTC)  # 19:45 in Shanghai
    day = timedelta(days=1)
    storage.store_windows([
        window("h1", now - 14 * day, ins=1000, span_s=3600),  # the 9th: before both periods
        window("h1", now - 11 * day + timedelta(minutes=75), ins=7, span_s=3600),  # 21:00
        window("h1", now - 7 * day - timedelta(minutes=105), ins=100, span_s=3600),  # 18:00
        window("h1", now - 7 * day - timedelta(minutes=45), ins=100, span_s=3600),  # 19:00
        window("h1", now - timedelta(hours=9), ins=5, span_s=3600),  # today 10:45
    ])
    token = create_token(storage, "hq", "hq")
    app = create_app(GatewaySettings(), storage, clock=lambda: now)
    with TestClient(app) as client:
        ov = client.get("/api/v1/overview?days=7",
                        headers={"Authorization": f"Bearer {token}"}).json()
    assert (ov["date"], ov["period_start"]) == ("2026-11-23", "2026-11-17")
    assert (ov["visitors"], ov["visitors_last_week"]) == (5, 107)
    assert ov["stores"][0]["visitors_last_week"] == 107


def test_heatmap_is_moved_onto_the_floor_plan_when_the_camera_has_a_homography(
    api, storage: Storage
) -> None:
    client, tok = api
    t = datetime(2026, 11, 23, 11, tzinfo=UTC)
    cells = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    for cam in ("floor", "door"):
        w = window("b1", t, camera_id=cam, ins=0, outs=0)
        storage.store_windows([msgspec.structs.replace(w, heatmap=Heatmap(cols=4, rows=2,
                                                                          cells=cells))])
    mirror = [[-1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    b1 = store("b1", region="Europe", franchisee="fb")
    cams = [CameraRecord(camera_id="door", role="entrance"),
            CameraRecord(camera_id="floor", role="floor", homography=mirror)]
    storage.upsert_stores([b1.model_copy(update={"cameras": cams})])
    q = f"?start={DAY}&end={DAY}"
    floor = client.get(f"/api/v1/stores/b1/heatmap{q}&camera_id=floor", headers=tok["fb"]).json()
    assert floor["space"] == "floor" and floor["outside_s"] == 0.0
    assert floor["cells"] == [4.0, 3.0, 2.0, 1.0, 8.0, 7.0, 6.0, 5.0]
    assert floor["total_s"] == 36.0
    door = client.get(f"/api/v1/stores/b1/heatmap{q}&camera_id=door", headers=tok["fb"]).json()
    assert door["space"] == "frame" and door["cells"] == cells
