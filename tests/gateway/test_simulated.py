"""Which figures are simulated: counted in the rollups at ingest, counted from the stored
windows when a gateway upgrades (migration 010), and listed per store by local date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgspec
from fastapi.testclient import TestClient

from gateway import migrations
from gateway.api import create_app
from gateway.auth import create_token
from gateway.config import GatewaySettings
from gateway.db import Database, connect_sqlite
from gateway.live_routes import simulated_stores
from gateway.storage import Storage
from storesense.schema import WindowAggregate
from tests.gateway.conftest import PINNED_NOW
from tests.gateway.helpers import store, window

# 22:30 UTC on the 23rd is already the 24th in Tokyo
TIMES = [datetime(2026, 11, 23, 9, tzinfo=UTC), datetime(2026, 11, 23, 22, 30, tzinfo=UTC)]


def _windows() -> list[WindowAggregate]:
    sim = [msgspec.structs.replace(window("tyo", t + timedelta(minutes=m)), simulated=True)
           for t in TIMES for m in range(3)]
    real = [window("tyo", TIMES[0] + timedelta(minutes=10)), window("ldn", TIMES[0])]
    return sim + real


def _day_counts(conn: Database) -> dict[tuple[str, str], tuple[int, int]]:
    return {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
        "SELECT store_id, local_date, sim_windows, windows FROM rollup_day")}


def test_simulated_windows_are_counted_per_store_and_local_date(storage: Storage) -> None:
    storage.upsert_stores([store("tyo", tz="Asia/Tokyo"), store("ldn")])
    storage.store_windows(_windows())
    assert _day_counts(storage.read()) == {("tyo", "2026-11-23"): (3, 4),
                                           ("tyo", "2026-11-24"): (3, 3),
                                           ("ldn", "2026-11-23"): (0, 1)}
    both = simulated_stores(storage, ["tyo", "ldn"], date(2026, 11, 23), date(2026, 11, 24))
    assert both == [{"store_id": "tyo", "simulated_windows": 6, "windows": 7}]
    assert simulated_stores(storage, ["ldn"], date(2026, 11, 23), date(2026, 11, 24)) == []
    # only the 24th: every window of tyo that day is simulated
    assert simulated_stores(storage, ["tyo"], date(2026, 11, 24), date(2026, 11, 24)) == [
        {"store_id": "tyo", "simulated_windows": 3, "windows": 3}]


def test_without_dates_each_store_is_asked_for_its_own_local_today(storage: Storage) -> None:
    """At 22:30 UTC on the 23rd, Tokyo's today is the 24th and London's the 23rd: the chain's
    banner must not read the UTC date for every store (it then showed Tokyo's 23rd)."""
    storage.upsert_stores([store("tyo", tz="Asia/Tokyo"), store("ldn")])
    storage.store_windows(_windows())
    auth = {"Authorization": f"Bearer {create_token(storage, 'hq', 'hq')}"}
    app = create_app(GatewaySettings(), storage, clock=lambda: TIMES[1])
    with TestClient(app) as client:
        chain = client.get("/api/v1/simulated", headers=auth).json()
        tokyo = client.get("/api/v1/simulated", headers=auth, params={"store_id": "tyo"}).json()
        asked = client.get("/api/v1/simulated", headers=auth,
                           params={"start": "2026-11-23", "end": "2026-11-23"}).json()
    assert chain == {"start": "2026-11-23", "end": "2026-11-24",
                     "stores": [{"store_id": "tyo", "simulated_windows": 3, "windows": 3}]}
    assert tokyo["stores"] == chain["stores"] and tokyo["start"] == "2026-11-24"
    assert asked["stores"] == [{"store_id": "tyo", "simulated_windows": 3, "windows": 4}]


def test_an_upgraded_gateway_counts_the_windows_it_stored_before(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "gateway.db", clock=lambda: PINNED_NOW)
    try:
        storage.upsert_stores([store("tyo", tz="Asia/Tokyo"), store("ldn")])
        storage.store_windows(_windows())
        expected = _day_counts(storage.read())
    finally:
        storage.close()
    conn = connect_sqlite(tmp_path / "gateway.db")
    try:
        # the database as a gateway before migration 010 left it
        for stmt in ("DROP INDEX rollup_day_simulated",
                     "ALTER TABLE rollup_hour DROP COLUMN sim_windows",
                     "ALTER TABLE rollup_day DROP COLUMN sim_windows",
                     "DELETE FROM _migrations WHERE name = '010_simulated_windows'"):
            conn.execute(stmt)
        assert migrations.apply(conn) == ["010_simulated_windows"]
        assert _day_counts(conn) == expected
        hours = conn.execute("SELECT SUM(sim_windows) FROM rollup_hour").fetchone()[0]
        assert hours == 6
    finally:
        conn.close()
