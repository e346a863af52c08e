"""Issue 16 on real SQLite: passes, unique visitors, groups, staff, queues and demographics
within visitors, through ingest (validation), rollups and the API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from fastapi.testclient import TestClient

from gateway.api import create_app
from gateway.auth import create_token
from gateway.config import GatewaySettings
from gateway.retail_rollups import clamp_split
from gateway.storage import Storage
from storesense.schema import (
    DWELL_BIN_EDGES_S,
    Demographics,
    OccupancyStats,
    QueueStats,
    StaffCounts,
    WindowAggregate,
)
from tests.gateway.helpers import message, store, window

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
DAY = "2026-11-23"
T = datetime(2026, 11, 23, 10, tzinfo=UTC)  # 10:00 in London


def retail(w: WindowAggregate, **fields: object) -> WindowAggregate:
    return msgspec.structs.replace(w, **fields)


def queue(zone: str, waits_in_bins: dict[int, int], abandoned: int, avg: float,
          mx: int) -> QueueStats:
    hist = [0] * len(DWELL_BIN_EDGES_S)
    for i, n in waits_in_bins.items():
        hist[i] = n
    return QueueStats(zone=zone, length=OccupancyStats(avg=avg, max=mx), served=sum(hist),
                      abandoned=abandoned, lost=1, wait_histogram=hist)


@pytest.fixture
def api(storage: Storage) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], Storage]]:
    storage.clock = lambda: NOW
    storage.upsert_stores([store("a1", franchisee="fa"), store("b1", franchisee="fb")])
    tokens = {name: {"Authorization": f"Bearer {create_token(storage, name, scope)}"}
              for name, scope in (("hq", "hq"), ("fa", "franchisee:fa"))}
    with TestClient(create_app(GatewaySettings(), storage, clock=lambda: NOW)) as client:
        yield client, tokens, storage


def ingest(storage: Storage, *windows: WindowAggregate) -> None:
    result = storage.ingest([message(w) for w in windows])
    assert result.dead == 0, storage.read().execute(
        "SELECT reason FROM dead_letters").fetchall()


def test_visitors_groups_staff_and_conversion_per_group(api) -> None:
    client, tok, storage = api
    ingest(storage,
           retail(window("a1", T, ins=10, outs=8), unique_visitors=8, groups=6,
                  staff=StaffCounts(in_count=2, out_count=1, tracks=2)),
           retail(window("a1", T + timedelta(minutes=1), ins=5, outs=5), unique_visitors=5,
                  groups=3, staff=StaffCounts(in_count=0, out_count=1, tracks=0)),
           # a device that computes none of it: each pass its own visitor and group
           window("a1", T + timedelta(hours=1), ins=4, outs=4),
           # a floor camera's crossings are not visitors
           retail(window("a1", T, camera_id="floor", ins=7, outs=7), unique_visitors=7,
                  groups=7))
    client.post("/api/v1/pos", headers=tok["hq"], json=[
        {"store_id": "a1", "hour_start": "2026-11-23T10:00", "transactions": 7}])
    r = client.get(f"/api/v1/visitors?store_id=a1&granularity=hour&start={DAY}",
                   headers=tok["fa"])
    assert r.status_code == 200, r.text
    ten, eleven = r.json()["series"]
    assert ten == {"period": "2026-11-23T10:00", "passes": 15, "unique_visitors": 13,
                   "groups": 9, "staff_in": 2, "staff_out": 2, "staff_tracks": 2,
                   "transactions": 7, "conversion_per_visitor": round(7 / 13, 4),
                   "conversion_per_group": round(7 / 9, 4)}
    assert (eleven["passes"], eleven["unique_visitors"], eleven["groups"]) == (4, 4, 4)
    assert eleven["conversion_per_group"] is None  # no POS that hour
    day = client.get(f"/api/v1/visitors?store_id=a1&start={DAY}", headers=tok["fa"]).json()
    assert [(p["period"], p["passes"], p["unique_visitors"], p["groups"])
            for p in day["series"]] == [(DAY, 19, 17, 13)]
    # a redelivered window is not counted twice
    ingest(storage, retail(window("a1", T, ins=10, outs=8), unique_visitors=8, groups=6,
                           staff=StaffCounts(in_count=2, out_count=1, tracks=2)))
    again = client.get(f"/api/v1/visitors?store_id=a1&start={DAY}", headers=tok["fa"]).json()
    assert again == day


def test_queues_merge_histograms_across_windows(api) -> None:
    client, tok, storage = api
    floor = window("a1", T, camera_id="floor", ins=0, outs=0)
    ingest(storage,
           retail(floor, queues=[queue("till", {3: 4}, abandoned=1, avg=2.0, mx=4)]),
           retail(window("a1", T + timedelta(minutes=1), camera_id="floor", ins=0, outs=0),
                  queues=[queue("till", {5: 4}, abandoned=3, avg=4.0, mx=6)]))
    r = client.get(f"/api/v1/stores/a1/queues?start={DAY}", headers=tok["fa"])
    assert r.status_code == 200, r.text
    [q] = r.json()["queues"]
    assert (q["zone"], q["served"], q["abandoned"], q["lost"]) == ("till", 8, 4, 2)
    assert q["abandonment_rate"] == round(4 / 12, 4)
    assert (q["length_avg"], q["length_max"]) == (3.0, 6)
    # 8 served: 4 waited 10-20 s, 4 waited 30-60 s; the median is the 10-20 bin's top edge,
    # the 90th percentile 80 % of the way up the 30-60 bin
    assert q["wait_p50_s"] == 20.0 and q["wait_p90_s"] == pytest.approx(30 + 0.8 * 30, abs=0.1)
    other = client.get("/api/v1/stores/b1/queues", headers=tok["fa"])
    assert other.status_code == 403


def test_demographics_never_exceed_unique_visitors(api) -> None:
    """A device sends more votes than people (plausible for the window's size, so stored):
    the day's split is scaled down to the unique visitors; a floor camera's votes are not
    counted at all."""
    client, tok, storage = api
    ingest(storage,
           retail(window("a1", T, ins=40, outs=40), unique_visitors=30, groups=20,
                  demographics=Demographics(age_bands={"<25": 40, "25-34": 20},
                                            genders={"female": 40, "male": 20})),
           retail(window("a1", T, camera_id="floor", ins=0, outs=0),
                  demographics=Demographics(age_bands={"35-44": 50},
                                            genders={"male": 50})))
    d = client.get(f"/api/v1/stores/a1/demographics?start={DAY}", headers=tok["fa"]).json()
    assert d["unique_visitors"] == 30
    assert (d["age_bands"]["<25"], d["age_bands"]["25-34"]) == (20, 10)  # 40:20 -> 20:10
    assert d["age_bands"]["35-44"] is None  # the floor camera's 50 are not votes
    assert (d["genders"]["female"], d["genders"]["male"]) == (20, 10)
    assert d["visitors"] == 30


def test_window_claims_are_checked_at_the_door(api) -> None:
    """More groups or unique visitors than passes is refused with the field named."""
    _, _, storage = api
    for field in ("groups", "unique_visitors"):
        raw = window("a1", T, ins=3).to_dict()
        raw[field] = 4
        result = storage.ingest([(message(window("a1", T))[0],
                                  msgspec.json.encode(raw))])
        assert result.dead == 1
        reason = storage.read().execute(
            "SELECT reason FROM dead_letters ORDER BY id DESC LIMIT 1").fetchone()[0]
        assert field in reason and "exceeds" in reason


@pytest.mark.parametrize(("counts", "cap", "expected"), [
    ({"a": 3, "b": 1}, 10, {"a": 3, "b": 1}),
    ({"a": 30, "b": 10}, 12, {"a": 9, "b": 3}),
    ({"a": 25, "b": 15}, 12, {"a": 8, "b": 4}),  # 7.5 / 4.5: the larger remainder wins ties
    ({"a": 1, "b": 1, "c": 1}, 2, {"a": 1, "b": 1, "c": 0}),
    ({"a": 5}, 0, {"a": 0}),
])
def test_clamp_split(counts: dict[str, int], cap: int, expected: dict[str, int]) -> None:
    out = clamp_split(counts, cap)
    assert out == expected and sum(out.values()) <= cap


def test_openapi_names_the_retail_figures(api) -> None:
    client, _, _ = api
    spec = client.get("/openapi.json").text
    for word in ("staff_in", "staff_tracks", "groups", "conversion_per_group",
                 "unique_visitors", "/api/v1/stores/{store_id}/queues", "abandonment_rate",
                 "wait_p90_s", "/api/v1/visitors"):
        assert word in spec, word


def test_implausible_queues_and_staff_are_dead_lettered(api) -> None:
    """Bounded like zones and lines (gateway/plausible.py): a minute cannot end 100,000
    queue visits, nor carry staff crossings on a camera without lines."""
    _, _, storage = api
    big = queue("till", {3: 100_000}, abandoned=0, avg=1.0, mx=2)
    no_lines = window("a1", T, camera_id="floor", ins=0, outs=0)
    cases = [(retail(no_lines, queues=[big]), "queue 'till'"),
             (retail(no_lines, staff=StaffCounts(in_count=1)), "staff crossings")]
    for w, fragment in cases:
        assert storage.ingest([message(w)]).dead == 1
        reason = storage.read().execute(
            "SELECT reason FROM dead_letters ORDER BY id DESC LIMIT 1").fetchone()[0]
        assert fragment in reason, reason
    assert storage.read().execute("SELECT COUNT(*) FROM queue_day").fetchone()[0] == 0
