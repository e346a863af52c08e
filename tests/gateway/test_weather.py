"""Daily weather: the feed's push with its own token, the CSV, and rainy against dry days, on
real SQLite through the API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.api import create_app
from gateway.auth import create_token
from gateway.config import GatewaySettings
from gateway.storage import Storage
from storesense.cli import main as cli
from tests.gateway.helpers import store, window

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
Api = tuple[TestClient, dict[str, dict[str, str]]]


@pytest.fixture
def api(storage: Storage) -> Iterator[Api]:
    storage.clock = lambda: NOW
    storage.upsert_stores([store("a1", franchisee="fa"), store("b1", franchisee="fb"),
                           store("tokyo", tz="Asia/Tokyo", franchisee="fa")])
    tokens = {name: {"Authorization": f"Bearer {create_token(storage, name, scope)}"}
              for name, scope in (("hq", "hq"), ("fa", "franchisee:fa"),
                                  ("feed", "weather"))}
    with TestClient(create_app(GatewaySettings(), storage, clock=lambda: NOW)) as client:
        yield client, tokens


def day(sid: str, d: str, condition: str, mm: float | None = None,
        temp: float | None = None) -> dict[str, object]:
    return {"store_id": sid, "date": d, "condition": condition, "precipitation_mm": mm,
            "temperature_c": temp}


def test_weather_token_pushes_idempotently_and_sees_nothing_else(api: Api,
                                                                 storage: Storage) -> None:
    client, tok = api
    batch = [day("a1", "2026-11-20", "rain", 12.5, 8.0), day("a1", "2026-11-21", "dry", 0.0)]
    for _ in range(2):  # the feed retries: the same records are one row each
        r = client.post("/api/v1/weather", json=batch, headers=tok["feed"])
        assert r.status_code == 200 and r.json() == {"stored": 2}, r.text
    assert storage.read().execute("SELECT count(*) FROM weather_day").fetchone()[0] == 2
    # a later record for the same day replaces it (the observation after the forecast)
    client.post("/api/v1/weather", json=[day("a1", "2026-11-21", "storm", 30.0)],
                headers=tok["feed"]).raise_for_status()
    got = client.get("/api/v1/stores/a1/weather", params={"start": "2026-11-20",
                                                         "end": "2026-11-21"},
                     headers=tok["hq"]).json()["days"]
    assert [(d["date"], d["condition"], d["precipitation_mm"]) for d in got] == [
        ("2026-11-20", "rain", 12.5), ("2026-11-21", "storm", 30.0)]
    # the feed's token reads nothing and manages nothing
    for path in ("/api/v1/stores/a1/weather", "/api/v1/traffic?store_id=a1"):
        assert client.get(path, headers=tok["feed"]).status_code == 403, path
    assert client.get("/api/v1/stores", headers=tok["feed"]).json() == []
    assert client.post("/api/v1/pos", json=[], headers=tok["feed"]).status_code == 403
    # and a store's token cannot push weather
    r = client.post("/api/v1/weather", json=batch, headers=tok["fa"])
    assert r.status_code == 403 and "weather token" in r.json()["detail"]


BAD = [
    (day("a1", "2026-11-20", "sunny"), 422, "condition"),
    (day("a1", "2026-02-30", "rain"), 422, "not a real date"),
    (day("a1", "20261120", "rain"), 422, "date"),
    (day("a1", "2026-11-20", "dry", 5.0), 422, "'dry' with 5.0 mm"),
    (day("a1", "2026-11-20", "rain", -1.0), 422, "precipitation_mm"),
    (day("a1", "2026-11-20", "rain", 5000.0), 422, "precipitation_mm"),
    (day("a1", "2026-11-20", "rain", None, 99.0), 422, "temperature_c"),
    ({**day("a1", "2026-11-20", "rain"), "wind": 3}, 422, "wind"),
    (day("nowhere", "2026-11-20", "rain"), 400, "unknown stores ['nowhere']"),
    # the gateway's clock says 2026-11-25 12:00 UTC: Tokyo's today is the 25th, a1's too
    (day("a1", "2026-11-26", "rain"), 400, "after the store's local today"),
]


@pytest.mark.parametrize(("record", "status", "words"), BAD)
def test_bad_weather_is_refused_whole(api: Api, storage: Storage, record: dict[str, object],
                                      status: int, words: str) -> None:
    client, tok = api
    r = client.post("/api/v1/weather", json=[day("a1", "2026-11-19", "dry"), record],
                    headers=tok["feed"])
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert storage.read().execute("SELECT count(*) FROM weather_day").fetchone()[0] == 0


CSV = """store_id,date,condition,precipitation_mm,temperature_c
a1,2026-11-20,rain,4.2,9.5
a1,2026-11-21,dry,,
a1,2026-11-22,drizzle,,
b1,2026-11-22,rain,lots,
zz,2026-11-22,rain,,
a1,2026-11-30,rain,,
"""


def test_csv_upload_and_command_store_good_lines_and_name_bad_ones(
        api: Api, storage: Storage, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client, tok = api
    r = client.post("/api/v1/weather/upload", files={"file": ("w.csv", CSV.encode())},
                    headers=tok["hq"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stored"] == 2
    reasons = {x["line"]: x["reason"] for x in body["rejected"]}
    assert set(reasons) == {4, 5, 6, 7}
    assert "condition" in reasons[4] and "'lots' is not a number" in reasons[5]
    assert "unknown store 'zz'" in reasons[6] and "after the store's local today" in reasons[7]
    bad_header = client.post("/api/v1/weather/upload", files={
        "file": ("w.csv", b"store,day\na1,2026-11-20\n")}, headers=tok["hq"])
    assert bad_header.status_code == 422 and "header lacks" in bad_header.json()["detail"]

    path = tmp_path / "w.csv"
    path.write_text("store_id,date,condition\nb1,2026-11-20,snow\n", encoding="utf-8")
    assert cli(["gateway", "import-weather", "--db", str(storage.target), str(path)]) == 0
    assert '"stored": 1' in capsys.readouterr().out
    assert storage.read().execute(
        "SELECT condition FROM weather_day WHERE store_id='b1'").fetchone()[0] == "snow"


def test_rainy_and_dry_days_compared(api: Api, storage: Storage) -> None:
    client, tok = api
    t0 = datetime(2026, 11, 18, 10, tzinfo=UTC)
    visitors = {0: 40, 1: 60, 2: 100, 3: 80, 4: 120, 7: 500}  # day offset -> a1's visitors
    storage.store_windows([window("a1", t0 + timedelta(days=k), ins=n)
                           for k, n in visitors.items()])
    storage.store_windows([window("b1", t0, ins=10)])
    pushes = [day("a1", "2026-11-18", "rain", 10.0), day("a1", "2026-11-19", "heavy_rain"),
              day("a1", "2026-11-20", "dry"), day("a1", "2026-11-21", "dry"),
              day("a1", "2026-11-22", "snow"),
              day("a1", "2026-11-24", "dry"),     # no traffic that day: left out
              day("a1", "2026-11-25", "rain"),    # a1's today (half a day): left out
              day("b1", "2026-11-18", "dry")]
    client.post("/api/v1/weather", json=pushes, headers=tok["feed"]).raise_for_status()
    client.post("/api/v1/pos", json=[  # POS only on the 18th and 20th
        {"store_id": "a1", "hour_start": "2026-11-18T10:00", "transactions": 8},
        {"store_id": "a1", "hour_start": "2026-11-20T10:00", "transactions": 30}],
        headers=tok["hq"]).raise_for_status()
    span = {"start": "2026-11-18", "end": "2026-11-25"}
    r = client.get("/api/v1/weather/compare", params={**span, "store_id": "a1"},
                   headers=tok["hq"])
    assert r.status_code == 200, r.text
    c = r.json()
    assert (c["rainy"]["days"], c["rainy"]["visitors_per_day"]) == (2, 50.0)  # (40+60)/2
    assert (c["dry"]["days"], c["dry"]["visitors_per_day"]) == (2, 90.0)      # (100+80)/2
    assert c["snow"]["days"] == 1
    assert c["rainy"]["days_with_pos"] == 1 and c["rainy"]["conversion"] == 0.2  # 8/40
    assert c["dry"]["conversion"] == pytest.approx(0.3)                       # 30/100
    assert c["visitors_per_day_change_pct"] == pytest.approx(-44.4)
    # the whole chain: b1's dry day joins the dry store-days; a franchisee sees its own
    chain = client.get("/api/v1/weather/compare", params=span, headers=tok["hq"]).json()
    assert chain["dry"]["days"] == 3 and chain["dry"]["visitors"] == 190
    fa = client.get("/api/v1/weather/compare", params=span, headers=tok["fa"]).json()
    assert fa["dry"]["days"] == 2
    assert client.get("/api/v1/weather/compare", params={"store_id": "b1"},
                      headers=tok["fa"]).status_code == 403
