"""Hostile payloads and wrong clocks against Storage on a real SQLite file (issue 18): time
and count bounds, control characters, dead-letter retention, the migration of old dead
letters, and that a failing database is not blamed on a message."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import psycopg
import pytest
from pydantic import ValidationError

from edge.analytics.counting import CrossingEvent
from edge.analytics.windows import WindowAccumulator
from edge.analytics.zones import Visit
from gateway import migrations
from gateway.bench import payload, store_ids
from gateway.db import connect, connect_sqlite
from gateway.deadletters import DeadLetterSettings
from gateway.isolate import ingest_isolating
from gateway.plausible import Checker, CheckSettings
from gateway.storage import Storage
from storesense.schema import (
    DeviceStatus,
    Heatmap,
    LineCount,
    LineSpec,
    OccupancyStats,
    Transition,
    WindowAggregate,
    message_id,
)
from storesense.simulate import DEMO_STORES, simulated_window
from tests.gateway.conftest import PINNED_NOW
from tests.gateway.helpers import TOPICS, message, store, window

NOW = PINNED_NOW
T = NOW - timedelta(hours=3)


def _dead(s: Storage) -> list[str]:
    return [r[0] for r in s.read().execute("SELECT reason FROM dead_letters ORDER BY id")]


def _ingest_one(s: Storage, w: WindowAggregate) -> str | None:
    """Ingest one window, encoded as a device would without the edge's own check (to_json
    validates); None if stored, else its dead-letter reason."""
    before = len(_dead(s))
    r = s.ingest([(TOPICS.aggregate(w.store_id, w.camera_id), msgspec.json.encode(w))])
    return None if r.stored else _dead(s)[before]


def _with(struct: Any, **changes: object) -> Any:
    return msgspec.structs.replace(struct, **changes)


@pytest.mark.parametrize(("start", "span_s", "needle"), [
    (NOW + timedelta(minutes=6), 60, "window_end"),  # a clock running 6 minutes fast
    (NOW - timedelta(days=31), 60, "window_start"),  # a clock a month slow
    (T, 3601, "3601 s long"),  # longer than any edge window
])
def test_windows_out_of_the_gateways_time_are_dead_lettered(
    storage: Storage, start: datetime, span_s: int, needle: str,
) -> None:
    storage.upsert_stores([store("s1")])
    reason = _ingest_one(storage, window("s1", start, span_s=span_s))
    assert reason is not None and reason.startswith("implausible") and needle in reason


@pytest.mark.parametrize(("start", "span_s"), [
    (NOW + timedelta(minutes=3), 60),  # a little fast: NTP-less edges drift
    (NOW - timedelta(days=29), 60),  # an outbox replayed after a long outage
    (T, 3600),
])
def test_windows_within_the_gateways_time_are_stored(
    storage: Storage, start: datetime, span_s: int,
) -> None:
    storage.upsert_stores([store("s1")])
    assert _ingest_one(storage, window("s1", start, span_s=span_s)) is None


def test_a_status_from_the_end_of_time_is_dead_lettered_not_a_stalled_commit(
    storage: Storage,
) -> None:
    storage.upsert_stores([store("s1")])
    doc = json.loads(DeviceStatus(store_id="s1", device_id="d", state="online",
                                  sent_at=NOW).to_json())
    doc["sent_at"] = "9999-12-31T23:00:00-05:00"  # year 10000 in UTC
    r = storage.ingest([(TOPICS.status("s1", "d"), json.dumps(doc).encode())])
    assert r.dead == 1 and "no UTC equivalent" in _dead(storage)[0]


def _zone_window(**zone: object) -> WindowAggregate:
    w = window("s1", T, camera_id="floor", ins=0, outs=0, zone_visits=4)
    changed: WindowAggregate = _with(w, zones=[_with(w.zones[0], **zone)])
    return changed


@pytest.mark.parametrize(("make", "needle"), [
    (lambda: window("s1", T, ins=1_000_000, outs=0), "line 'door' 1000000 in"),
    (lambda: window("s1", T, ins=400, outs=201), "> 10 people/s"),
    (lambda: _with(window("s1", T), occupancy=OccupancyStats(avg=3, max=501)), "occupancy max"),
    (lambda: _with(window("s1", T), frames=60 * 241), "frames"),
    (lambda: _zone_window(entries=601), "zone 'promo' entries 601"),
    (lambda: _zone_window(dwell_total_s=4 * 86_400.0 + 1), "implausible dwell"),
    (lambda: window("s1", T, ages={"<25": 1101}), "demographics age_bands"),
    (lambda: _with(window("s1", T), transitions=[Transition(from_zone="a", to_zone="b",
                                                            count=10**6)]), "transitions"),
    (lambda: _with(window("s1", T), heatmap=Heatmap(cols=1, rows=1, cells=[500 * 60 + 1.0])),
     "heatmap"),
])
def test_counts_no_camera_can_see_are_dead_lettered(storage: Storage, make, needle) -> None:
    storage.upsert_stores([store("s1")])
    reason = _ingest_one(storage, make())
    assert reason is not None and needle in reason
    assert storage.read().execute("SELECT COUNT(*) FROM rollup_day").fetchone()[0] == 0


def test_the_busiest_windows_we_make_are_far_inside_the_bounds() -> None:
    """The simulator (demo, seeding), the benchmark's windows and the test windows pass bounds
    four times tighter than the defaults, at the busiest hour, over 60 s and 3600 s."""
    d = CheckSettings()
    tight = Checker(CheckSettings(max_crossings_per_s=d.max_crossings_per_s / 4,
                                  max_occupancy=d.max_occupancy // 4, max_fps=d.max_fps / 4,
                                  max_visit_s=d.max_visit_s / 4))
    rng = np.random.default_rng(0)
    day = datetime(2026, 11, 21, tzinfo=UTC)  # a Saturday: the simulator's busiest
    windows = [simulated_window(s, c, day + timedelta(hours=h), day + timedelta(hours=h,
                                                                                seconds=span), rng)
               for s in DEMO_STORES for c in s.cameras for h in range(24) for span in (60, 3600)]
    assert max(x.in_count for w in windows for x in w.lines) > 0  # busy enough to mean it
    windows += [WindowAggregate.from_json(payload(i, store_ids(10))[1]) for i in range(70)]
    windows += [window("s1", day, zone_visits=9, ages={"<25": 3}), _busy_edge_window()]
    for w in windows:
        assert tight.window(w, w.window_end) is None, w.message_id


def _busy_edge_window() -> WindowAggregate:
    """A crowded minute through the edge's own accumulator (edge/analytics/windows.py): 30 frames a
    second, 40 people in view, someone crossing the door every half second, 20 visits of
    30 s to the display ending, one face each."""
    acc = WindowAccumulator("s1", "door", 60, stop_threshold_s=5.0)
    t0 = 1_764_000_000.0  # a multiple of 60
    for i in range(60 * 30):
        t = t0 + i / 30
        acc.add_frame(t, occupancy=40, zone_occupancy={"display": 12})
        crossing = [CrossingEvent("door", i, "in" if i % 2 else "out", t)] if i % 15 == 0 else []
        acc.add_crossings(t, crossing, ["door"])
    ended = [Visit("display", k, t0 + k, t0 + k + 30.0) for k in range(20)]
    acc.add_visits(t0 + 55, [], ended)
    acc.add_demographics(t0 + 55, [("25-34", "female")] * 20)
    [w] = acc.roll(t0 + 61)
    assert sum(x.in_count + x.out_count for x in w.lines) == 120
    return w


@pytest.mark.parametrize(("field", "value"), [
    ("line", "do\x00or"), ("line", "door\n"), ("line", "\x1b[31mred"), ("line", "x\x85y"),
])
def test_control_characters_in_names_are_refused(storage: Storage, field: str,
                                                 value: str) -> None:
    storage.upsert_stores([store("s1")])
    reason = _ingest_one(storage, _with(window("s1", T),
                                        lines=[LineCount(line=value, in_count=1, out_count=0)]))
    assert reason is not None and "without control characters" in reason
    assert "lines[0].line" in reason


def test_control_characters_in_zone_and_camera_ids_are_refused(storage: Storage) -> None:
    storage.upsert_stores([store("s1")])
    zone = _ingest_one(storage, _zone_window(zone="pro\tmo"))
    cam = "door\n"  # Python's `$` matched before a final newline: this id was accepted
    w = _with(window("s1", T), camera_id=cam, message_id=message_id("s1", cam, T))
    # to_json would refuse it (it validates): encode as a hostile device would
    r = storage.ingest([(TOPICS.aggregate("s1", cam), msgspec.json.encode(w))])
    assert r.dead == 1
    reasons = _dead(storage)
    assert zone is not None and "zones[0].zone" in zone and "control characters" in zone
    assert "$.camera_id" in reasons[-1] and "no control characters" in reasons[-1]
    with pytest.raises(ValidationError, match="pattern"):  # the edge's config refuses them too
        LineSpec(name="door\x00", points=(0.5, 0, 0.5, 1))


class _Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def test_dead_letters_expire_and_are_capped(tmp_path: Path) -> None:
    clock = _Clock(NOW)
    s = Storage(tmp_path / "g.db", clock=clock,
                dead_letters=DeadLetterSettings(max_rows=100, retention_days=14))
    try:
        junk = [(TOPICS.aggregate("s1", f"cam{i}"), b"junk %d" % i) for i in range(150)]
        s.ingest(junk)  # 150 topics, each within its budget: all stored, then capped
        rows = s.read().execute("SELECT payload FROM dead_letters ORDER BY id").fetchall()
        assert [bytes(r[0]) for r in rows] == [p for _, p in junk[50:]]  # the newest 100
        clock.t = NOW + timedelta(days=13)
        s.ingest(junk[:1])
        assert len(_dead(s)) == 100  # 13 days: all still there (and one more, capped)
        clock.t = NOW + timedelta(days=14, minutes=1)
        s.ingest([])
        assert len(_dead(s)) == 1  # only the one from day 13
    finally:
        s.close()


def test_old_dead_letters_are_cut_and_marked_for_replay_by_the_migration(
    tmp_path: Path,
) -> None:
    db = tmp_path / "g.db"
    conn = connect_sqlite(db)
    migrations.apply(conn, migrations.MIGRATIONS[:6])  # a database from before
    topic, raw = message(window("late", T))
    at = "2026-11-24T21:00:00Z"
    conn.executemany(
        "INSERT INTO dead_letters (received_at, topic, reason, payload) VALUES (?,?,?,?)",
        [(at, TOPICS.aggregate("s1", "door"), "bad", b"x" * 9000),
         (at, topic, "unknown store 'late'", raw.decode())])  # stored as text before
    conn.close()
    s = Storage(db, clock=lambda: NOW)
    try:
        junk, kept = s.read().execute(
            "SELECT length(payload), size, replay_store FROM dead_letters ORDER BY id")
        assert tuple(junk) == (4096, 9000, None) and kept[2] == "late"
        assert migrations.apply(s._conn) == []  # recorded: safe to rerun
        s.upsert_stores([store("late")])  # registering replays the old letter too
        assert s.read().execute("SELECT COUNT(*) FROM windows").fetchone()[0] == 1
        assert len(_dead(s)) == 1
    finally:
        s.close()


def test_a_failing_database_keeps_the_batch_and_blames_no_message(storage: Storage) -> None:
    storage.upsert_stores([store("s1")])
    if storage.engine == "sqlite":
        other = connect_sqlite(storage.path)
        other.raw.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        storage._conn.execute("PRAGMA busy_timeout=200")
        failure: type[Exception] = sqlite3.OperationalError
    else:  # another gateway holds the writers' lock, longer than we wait for it
        other = connect(storage.target)
        other.begin()
        storage._conn.execute("SET lock_timeout = '200ms'")
        failure = psycopg.errors.LockNotAvailable
    try:
        with pytest.raises(failure, match="lock"):
            ingest_isolating(storage, [message(window("s1", T))])
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert _dead(storage) == []
    assert ingest_isolating(storage, [message(window("s1", T))]).stored == 1
