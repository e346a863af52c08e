"""Demo seeding: the simulated stores, their history and POS data, through Storage's own
write paths (so seeded data is rolled up exactly like ingested data)."""

from __future__ import annotations

from datetime import datetime
from itertools import islice
from zoneinfo import ZoneInfo

import numpy as np

from gateway import weather
from gateway.pos import PosRecord, upsert
from gateway.registry import CameraRecord, StoreRecord
from gateway.storage import IngestResult, Storage
from storesense.simulate import DEMO_STORES, DemoStore, history, pos_transactions
from storesense.simulate_members_weather import members, weather_days


def store_records(stores: tuple[DemoStore, ...] = DEMO_STORES) -> list[StoreRecord]:
    return [
        StoreRecord(
            store_id=s.store_id, name=s.name, name_zh=s.name_zh, region=s.region,
            franchisee=s.franchisee, timezone=s.timezone, open_hour=s.open_hour,
            close_hour=s.close_hour,
            cameras=[CameraRecord(camera_id=c.camera_id, role="entrance"
                                  if c.role == "entrance" else "floor", name=c.camera_id)
                     for c in s.cameras],
        )
        for s in stores
    ]


def seed_demo(storage: Storage, end: datetime, days: int,
              stores: tuple[DemoStore, ...] = DEMO_STORES, window_s: int = 3600,
              batch: int = 2000) -> IngestResult:
    """Registry, ``days`` of simulated windows before ``end``, matching POS hours with
    members, and random daily weather."""
    storage.upsert_stores(store_records(stores))
    stored = dups = 0
    windows = history(stores, end, days, window_s=window_s)
    while chunk := list(islice(windows, batch)):
        r = storage.store_windows(chunk)
        stored, dups = stored + r.stored, dups + r.duplicates
    zones = {s.store_id: ZoneInfo(s.timezone) for s in stores}
    rng = np.random.default_rng(2)
    upsert(storage, [
        PosRecord(store_id=sid, hour_start=t.astimezone(zones[sid]).strftime("%Y-%m-%dT%H:00"),
                  transactions=n, revenue=rev,
                  **dict(zip(("members", "new_members"), members(n, rng), strict=True)))
        for sid, t, n, rev in pos_transactions(stores, end, days)
    ])
    weather.upsert(storage, [weather.WeatherRecord.model_validate(w)
                             for w in weather_days(stores, end, days)], "demo")
    return IngestResult(stored, dups, 0)
