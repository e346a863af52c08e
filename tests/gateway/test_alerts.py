"""gateway/alerts.py: which alerts hold, from plain facts and a pinned clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.alerts import (
    AlertSettings,
    CameraFact,
    DeviceFact,
    Facts,
    OccupancyFact,
    TrafficFact,
    evaluate,
    holds,
)

NOW = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
RULES = AlertSettings(offline_minutes=10, outbox_backlog=100, traffic_fraction=0.3,
                      traffic_min_baseline=20)


def device(ago_s: float, state: str = "online", depth: int = 0,
           cams: tuple[CameraFact, ...] = (), clock_offset_h: float = 0) -> DeviceFact:
    """A device last heard ``ago_s`` seconds ago, its clock ``clock_offset_h`` hours off."""
    received = NOW - timedelta(seconds=ago_s)
    return DeviceFact("s1", "edge1", state, received,
                      received + timedelta(hours=clock_offset_h), depth, cams)


def cam(state: str, down_s: float, clock_offset_h: float = 0, ago_s: float = 0) -> CameraFact:
    """A camera in state ``state`` since ``down_s`` before its report (device clock)."""
    sent = NOW - timedelta(seconds=ago_s) + timedelta(hours=clock_offset_h)
    return CameraFact("door", state, sent - timedelta(seconds=down_s))


def kinds(facts: Facts) -> list[tuple[str, str]]:
    return sorted((a.kind, a.subject) for a in holds(facts, RULES, NOW))


@pytest.mark.parametrize(("case", "dev", "expected"), [
    ("heard 30 s ago", device(30), []),
    ("silent 9 min 59 s", device(599), []),
    ("silent exactly 10 min", device(600), [("device_offline", "edge1")]),
    ("last will 2 min ago", device(120, "offline"), []),
    ("last will 11 min ago", device(660, "offline"), [("device_offline", "edge1")]),
    ("backlog at the threshold", device(5, depth=100), []),
    ("backlog over it", device(5, depth=101), [("outbox_backlog", "edge1")]),
    ("offline device: its stale backlog is not a second alert",
     device(900, depth=5000), [("device_offline", "edge1")]),
    ("camera ok for long", device(5, cams=(cam("ok", 3600, ago_s=5),)), []),
    ("camera reconnecting 5 min", device(5, cams=(cam("reconnecting", 300, ago_s=5),)), []),
    ("camera failed 10 min", device(5, cams=(cam("failed", 600, ago_s=5),)),
     [("camera_offline", "edge1/door")]),
    ("camera down 9 min in a report 1 min old", device(60, cams=(cam("failed", 540, ago_s=60),)),
     [("camera_offline", "edge1/door")]),
    ("device clock 5 h ahead, camera down 2 min",
     device(5, clock_offset_h=5, cams=(cam("failed", 120, clock_offset_h=5, ago_s=5),)), []),
    ("device clock 5 h behind, camera down 11 min",
     device(5, clock_offset_h=-5, cams=(cam("stopped", 660, clock_offset_h=-5, ago_s=5),)),
     [("camera_offline", "edge1/door")]),
])
def test_device_and_camera_alerts(case: str, dev: DeviceFact,
                                  expected: list[tuple[str, str]]) -> None:
    assert kinds(Facts(devices=(dev,))) == expected, case


@pytest.mark.parametrize(("case", "fact", "fires"), [
    ("well below the usual", TrafficFact("s1", "2026-12-06", 14, 10, (100, 120, 90, 110)), True),
    ("at 30 % of the median (105)", TrafficFact("s1", "2026-12-06", 14, 32, (100, 120, 90, 110)),
     False),
    ("just under 30 % of the median", TrafficFact("s1", "2026-12-06", 14, 31, (100, 120, 90, 110)),
     True),
    ("median below the minimum baseline", TrafficFact("s1", "2026-12-06", 9, 0, (15, 19, 18, 25)),
     False),
    ("one earlier weekday only", TrafficFact("s1", "2026-12-06", 14, 0, (200,)), False),
    ("no complete hour yet", TrafficFact("s1", "2026-12-06", 0, 0, (0, 0, 0, 0)), False),
    ("one outlier week does not move the median",
     TrafficFact("s1", "2026-12-06", 14, 20, (100, 5000, 90, 110)), True),
])
def test_traffic_far_below_the_same_weekday(case: str, fact: TrafficFact, fires: bool) -> None:
    got = holds(Facts(traffic=(fact,)), RULES, NOW)
    assert [a.kind for a in got] == (["traffic_low"] if fires else []), case
    if fires:
        assert got[0].subject == "2026-12-06" and got[0].detail["today"] == fact.today


@pytest.mark.parametrize(("occupancy", "limit", "fires"), [(40, 40, False), (41, 40, True),
                                                           (0, 1, False)])
def test_occupancy_over_the_store_limit(occupancy: int, limit: int, fires: bool) -> None:
    got = holds(Facts(occupancy=(OccupancyFact("s1", occupancy, limit),)), RULES, NOW)
    assert [(a.kind, a.detail) for a in got] == (
        [("occupancy_high", {"occupancy": occupancy, "limit": limit})] if fires else [])


def test_raised_once_while_it_holds_resolved_once_when_it_stops() -> None:
    down = Facts(devices=(device(700),))
    first = evaluate(down, RULES, NOW, open_keys=set())
    assert [a.key for a in first.raised] == ["device_offline:s1:edge1"]
    assert first.resolved == ()
    open_now = {a.key for a in first.raised}
    again = evaluate(down, RULES, NOW, open_now)
    assert again.raised == () and again.resolved == ()
    back = evaluate(Facts(devices=(device(1),)), RULES, NOW, open_now)
    assert back.raised == () and back.resolved == ("device_offline:s1:edge1",)
    assert evaluate(Facts(devices=(device(1),)), RULES, NOW, set()).resolved == ()


def test_bad_settings_fail_naming_the_field() -> None:
    with pytest.raises(ValueError, match="retry_max_s"):
        AlertSettings(retry_initial_s=60, retry_max_s=10)
    with pytest.raises(ValueError, match="webhook_url"):
        AlertSettings(webhook_url="ftp://example")


@pytest.mark.parametrize(("case", "dev", "hearing_min", "expected"), [
    ("silent 20 min, the gateway has heard for 2 min", device(1200), 2, []),
    ("silent 20 min, the gateway has heard for 10 min", device(1200), 10,
     [("device_offline", "edge1")]),
    ("last will 20 min ago, the gateway back for 9 min", device(1200, "offline"), 9, []),
    ("heard 30 s ago, gateway just connected", device(30), 0, []),
    # a camera's own report is as old as it is, whatever the gateway heard since
    ("camera failed 11 min in a fresh report", device(5, cams=(cam("failed", 660, ago_s=5),)),
     0, [("camera_offline", "edge1/door")]),
])
def test_silence_counts_from_when_the_gateway_could_hear(
        case: str, dev: DeviceFact, hearing_min: float,
        expected: list[tuple[str, str]]) -> None:
    facts = Facts(devices=(dev,), hearing_since=NOW - timedelta(minutes=hearing_min))
    assert sorted((a.kind, a.subject) for a in holds(facts, RULES, NOW)) == expected, case


def test_hearing_since_starts_at_each_connection() -> None:
    from gateway.alerts_runner import Hearing

    h = Hearing()
    t = [NOW + timedelta(seconds=i) for i in range(5)]
    assert [h.update(False, t[0]), h.update(True, t[1]), h.update(True, t[2]),
            h.update(False, t[3]), h.update(True, t[4])] == [None, t[1], t[1], None, t[4]]
