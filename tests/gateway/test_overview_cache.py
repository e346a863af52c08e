"""The overview's in-memory units of past periods (gateway/period_cache.py): kept while
nothing changed, read again when anything changed a date they hold, whoever wrote it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import pytest
from fastapi.testclient import TestClient

from gateway import overview as ov
from gateway import overview_warmup, retention
from gateway import period_cache as pc
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
    return [msgspec.json.decode(msgspec.json.encode(ov.overview(
        storage.read(), reg, ids, date.fromisoformat(str(q["date"])) if "date" in q else None,
        28, NOW, GatewaySettings().status_interval_s, int(q["days"]), PeriodCache())))
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


def test_a_scoped_request_reads_its_stores_of_a_changed_day(chain, storage: Storage) -> None:
    """Today's units, moved by ingest since they were kept, are read for a franchisee's
    store only (not kept); the next hq request reads them for the chain again."""
    client, h = chain
    client.get("/api/v1/overview", headers=h, params={"days": 7})
    cache = cache_for(storage)
    reads, scoped = cache.reads, cache.scoped_reads
    today = window("ldn", datetime(2026, 11, 23, 12, tzinfo=UTC), ins=40, span_s=3600)
    assert storage.ingest([message(today)]).stored == 1
    q = {"days": 7, "franchisee": "fa"}
    body = client.get("/api/v1/overview", headers=h, params=q).json()
    assert cache.reads == reads and cache.scoped_reads > scoped
    assert [s["store_id"] for s in body["stores"]] == ["ldn"]
    reg = storage.reload_registry()
    alone = msgspec.json.decode(msgspec.json.encode(ov.overview(
        storage.read(), reg, ["ldn"], None, 28, NOW, GatewaySettings().status_interval_s, 7,
        PeriodCache())))
    assert body == alone
    client.get("/api/v1/overview", headers=h, params={"days": 7})
    assert cache.reads > reads
    assert _all(client, h) == _uncached(storage)


def test_the_warm_up_reads_todays_periods_before_any_request(
        chain, storage: Storage) -> None:
    """The gateway's start-up warm-up (gateway/overview_warmup.py) in its thread, then
    today's overview of every period reads nothing and answers as with nothing kept."""
    client, h = chain
    thread = overview_warmup.start(storage, lambda: NOW, GatewaySettings().status_interval_s)
    thread.join(60)
    assert not thread.is_alive()
    cache = cache_for(storage)
    reads = cache.reads
    assert reads > 0 and cache.held_bytes() > 0
    got = [client.get("/api/v1/overview", headers=h, params={"days": n}).json()
           for n in ov.PERIODS]
    assert cache.reads == reads  # every unit was there
    assert got == [q for q, p in zip(_uncached(storage), QUERIES, strict=True) if "date" not in p]


