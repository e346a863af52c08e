"""Camera configuration history in a real SQLite file, and installer reports as the ingest
receives them: validated against the topic, bounded, recorded once, dead-lettered otherwise."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from gateway import config_history as ch
from gateway.storage import Storage
from storesense.schema import AnalyticsConfig, CameraConfigMessage
from tests.gateway.helpers import TOPICS, store, window

NOW = "2026-11-24T12:00:00Z"
LINE = {"name": "door", "points": [0.1, 0.5, 0.9, 0.5]}


def analytics(window_s: int = 60) -> AnalyticsConfig:
    return AnalyticsConfig.model_validate({"lines": [LINE], "window_s": window_s})


def reported(store_id: str = "s1", camera_id: str = "door", version: str = "inst-1",
             window_s: int = 30) -> bytes:
    return CameraConfigMessage(store_id=store_id, camera_id=camera_id, config_version=version,
                               analytics=analytics(window_s)).model_dump_json().encode()


def test_versions_count_up_per_camera_and_only_the_latest_is_published(
        storage: Storage) -> None:
    with storage.transaction() as conn:
        a1 = ch.add(conn, "s1", "door", analytics(60), "hq", "ops", NOW)
        a2 = ch.add(conn, "s1", "door", analytics(120), "hq", "ops", NOW)
        b1 = ch.add(conn, "s1", "floor", analytics(60), "hq", "ops", NOW)
    assert [(e.version, e.config_version) for e in (a1, a2, b1)] == [
        (1, "hq-1"), (2, "hq-2"), (1, "hq-1")]
    # door's version 1 was superseded before it went out: never sent late
    assert [(e.camera_id, e.version) for e in ch.to_publish(storage.read())] == [
        ("door", 2), ("floor", 1)]
    with storage.transaction() as conn:
        ch.mark_published(conn, a2.id, NOW)
    assert [(e.camera_id, e.version) for e in ch.to_publish(storage.read())] == [("floor", 1)]
    msg = ch.get(storage.read(), "s1", "door", 2)
    assert msg is not None and msg.message().analytics.window_s == 120
    assert msg.message().config_version == "hq-2"
    assert [e.version for e in ch.history(storage.read(), "s1", "door")] == [2, 1]
    with pytest.raises(ValueError, match="source"), storage.transaction() as conn:
        ch.add(conn, "s1", "door", analytics(), "edge", "x", NOW)


@pytest.mark.parametrize(("case", "topic", "payload", "reason"), [
    ("payload names another store", TOPICS.reported("s1", "door"), reported(store_id="s2"),
     "topic says store/camera s1/door, payload says s2/door"),
    ("payload names another camera", TOPICS.reported("s1", "door"), reported(camera_id="floor"),
     "topic says store/camera s1/door, payload says s1/floor"),
    ("not JSON", TOPICS.reported("s1", "door"), b"\xff{", "invalid reported config"),
    ("a zone with two points", TOPICS.reported("s1", "door"), json.dumps({
        "store_id": "s1", "camera_id": "door", "config_version": "x", "analytics": {
            "zones": [{"name": "z", "polygon": [[0, 0], [1, 1]]}]}}).encode(),
     "analytics.zones.0.polygon"),
    ("too big", TOPICS.reported("s1", "door"), b" " * (ch.MAX_REPORTED_BYTES + 1) + b"{}",
     "exceeds"),
    ("wrong topic kind", TOPICS.status("s1", "door"), reported(), "topic not under"),
])
def test_bad_reports_are_refused_with_a_reason(case: str, topic: str, payload: bytes,
                                               reason: str) -> None:
    got = ch.parse_reported(TOPICS, topic, payload)
    assert isinstance(got, str) and reason in got, case


def test_reports_are_recorded_once_and_the_rest_dead_lettered(storage: Storage) -> None:
    storage.upsert_stores([store("s1")])
    w = window("s1", datetime(2026, 11, 24, 9, tzinfo=UTC))
    batch = [
        (TOPICS.reported("s1", "door"), reported()),
        (TOPICS.reported("s1", "door"), reported()),  # the retained copy, seen again
        (TOPICS.reported("s1", "door"), reported(store_id="s2")),
        (TOPICS.reported("s9", "door"), reported(store_id="s9")),  # not registered
        (TOPICS.aggregate("s1", "door"), w.to_json()),  # a window in the same batch
    ]
    result = ch.ingest_with_reported(storage, batch)
    assert (result.stored, result.duplicates, result.dead) == (2, 1, 2)  # report + window
    (e,) = ch.history(storage.read(), "s1", "door")
    assert (e.source, e.config_version, e.published_at) == ("installer", "inst-1", None)
    assert e.created_by == "installer at s1/door"
    reasons = sorted(r[0] for r in storage.read().execute("SELECT reason FROM dead_letters"))
    assert reasons == ["topic says store/camera s1/door, payload says s2/door",
                       "unknown store 's9'"]
    # seen again after a gateway restart: still one version; a new config is a new one
    ch.ingest_with_reported(storage, [(TOPICS.reported("s1", "door"), reported())])
    ch.ingest_with_reported(storage, [(TOPICS.reported("s1", "door"),
                                       reported(version="inst-2", window_s=20))])
    assert [(x.version, x.config_version) for x in ch.history(storage.read(), "s1", "door")] \
        == [(2, "inst-2"), (1, "inst-1")]
    assert storage.read().execute("SELECT COUNT(*) FROM windows").fetchone()[0] == 1
