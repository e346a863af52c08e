"""The shared message schema: valid messages round-trip, invalid ones name what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from storesense.schema import (
    DWELL_BIN_EDGES_S,
    AnalyticsConfig,
    DeviceStatus,
    MessageError,
    OccupancyStats,
    WindowAggregate,
    ZoneStats,
    message_id,
)

T0 = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)


def window(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "message_id": message_id("s1", "cam1", T0),
        "store_id": "s1",
        "camera_id": "cam1",
        "window_start": T0.isoformat(),
        "window_end": (T0 + timedelta(seconds=60)).isoformat(),
        "frames": 900,
        "lines": [{"line": "door", "in_count": 3, "out_count": 1}],
        "occupancy": {"avg": 1.5, "max": 3},
    }
    base.update(over)
    return base


def test_round_trip_through_json() -> None:
    w = WindowAggregate.from_dict(window())
    again = WindowAggregate.from_json(w.to_json())
    assert again == w
    assert again.window_start == T0
    assert w.message_id == "s1/cam1/20260329T005900Z/v1"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"schema_version": 2}, "schema_version"),
        ({"pixels": [1, 2, 3]}, "pixels"),
        ({"store_id": "s1/../x"}, "store_id"),
        ({"occupancy": {"avg": 5.0, "max": 3}}, "exceeds max"),
        ({"window_end": T0.isoformat()}, "window_end"),
        ({"message_id": "other"}, "message_id"),
        ({"window_start": "2026-03-29T00:59:00"}, "window_start"),
        ({"frames": -1}, "frames"),
        ({"demographics": {"age_bands": {"kid": 1}}}, "unknown age bands"),
        ({"occupancy": {"avg": float("nan"), "max": 3}}, "occupancy.avg"),
        ({"lines": [{"line": "door", "in_count": 1}]}, "out_count"),
    ],
)
def test_invalid_windows_name_the_problem(change: dict[str, object], fragment: str) -> None:
    with pytest.raises(MessageError) as e:
        WindowAggregate.from_dict(window(**change))
    assert fragment in str(e.value)


def test_to_json_refuses_what_the_gateway_would_refuse() -> None:
    # constructing a message does not validate; encoding it for sending does
    bad = DeviceStatus(store_id="s1", device_id="d1", state="online", sent_at=T0, rss_mb=-1.0)
    with pytest.raises(MessageError, match="rss_mb"):
        bad.to_json()
    naive = DeviceStatus(store_id="s1", device_id="d1", state="online",
                         sent_at=T0.replace(tzinfo=None))
    with pytest.raises(MessageError, match="sent_at"):
        naive.to_json()


def test_zone_histogram_must_match_visits() -> None:
    hist = [0] * len(DWELL_BIN_EDGES_S)
    hist[2] = 2
    ok = ZoneStats(
        zone="shelf", entries=2, visits=2, stops=1, dwell_total_s=14.0, dwell_mean_s=7.0,
        dwell_p50_s=7.0, dwell_p90_s=9.0, dwell_histogram=hist,
        occupancy=OccupancyStats(avg=0.2, max=1),
    )
    assert ok.visits == 2
    with pytest.raises(MessageError, match="sum to visits"):
        ZoneStats.from_dict({**ok.to_dict(), "visits": 3, "stops": 1})


def test_analytics_config_rejects_unknown_keys_and_duplicates() -> None:
    with pytest.raises(ValidationError, match="lnes"):
        AnalyticsConfig.model_validate({"lnes": []})
    line = {"name": "door", "points": (0.5, 0.0, 0.5, 1.0)}
    with pytest.raises(ValidationError, match="duplicate line names"):
        AnalyticsConfig.model_validate({"lines": [line, line]})
    with pytest.raises(ValidationError, match="points must be distinct"):
        AnalyticsConfig.model_validate({"lines": [{"name": "x", "points": (0.5, 0.5, 0.5, 0.5)}]})
