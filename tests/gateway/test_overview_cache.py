"""The overview's in-memory units of past periods (gateway/period_cache.py): kept while
nothing changed, read again when anything changed a date they hold, whoever wrote it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from gateway import overview as ov
from gateway import retention
from gateway.api import create_app
from gateway.auth import create_token
from gateway.config import GatewaySettings
from gateway.period_cache import (
    HourRows,
    PeriodCache,
    cache_for,
    ended_by,
    span_units,
    stamp,
    unit_dates,
)
from gateway.storage import Storage
from tests.gateway.helpers import message, store, window

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday: 15:00 London, 00:00 Tokyo
DAYS = 70


@pytest.fixture
def chain(storage: Storage) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """Two stores in two zones, a door window a day for 70 days at 10:00 UTC (a different
    count each day), zone visits every other day."""
    storage.clock = lambda: NOW
    storage.upsert_stores([store("ldn", franchisee="fa"),
                           store("tyo", tz="Asia/Tokyo", franchisee="fb")])
    windows = []
    for k in range(DAYS):
        t = datetime(2026, 11, 23, 10, tzinfo=UTC) - timedelta(days=k)
        for i, sid in enumerate(("ldn", "tyo")):
            windows.append(window(sid, t, ins=(3 * k + i) % 17 + 1, span_s=3600))
            if k % 2 == i:
                windows.append(window(sid, t, camera_id="floor", ins=0, outs=0,
                                      zone_visits=k % 4 + 1))
    storage.store_windows(windows)
    h = {"Authorization": f"Bearer {create_token(storage, 'hq', 'hq')}"}
    with TestClient(create_app(GatewaySettings(), storage, clock=lambda: NOW)) as client:
        yield client, h


QUERIES: list[dict[str, Any]] = [{"days": n, **({"date": d} if d else {})}
           for n in (1, 7, 28, 90) for d in (None, "2026-11-22", "2026-11-12")]


def _all(client: TestClient, h: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for q in QUERIES:
        r = client.get("/api/v1/overview", headers=h, params=q)
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


def _uncached(storage: Storage) -> list[dict[str, Any]]:
    """The same answers computed with nothing kept (every unit read now)."""
    reg = storage.reload_registry()
    ids = sorted(reg.stores)
    return [ov.overview(storage.read(), reg, ids,
                        date.fromisoformat(str(q["date"])) if "date" in q else None, 28, NOW,
                        GatewaySettings().status_interval_s, int(q["days"]), PeriodCache())
            for q in QUERIES]


def _store(body: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in body["stores"] if s["store_id"] == sid)


def test_units_are_kept_while_nothing_changes(chain, storage: Storage) -> None:
    client, h = chain
    first = _all(client, h)
    reads = cache_for(storage).reads
    assert reads > 0
    assert _all(client, h) == first
    assert cache_for(storage).reads == reads  # every unit came from memory
    assert first == _uncached(storage)


def test_a_late_window_for_a_past_day_shows_up(chain, storage: Storage) -> None:
    client, h = chain
    q = {"date": "2026-11-22", "days": 28}
    before = client.get("/api/v1/overview", headers=h, params=q).json()
    _all(client, h)
    reads = cache_for(storage).reads
    # a window of 2026-11-10 arriving now, through ingest as from a device's outbox
    late = window("ldn", datetime(2026, 11, 10, 12, tzinfo=UTC), ins=1000, span_s=3600)
    assert storage.ingest([message(late)]).stored == 1
    after = client.get("/api/v1/overview", headers=h, params=q).json()
    assert _store(after, "ldn")["visitors"] == _store(before, "ldn")["visitors"] + 1000
    assert _store(after, "tyo") == _store(before, "tyo")
    # that day and at most its 7- and 28-day blocks were read again, nothing else
    assert 1 <= cache_for(storage).reads - reads <= 3
    assert _all(client, h) == _uncached(storage)


def test_a_pos_import_for_a_past_day_shows_up(chain, storage: Storage) -> None:
    client, h = chain
    q = {"date": "2026-11-22", "days": 7}
    before = _store(client.get("/api/v1/overview", headers=h, params=q).json(), "tyo")
    assert before["transactions"] is None
    r = client.post("/api/v1/pos", headers=h, json=[
        {"store_id": "tyo", "hour_start": "2026-11-20T11:00", "transactions": 9}])
    assert r.status_code == 200
    after = _store(client.get("/api/v1/overview", headers=h, params=q).json(), "tyo")
    assert (after["transactions"], after["conversion"]) == (
        9, round(9 / after["visitors"], 4))
    assert _all(client, h) == _uncached(storage)


def test_another_gateways_write_shows_up(chain, storage: Storage, database) -> None:
    """Two gateways on one database: the second stores a late window, the first's cache
    (of this process, kept by the first's Storage) sees it."""
    client, h = chain
    q = {"date": "2026-11-22", "days": 90}
    before = _store(client.get("/api/v1/overview", headers=h, params=q).json(), "tyo")
    other = Storage(database, clock=lambda: NOW)
    try:
        late = window("tyo", datetime(2026, 11, 1, 3, tzinfo=UTC), ins=77, span_s=60)
        assert other.ingest([message(late)]).stored == 1
    finally:
        other.close()
    after = _store(client.get("/api/v1/overview", headers=h, params=q).json(), "tyo")
    assert after["visitors"] == before["visitors"] + 77


def test_deleted_hours_leave_todays_comparison(chain, storage: Storage) -> None:
    """Today (15:00 in London) compares with last Monday up to 15:00, from its hour rows:
    once retention deletes them, that comparison is read again (and is 0)."""
    client, h = chain
    ldn = _store(client.get("/api/v1/overview", headers=h).json(), "ldn")
    assert ldn["visitors_last_week"] > 0
    with storage._conn.transaction():
        assert retention.hourly(storage._conn, "2026-11-17") > 0
    ldn = _store(client.get("/api/v1/overview", headers=h).json(), "ldn")
    assert ldn["visitors_last_week"] == 0


def test_a_new_store_is_listed_with_its_figures(chain, storage: Storage) -> None:
    client, h = chain
    _all(client, h)
    storage.upsert_stores([store("new", tz="Asia/Tokyo")])
    storage.store_windows([window("new", datetime(2026, 11, 20, 2, tzinfo=UTC), ins=5)])
    body = client.get("/api/v1/overview", headers=h,
                      params={"date": "2026-11-22", "days": 7}).json()
    assert [s["store_id"] for s in body["stores"]] == ["ldn", "new", "tyo"]
    assert _store(body, "new")["visitors"] == 5
    assert _all(client, h) == _uncached(storage)


# ------------------------------------------------------------------ pure parts


@pytest.mark.parametrize("length", [1, 2, 6, 7, 8, 27, 28, 29, 56, 90, 91, 180])
def test_span_units_cover_each_day_once(length: int) -> None:
    for k in range(35):  # every weekday and position in a 28-day block
        last = date(2026, 11, 23) - timedelta(days=k)
        first = last - timedelta(days=length - 1)
        units = span_units(first, last)
        days = sorted(d for u in units if u[0] != "pos" for d in unit_dates(u))
        assert days == [(first + timedelta(days=i)).isoformat() for i in range(length)]
        # POS: a block holds it, a loose day has its own unit
        pos = sorted(d for u in units if u[0] != "day" for d in unit_dates(u))
        assert pos == days


def test_a_unit_is_stale_when_a_counter_it_depends_on_moves() -> None:
    block = ("block", "7:2026-11-16")
    counters = {d: (1, 1) for d in unit_dates(block)}
    day, pos = ("day", "2026-11-18"), ("pos", "2026-11-18")
    was = {u: stamp(u, counters) for u in (block, day, pos)}
    counters["2026-11-18"] = (2, 1)  # traffic of that date changed
    assert [stamp(u, counters) != was[u] for u in (block, day, pos)] == [True, True, False]
    counters["2026-11-18"] = (2, 2)  # then its POS
    assert stamp(pos, counters) != was[pos]
    counters["2026-11-30"] = (9, 9)  # another week
    assert stamp(block, counters) == stamp(block, {**counters, "2026-11-30": (0, 0)})


def test_ended_by_counts_whole_hours_and_the_ended_share_of_this_one() -> None:
    """At 19:45: store 0's hourly windows count 18:00 but none of 19:00 (not ended); store 1's
    one-minute windows count 44.7 of the 60 visitors of 19:00 ((2700 - 60) / (3600 - 60),
    with 18:00 then rounded); 20:00 counts nothing; store 2 has no rows."""
    rows = HourRows(store=np.array([0, 0, 1, 1, 1]), hour=np.array([18, 19, 18, 19, 20]),
                    visitors=np.array([100.0, 100.0, 7.0, 60.0, 60.0]),
                    mean_len=np.array([3600.0, 3600.0, 60.0, 60.0, 60.0]))
    got = ended_by(rows, 3, 19, 45 * 60.0)
    assert got.tolist() == [100.0, 7.0 + 45.0, 0.0]
    assert ended_by(rows, 3, 19, 30.0).tolist() == [100.0, 7.0, 0.0]  # no window ended yet
    assert ended_by(rows, 3, 21, 0.0).tolist() == [200.0, 127.0, 0.0]