def _insert_units(storage: Storage, dwell: list[float]) -> None:
    """Day, block and POS rows of three stores with these dwell totals (and a store the
    registry does not hold)."""
    with storage._conn.transaction():
        for i, d in enumerate(dwell):
            sid = ("ldn", "tyo", "gone")[i % 3]
            storage._conn.execute(
                "INSERT INTO rollup_day (store_id, local_date, visitors, exits, zone_visits, "
                "dwell_total_s) VALUES (?, ?, ?, ?, ?, ?)",
                (sid, f"2030-01-{1 + i // 3:02d}", 10 * i + 1, i, i + 2, d))
            storage._conn.execute(
                "INSERT INTO rollup_block (block, store_id, visitors, zone_visits, "
                "dwell_total_s, transactions, pos_hours) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (f"7:2030-02-{1 + i // 3:02d}", sid, i, i + 1, d, 3 * i, i % 2))
            storage._conn.execute(
                "INSERT INTO pos_day (local_date, store_id, transactions, pos_hours) "
                "VALUES (?, ?, ?, ?)", (f"2030-01-{1 + i // 3:02d}", sid, 7 * i, i % 3))


def test_aggregated_reads_give_every_figure_back_exactly(storage: Storage) -> None:
    """Units read as one aggregated row each (text) hold the same doubles as read row by
    row, on both engines: fractions SQLite's text of a REAL rounds, and values the exact
    form cannot carry (tiny, huge), for which the rows are read instead."""
    storage.upsert_stores([store("ldn"), store("tyo", tz="Asia/Tokyo")])
    rng = np.random.default_rng(3)
    dwell = [*(rng.random(24) * 1e5).tolist(), 0.1, 1 / 3, 2.675, 12345.678901234567,
             0.0, 7.0, 2.0 ** -7 + 2.0 ** -59, 1e15 + 0.5]
    tiny = [1e-10, 1e20, 5.5]
    _insert_units(storage, dwell + tiny)
    conn = storage.read()
    index = {"ldn": 0, "tyo": 1}
    normal = [(kind, key) for kind, fmt in (("day", "2030-01-{:02d}"),
                                            ("pos", "2030-01-{:02d}"),
                                            ("block", "7:2030-02-{:02d}"),
                                            ("posblock", "7:2030-02-{:02d}"))
              for key in (fmt.format(k) for k in range(1, 1 + len(dwell) // 3))]
    last = [("day", f"2030-01-{1 + len(dwell) // 3:02d}"),
            ("block", f"7:2030-02-{1 + len(dwell) // 3:02d}")]
    for units in (normal, last, [*normal, *last]):
        got = pc.read_units(conn, index, units)
        for kind in ("day", "pos", "block", "posblock"):
            keys = [k for u, k in units if u == kind]
            if keys:
                want = pc._read_rows(conn, kind, keys, index, None)
                for k in keys:
                    assert np.array_equal(got[(kind, k)], want[k]), (kind, k)
    # the normal ones come from the aggregated row; a unit with 1e-10 falls back
    assert pc._read_aggregated(conn, "day", [k for u, k in normal if u == "day"], index,
                               None) is not None
    assert pc._read_aggregated(conn, "day", [last[0][1]], index, None) is None
    scoped = pc.read_units(conn, index, normal, scope=["tyo"])
    for u in normal:
        assert not scoped[u][0].any()
        assert np.array_equal(scoped[u][1], pc.read_units(conn, index, [u])[u][1])


# ------------------------------------------------------------------ pure parts


@pytest.mark.parametrize("length", [1, 2, 6, 7, 8, 27, 28, 29, 56, 90, 91, 180])
def test_span_units_cover_each_day_once(length: int) -> None:
    for k in range(35):  # every weekday and position in a 28-day block
        last = date(2026, 11, 23) - timedelta(days=k)
        first = last - timedelta(days=length - 1)
        units = span_units(first, last)
        days = sorted(d for u in units if u[0] in ("day", "block") for d in unit_dates(u))
        assert days == [(first + timedelta(days=i)).isoformat() for i in range(length)]
        # POS: a block's POS and a loose day's are units of their own
        pos = sorted(d for u in units if u[0] in ("pos", "posblock") for d in unit_dates(u))
        assert pos == days


def test_a_unit_is_stale_when_a_counter_it_depends_on_moves() -> None:
    block, pos_block = ("block", "7:2026-11-16"), ("posblock", "7:2026-11-16")
    counters = {d: (1, 1) for d in unit_dates(block)}
    day, pos = ("day", "2026-11-18"), ("pos", "2026-11-18")
    units = (block, pos_block, day, pos)
    was = {u: stamp(u, counters) for u in units}
    counters["2026-11-18"] = (2, 1)  # traffic of that date changed
    assert [stamp(u, counters) != was[u] for u in units] == [True, False, True, False]
    counters["2026-11-18"] = (2, 2)  # then its POS
    assert [stamp(u, counters) != was[u] for u in units] == [True, True, True, True]
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


@pytest.mark.parametrize("text, n, want", [
    ("1,2,3", 3, [1.0, 2.0, 3.0]), ("-1,20", 2, [-1.0, 20.0]),
    ("1152921504606846975,0", 2, [float(2**60 - 1), 0.0]),
    ("1,3.5", 2, None), ("1,2-3", 2, None), ("1,,2", 3, None), (",1", 2, None),
    ("1,", 2, None), ("1e3,2", 2, None), ("1,2", 3, None), ("NaN,1", 2, None)])
def test_aggregated_numbers_are_integers_or_refused(text: str, n: int,
                                                    want: list[float] | None) -> None:
    """A column's text is parsed only when it is n integers; else its unit's rows are read."""
    got = pc._numbers(text, n)
    assert (got if got is None else got.tolist()) == want
