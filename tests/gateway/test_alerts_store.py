"""Alert state and the facts behind it, in a real SQLite file: raised once, resolved once,
a delivery per event; traffic and occupancy facts from stored rollups."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from gateway import alerts_store
from gateway.alerts import Alert, AlertSettings, Changes, TrafficFact
from gateway.alerts_facts import read_facts
from gateway.alerts_runner import evaluate_once
from gateway.storage import Storage
from storesense.schema import CameraStatus, DeviceStatus
from tests.gateway.helpers import TOPICS, store, window

NOW = datetime(2026, 12, 6, 15, 20, tzinfo=UTC)  # a Sunday; London is on UTC in December


def test_raise_is_stored_once_and_resolve_once_with_one_delivery_each(storage: Storage) -> None:
    a = Alert("device_offline", "s1", "edge1", {"minutes": 11})
    with storage.transaction() as conn:
        alerts_store.apply(conn, Changes(raised=(a,)), "2026-12-06T15:00:00Z")
        alerts_store.apply(conn, Changes(raised=(a,)), "2026-12-06T15:01:00Z")  # a racing twin
    with storage.transaction() as conn:
        alerts_store.apply(conn, Changes(resolved=(a.key, a.key)), "2026-12-06T15:05:00Z")
        alerts_store.apply(conn, Changes(resolved=(a.key,)), "2026-12-06T15:06:00Z")
    rows = storage.read().execute("SELECT raised_at, resolved_at FROM alerts").fetchall()
    assert [tuple(r) for r in rows] == [("2026-12-06T15:00:00Z", "2026-12-06T15:05:00Z")]
    events = [json.loads(p)["event"] for _, p, _ in
              alerts_store.due(storage.read(), "2026-12-06T16:00:00Z")]
    assert events == ["raised", "resolved"]
    # it can be raised again after it was resolved: a new row
    with storage.transaction() as conn:
        alerts_store.apply(conn, Changes(raised=(a,)), "2026-12-06T16:00:00Z")
    assert alerts_store.open_keys(storage.read()) == {a.key}
    listed = alerts_store.listing(storage.read(), ["s1"], "all", 10)
    assert [x["resolved_at"] for x in listed] == [None, "2026-12-06T15:05:00Z"]
    assert alerts_store.listing(storage.read(), ["other"], "all", 10) == []


def test_traffic_fact_is_the_complete_hours_of_today_and_of_earlier_same_weekdays(
        storage: Storage) -> None:
    storage.upsert_stores([store("s1")])
    windows = []
    for hour in range(9, 15):  # today: 1 visitor an hour 09:00-14:59
        windows.append(window("s1", NOW.replace(hour=hour, minute=0), ins=1, outs=0))
    windows.append(window("s1", NOW.replace(minute=0), ins=50, outs=0))  # 15:xx, incomplete
    for weeks in (1, 2, 3):  # three earlier Sundays: 10 an hour, and 100 after 15:00
        day = NOW - timedelta(weeks=weeks)
        windows += [window("s1", day.replace(hour=h, minute=0), ins=10, outs=0)
                    for h in range(9, 15)]
        windows.append(window("s1", day.replace(hour=16, minute=0), ins=100, outs=0))
    windows.append(window("s1", NOW - timedelta(days=1), ins=500, outs=0))  # a Saturday
    storage.store_windows(windows)
    facts = read_facts(storage.read(), storage.registry, NOW, weeks=4)
    # the fourth Sunday back had no windows (not installed yet): no baseline, not a zero
    assert facts.traffic == (TrafficFact("s1", "2026-12-06", 15, 6, (60, 60, 60)),)
    assert facts.occupancy == ()  # no limit set


def test_occupancy_fact_and_the_runner_raise_then_resolve(storage: Storage) -> None:
    storage.upsert_stores([store("s1")])
    storage.store_windows([window("s1", NOW.replace(hour=10, minute=m), ins=5, outs=1)
                           for m in range(10)])  # 50 in, 10 out: 40 in store
    with storage.transaction() as conn:
        alerts_store.set_limit(conn, "s1", 39, "test", "2026-12-06T00:00:00Z")
    rules = AlertSettings(traffic_min_baseline=1_000_000)
    changes = evaluate_once(storage, rules, NOW)
    assert [(a.kind, a.detail) for a in changes.raised] == [
        ("occupancy_high", {"occupancy": 40, "limit": 39})]
    assert evaluate_once(storage, rules, NOW).raised == ()  # still holds: not again
    with storage.transaction() as conn:
        alerts_store.set_limit(conn, "s1", 40, "test", "2026-12-06T00:00:00Z")
    assert evaluate_once(storage, rules, NOW).resolved == ("occupancy_high:s1:s1",)


def test_device_facts_come_from_the_stored_status(storage: Storage) -> None:
    storage.upsert_stores([store("s1")])
    sent = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)  # the device's clock, an hour behind
    status = DeviceStatus(store_id="s1", device_id="edge1", state="online", sent_at=sent,
                          outbox_depth=7, cameras=[CameraStatus(
                              camera_id="door", state="failed", since=sent - timedelta(minutes=3),
                              fps=0, lag_s=0, frames_total=0, dropped_frames=0)])
    storage.ingest([(TOPICS.status("s1", "edge1"), status.to_json())])
    (d,) = read_facts(storage.read(), storage.registry, NOW, weeks=4).devices
    assert (d.device_id, d.state, d.outbox_depth) == ("edge1", "online", 7)
    assert d.received_at == storage.clock() and d.sent_at == sent
    assert [(c.camera_id, c.state, d.sent_at - c.since) for c in d.cameras] == [
        ("door", "failed", timedelta(minutes=3))]
