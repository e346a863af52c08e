"""Small builders for gateway tests: stores, windows and payloads (real schema objects)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.registry import CameraRecord, StoreRecord
from storesense.schema import (
    DWELL_BIN_EDGES_S,
    Demographics,
    LineCount,
    OccupancyStats,
    WindowAggregate,
    ZoneStats,
    message_id,
)
from storesense.topics import Topics

TOPICS = Topics()


def recent_day() -> datetime:
    """Midnight UTC two days ago: windows from then on (for up to a day) are believable to a
    gateway on the real clock, such as a `gateway run` subprocess (gateway/plausible.py)."""
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=2)


def store(store_id: str, tz: str = "Europe/London", region: str = "Europe",
          franchisee: str = "f1", cameras: bool = True) -> StoreRecord:
    cams = [CameraRecord(camera_id="door", role="entrance"),
            CameraRecord(camera_id="floor", role="floor")] if cameras else None
    return StoreRecord(store_id=store_id, name=store_id.upper(), timezone=tz, region=region,
                       franchisee=franchisee, cameras=cams)


def window(store_id: str, start: datetime, camera_id: str = "door", ins: int = 3,
           outs: int = 2, span_s: int = 60, zone_visits: int = 0,
           ages: dict[str, int] | None = None) -> WindowAggregate:
    zones = []
    if zone_visits:
        hist = [0] * len(DWELL_BIN_EDGES_S)
        hist[3] = zone_visits  # 10-20 s
        zones.append(ZoneStats(
            zone="promo", entries=zone_visits, visits=zone_visits, stops=zone_visits,
            dwell_total_s=15.0 * zone_visits, dwell_mean_s=15.0, dwell_p50_s=15.0,
            dwell_p90_s=15.0, dwell_histogram=hist, occupancy=OccupancyStats(avg=1.0, max=2)))
    return WindowAggregate(
        message_id=message_id(store_id, camera_id, start), store_id=store_id,
        camera_id=camera_id, window_start=start, window_end=start + timedelta(seconds=span_s),
        frames=span_s * 15,
        lines=[LineCount(line="door", in_count=ins, out_count=outs)] if ins or outs else [],
        occupancy=OccupancyStats(avg=1.5, max=4), zones=zones,
        demographics=Demographics(age_bands=ages or {}),
    )


def message(w: WindowAggregate) -> tuple[str, bytes]:
    return TOPICS.aggregate(w.store_id, w.camera_id), w.to_json()
