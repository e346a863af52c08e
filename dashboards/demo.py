"""A real gateway filled with demo data, for the browser tests, screenshots and the benchmark.

Everything goes through the gateway's own code: ``Storage`` for stores, windows and device
status, ``create_token`` for tokens, the REST API for POS and the floor plan, and uvicorn
serving ``gateway.api.create_app`` on a free local port in a background thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import httpx
import numpy as np
import uvicorn

from gateway.auth import create_token
from gateway.config import GatewaySettings
from gateway.storage import Storage
from storesense.broker import free_port
from storesense.schema import CameraStatus, DeviceStatus, utcnow
from storesense.simulate import DEMO_STORES, DemoStore, history, pos_transactions
from storesense.simulate_members_weather import members, weather_days

# The demo store left without POS data and the one whose edge device is offline, so the pages
# show their empty states; the one with a floor plan for the heatmap view.
NO_POS_STORE = "ldn-005"
OFFLINE_STORE = "ny-006"
FLOORPLAN_STORE = "sh-001"


@dataclass(frozen=True)
class DemoGateway:
    base_url: str
    storage: Storage
    hq_token: str
    franchisee_token: str
    franchisee: str
    stores: tuple[DemoStore, ...]
    weather_token: str = ""  # scope "weather": pushes the demo's weather

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=f"{self.base_url}/api/v1", timeout=30.0,
                            headers={"Authorization": f"Bearer {token}"})


def many_stores(n: int) -> tuple[DemoStore, ...]:
    """``n`` stores cloned from the demo stores (ids ``<demo id>-<k>``), for load tests."""
    out = []
    for k in range(n):
        base = DEMO_STORES[k % len(DEMO_STORES)]
        out.append(replace(base, store_id=f"{base.store_id}-{k:03d}",
                           name=f"{base.name} #{k}", name_zh=f"{base.name_zh}{k}号"))
    return tuple(out)


# floorplan_png() is drawn in the sales-floor camera's own normalised coordinates, so that
# camera's homography to the plan is the identity.
PLAN_HOMOGRAPHY = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]


def register(storage: Storage, stores: tuple[DemoStore, ...]) -> None:
    storage.upsert_stores([
        {"store_id": s.store_id, "name": s.name, "name_zh": s.name_zh, "region": s.region,
         "franchisee": s.franchisee, "timezone": s.timezone, "open_hour": s.open_hour,
         "close_hour": s.close_hour,
         "cameras": [{"camera_id": c.camera_id, "role": c.role,
                      "name": "Door" if c.role == "entrance" else "Sales floor",
                      "homography": PLAN_HOMOGRAPHY
                      if s.store_id == FLOORPLAN_STORE and c.role != "entrance" else None}
                     for c in s.cameras]}
        for s in stores])


def seed_windows(storage: Storage, stores: tuple[DemoStore, ...], now: datetime, days: int,
                 window_s: int = 3600) -> int:
    batch = []
    n = 0
    for w in history(stores, now, days, window_s=window_s):
        batch.append(w)
        if len(batch) >= 2000:
            n += storage.store_windows(batch).stored
            batch.clear()
    if batch:
        n += storage.store_windows(batch).stored
    return n


def seed_status(storage: Storage, stores: tuple[DemoStore, ...], now: datetime,
                offline: set[str]) -> None:
    items = []
    for s in stores:
        down = s.store_id in offline
        status = DeviceStatus(
            store_id=s.store_id, device_id="edge-1", state="offline" if down else "online",
            sent_at=now - timedelta(hours=5) if down else now, uptime_s=3600.0,
            cameras=[CameraStatus(camera_id=c.camera_id, state="stopped" if down else "ok",
                                  since=now - timedelta(hours=1), fps=0.0 if down else 14.9,
                                  lag_s=0.0 if down else 0.12, frames_total=50_000,
                                  dropped_frames=0,
                                  last_error="connection lost" if down else None)
                     for c in s.cameras])
        items.append((storage.topics.status(s.store_id, "edge-1"),
                      status.to_json()))
    storage.ingest(items)


def seed_pos(client: httpx.Client, stores: tuple[DemoStore, ...], now: datetime,
             days: int) -> int:
    zones = {s.store_id: ZoneInfo(s.timezone) for s in stores}
    rng = np.random.default_rng(2)
    rows = [{"store_id": sid, "transactions": n, "revenue": revenue,
             "hour_start": t.astimezone(zones[sid]).strftime("%Y-%m-%dT%H:00"),
             **dict(zip(("members", "new_members"), members(n, rng), strict=True))}
            for sid, t, n, revenue in pos_transactions(stores, now, days)]
    stored = 0
    for i in range(0, len(rows), 5000):
        r = client.post("/pos", json=rows[i:i + 5000])
        r.raise_for_status()
        stored += int(r.json()["stored"])
    return stored


def seed_weather(client: httpx.Client, stores: tuple[DemoStore, ...], now: datetime,
                 days: int) -> int:
    """Random daily weather (not tied to the traffic) pushed as a weather feed would."""
    records = list(weather_days(stores, now, days))
    stored = 0
    for i in range(0, len(records), 5000):  # each push well under the 1 MB body limit
        r = client.post("/weather", json=records[i:i + 5000])
        r.raise_for_status()
        stored += int(r.json()["stored"])
    return stored


def floorplan_png(width: int = 960, height: int = 540) -> bytes:
    """A plain drawn floor plan (walls, tables, counter) matching the demo camera's zones."""
    img = np.full((height, width, 3), 250, np.uint8)
    grey, dark = (205, 205, 205), (90, 90, 90)
    cv2.rectangle(img, (8, 8), (width - 8, height - 8), dark, 6)
    boxes = {"promo-table": (0.2, 0.3), "new-arrivals": (0.8, 0.3),
             "checkout": (0.2, 0.75), "fitting-rooms": (0.8, 0.75)}
    for name, (cx, cy) in boxes.items():
        x, y = int(cx * width), int(cy * height)
        cv2.rectangle(img, (x - 90, y - 45), (x + 90, y + 45), grey, -1)
        cv2.rectangle(img, (x - 90, y - 45), (x + 90, y + 45), dark, 2)
        cv2.putText(img, name, (x - 80, y + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.6, dark, 1,
                    cv2.LINE_AA)
    cv2.line(img, (width // 2 - 60, height - 8), (width // 2 + 60, height - 8), (250, 250, 250), 10)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError("could not encode the floor plan PNG")
    return buf.tobytes()


@contextmanager
def serve(storage: Storage, settings: GatewaySettings | None = None) -> Iterator[str]:
    """Run the real gateway app with uvicorn in a thread; yields its base URL."""
    from gateway.api import create_app  # the gateway imports dashboards: import it late
    from gateway.http_limits import uvicorn_limits

    settings = settings or GatewaySettings(db=storage.path)
    port = free_port()
    config = uvicorn.Config(create_app(settings, storage), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on",
                            **uvicorn_limits(settings.api))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def demo_gateway(db: Path, stores: tuple[DemoStore, ...] = DEMO_STORES, days: int = 21,
                 now: datetime | None = None, franchisee: str = "huadong-retail",
                 ) -> Iterator[DemoGateway]:
    """A gateway on ``db`` with ``stores``, ``days`` of simulated windows, POS with members
    (except for NO_POS_STORE), random daily weather, device status (OFFLINE_STORE offline),
    a floor plan for FLOORPLAN_STORE, an HQ token and a token for ``franchisee``."""
    now = now or utcnow()
    storage = Storage(db)
    try:
        register(storage, stores)
        seed_windows(storage, stores, now, days)
        seed_status(storage, stores, now, {s.store_id for s in stores
                                           if s.store_id.startswith(OFFLINE_STORE)})
        hq = create_token(storage, "HQ operations", "hq")
        fr = create_token(storage, f"{franchisee} manager", f"franchisee:{franchisee}")
        feed = create_token(storage, "weather feed", "weather")
        with serve(storage) as url:
            gw = DemoGateway(url, storage, hq, fr, franchisee, stores, feed)
            with gw.client(hq) as client:
                seed_pos(client, tuple(s for s in stores
                                       if not s.store_id.startswith(NO_POS_STORE)), now, days)
            with gw.client(feed) as client:
                seed_weather(client, stores, now, days)
            with gw.client(hq) as client:
                if any(s.store_id == FLOORPLAN_STORE for s in stores):
                    client.put(f"/stores/{FLOORPLAN_STORE}/floorplan", content=floorplan_png(),
                               headers={"Content-Type": "image/png"}).raise_for_status()
            yield gw
    finally:
        storage.close()
