"""Store-local rollups: DST days have 23 and 25 hours; zones are summed by local label."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gateway import queries
from gateway.storage import Storage
from tests.gateway.helpers import store, window


def _hourly(store_id: str, first: datetime, hours: int, ins: int = 1) -> list:
    return [window(store_id, first + timedelta(hours=h), ins=ins, outs=0, span_s=3600)
            for h in range(hours)]


@pytest.mark.parametrize(("tz", "day", "hours", "repeated"), [
    ("Europe/London", "2026-03-29", 23, None),
    ("Europe/London", "2026-10-25", 25, "2026-10-25T01:00"),
    ("America/New_York", "2026-03-08", 23, None),
    ("America/New_York", "2026-11-01", 25, "2026-11-01T01:00"),
    ("Asia/Kolkata", "2026-06-01", 24, None),  # UTC+5:30: local hours are not UTC hours
])
def test_dst_day_has_its_true_number_of_hours(
    storage: Storage, tz: str, day: str, hours: int, repeated: str | None,
) -> None:
    storage.upsert_stores([store("s1", tz=tz)])
    d = date.fromisoformat(day)
    # one window per UTC hour from two days before to two days after covers the local day
    storage.store_windows(_hourly("s1", datetime(d.year, d.month, d.day, tzinfo=UTC)
                                  - timedelta(days=2), 24 * 5))
    conn = storage.read()
    rows = conn.execute("SELECT local_hour FROM rollup_hour WHERE local_date=? "
                        "ORDER BY hour_utc", (day,)).fetchall()
    assert len(rows) == hours
    day_row = conn.execute("SELECT windows, visitors FROM rollup_day WHERE local_date=?",
                           (day,)).fetchone()
    assert tuple(day_row) == (hours, hours)
    series = queries.traffic(conn, ["s1"], "hour", d, d)
    assert sum(p["visitors"] for p in series) == hours  # the day adds up whatever the labels
    by_label = {p["period"]: p["visitors"] for p in series}
    if repeated:
        assert by_label[repeated] == 2  # both 01:00 hours share their local label
        assert len(series) == 24
    if hours == 23:
        assert f"{day}T01:00" not in by_label if tz == "Europe/London" else True
        assert len(series) == 23
    if tz == "Asia/Kolkata":
        assert all(p.endswith(":00") for p in by_label)


def test_stores_in_different_zones_sum_by_local_label(storage: Storage) -> None:
    storage.upsert_stores([store("ldn", tz="Europe/London", franchisee="a"),
                           store("tyo", tz="Asia/Tokyo", franchisee="b"),
                           store("nyc", tz="America/New_York", franchisee="c")])
    # 10:00 local in each store on 2026-11-23, three different UTC instants
    starts = {"ldn": datetime(2026, 11, 23, 10, tzinfo=UTC),
              "tyo": datetime(2026, 11, 23, 1, tzinfo=UTC),
              "nyc": datetime(2026, 11, 23, 15, tzinfo=UTC)}
    storage.store_windows([window(s, t, ins=n, outs=0, span_s=3600)
                           for (s, t), n in zip(starts.items(), (1, 10, 100), strict=True)])
    # and a Tokyo window at 23:30 UTC on the 23rd, which is already the 24th in Tokyo
    storage.store_windows([window("tyo", datetime(2026, 11, 23, 23, 30, tzinfo=UTC), ins=7,
                                  outs=0)])
    conn = storage.read()
    d = date(2026, 11, 23)
    hours = queries.traffic(conn, None, "hour", d, d)
    assert hours == [{"period": "2026-11-23T10:00", "in": 111, "out": 0, "visitors": 111,
                      "in_store": 111, "occupancy_avg": 4.5, "occupancy_max": 12,
                      "windows": 3, "simulated_windows": 0}]
    days = queries.traffic(conn, None, "day", d, date(2026, 11, 24))
    assert [(p["period"], p["visitors"]) for p in days] == [("2026-11-23", 111),
                                                             ("2026-11-24", 7)]
    minutes = queries.traffic(conn, ["tyo"], "minute", date(2026, 11, 24), date(2026, 11, 24),
                              storage.registry)
    assert [p["period"] for p in minutes] == ["2026-11-24T08:30"]


def test_minutes_read_every_camera_of_the_asked_stores_and_only_that_day(
    storage: Storage,
) -> None:
    # minute traffic reads one range of message ids per camera: check the day's edges, a
    # second camera, a camera that registered itself (and then left the registry), and that
    # another store whose id shares a prefix stays out
    storage.upsert_stores([store("s1"), store("s10"), store("s2")])
    day = datetime(2026, 11, 23, tzinfo=UTC)  # London: UTC in November
    minute = timedelta(minutes=1)
    storage.store_windows(
        [window("s1", t, ins=1) for t in (day - minute, day, day + 12 * 60 * minute,
                                           day + 24 * 60 * minute - minute, day + 24 * 60 * minute)]
        + [window("s1", day, camera_id="floor", ins=10),
           window("s1", day, camera_id="new", ins=100)]  # has a line: registers as entrance
        + [window(s, day, ins=1000) for s in ("s10", "s2")])
    minutes = queries.traffic(storage.read(), ["s1"], "minute", day.date(), day.date(),
                              storage.reload_registry())
    assert [(p["period"], p["in"], p["visitors"]) for p in minutes] == [
        ("2026-11-23T00:00", 111, 101), ("2026-11-23T12:00", 1, 1), ("2026-11-23T23:59", 1, 1)]
    # re-imported without that camera: its windows still count (not as visitors, it has
    # no role now), as the hour and day rollups count them
    storage.upsert_stores([store("s1")])
    minutes = queries.traffic(storage.read(), ["s1"], "minute", day.date(), day.date(),
                              storage.reload_registry())
    assert [(p["period"], p["in"], p["visitors"]) for p in minutes] == [
        ("2026-11-23T00:00", 111, 1), ("2026-11-23T12:00", 1, 1), ("2026-11-23T23:59", 1, 1)]


def test_zone_dwell_percentiles_come_from_the_merged_histogram(storage: Storage) -> None:
    storage.upsert_stores([store("s1")])
    t0 = datetime(2026, 11, 23, 10, tzinfo=UTC)
    storage.store_windows([window("s1", t0 + timedelta(minutes=i), camera_id="floor", ins=0,
                                  outs=0, zone_visits=4) for i in range(3)])
    (z,) = queries.zones(storage.read(), "s1", date(2026, 11, 23), date(2026, 11, 23))
    assert (z["visits"], z["stops"], z["dwell_mean_s"]) == (12, 12, 15.0)
    assert 10.0 <= z["dwell_p50_s"] <= z["dwell_p90_s"] <= 20.0
    assert queries.dwell_percentile([0, 0, 10] + [0] * 8, 0.5) == pytest.approx(7.5)  # 5..10 s bin


def test_chain_day_totals_match_the_store_rollups_and_feed_the_hq_trend(
    storage: Storage,
) -> None:
    from gateway import overview as ov
    from tests.gateway.helpers import message

    storage.upsert_stores([store("ldn", tz="Europe/London"), store("tyo", tz="Asia/Tokyo")])
    t0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
    windows = [window(s, t0 + timedelta(hours=h), ins=h % 5 + 1, outs=0)
               for s in ("ldn", "tyo") for h in range(0, 72, 5)]
    storage.ingest([message(w) for w in windows])
    storage.ingest([message(w) for w in windows[:7]])  # redelivered: must not count twice
    conn = storage.read()
    per_store = dict(conn.execute(
        "SELECT local_date, SUM(visitors) FROM rollup_day GROUP BY local_date").fetchall())
    chain = dict(conn.execute("SELECT local_date, visitors FROM rollup_chain_day").fetchall())
    assert chain == per_store and sum(chain.values()) == sum(w.lines[0].in_count
                                                             for w in windows)
    end = date(2026, 11, 23)
    everyone = ov._trend(conn, None, end, 5)  # hq: the maintained chain rows
    scoped = ov._trend(conn, ["ldn", "tyo"], end, 5)  # a scope: summed from rollup_day
    assert everyone == scoped and sum(p["visitors"] for p in everyone) > 0
