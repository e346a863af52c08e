"""Measurements quoted in docs/mqtt.md (run by hand, not part of the test suite):

    .venv/bin/python -m tests.edge_node.measure

1. backlog replay rate through a real Mosquitto, throttle off and at the default, with the
   PUBACK deleting each row and with end-to-end confirmation (a subscriber confirming what
   it received every 50 ms as the gateway does after each commit, gateway/confirm.py);
2. outbox bytes per window (SQLite file growth) for a typical and a heavy window.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from edge.node.config import BrokerConfig, OutboxConfig
from edge.node.outbox import Outbox
from edge.node.outbox_publisher import OutboxPublisher
from edge.node.transport import MqttTransport
from gateway.confirm import confirmations
from storesense.schema import (
    DWELL_BIN_EDGES_S,
    Demographics,
    Heatmap,
    LineCount,
    OccupancyStats,
    Trajectory,
    WindowAggregate,
    ZoneStats,
    message_id,
)
from storesense.topics import Topics
from tests.brokers import Mosquitto
from tests.edge_node.helpers import T0, Collector, wait_until, window

TOPICS = Topics()


def replay_rate(workdir: Path, n: int, rate: float, confirm: bool = False) -> float:
    """Messages per second until the outbox is empty (PUBACKs, or confirmations)."""
    with Mosquitto(workdir / f"broker-{rate}-{confirm}") as broker:
        col = Collector(broker, TOPICS.all_aggregates())
        outbox = Outbox(workdir / f"outbox-{rate}-{confirm}.sqlite")
        for i in range(n):
            outbox.put(TOPICS.aggregate("s1", "cam1"), window("s1", "cam1", i))
        cfg = BrokerConfig(host=broker.host, port=broker.port)
        route: list[OutboxPublisher] = []
        transport = MqttTransport(cfg, "measure", subscriptions=[TOPICS.ack("s1", "cam1")],
                                  on_message=lambda topic, payload: route[0].confirmed(payload))
        pub = OutboxPublisher(outbox, transport, rate=rate, max_inflight=20, confirm=confirm)
        route.append(pub)
        transport.start()
        wait_until(transport.connected.is_set, 10, "connect")
        stop = threading.Event()
        gateway = threading.Thread(target=_confirm_every_50_ms, args=(col, stop))
        gateway.start()
        t0 = time.monotonic()
        pub.start()
        wait_until(lambda: outbox.stats().depth == 0, 600, "backlog drained")
        elapsed = time.monotonic() - t0
        wait_until(lambda: len(col.payloads()) >= n, 30, "all delivered")
        stop.set()
        gateway.join()
        pub.stop()
        transport.stop()
        col.close()
        return n / elapsed


def _confirm_every_50_ms(col: Collector, stop: threading.Event) -> None:
    """What the gateway publishes after each commit, for what the collector received."""
    done = 0
    while not stop.wait(0.05):
        with col.lock:
            batch, done = col.messages[done:], len(col.messages)
        for topic, payload in confirmations(TOPICS, batch):
            col.client.publish(topic, payload, qos=0)


def heavy_window(i: int, rng: random.Random, window_s: int = 60) -> WindowAggregate:
    """Every optional part filled: 32x18 heatmap, 2 lines, 4 zones, 20 paths."""
    start = T0 + timedelta(seconds=i * window_s)
    hist = [rng.randint(0, 3) for _ in DWELL_BIN_EDGES_S]
    zones = [
        ZoneStats(
            zone=f"zone-{z}", entries=sum(hist) + 1, visits=sum(hist), stops=0,
            dwell_total_s=40.5, dwell_mean_s=4.1, dwell_p50_s=3.2, dwell_p90_s=9.9,
            dwell_histogram=hist, occupancy=OccupancyStats(avg=1.25, max=3),
        )
        for z in range(4)
    ]
    return WindowAggregate(
        message_id=message_id("store-0042", "entrance", start), store_id="store-0042",
        camera_id="entrance", window_start=start,
        window_end=start + timedelta(seconds=window_s), frames=900,
        lines=[LineCount(line=f"line-{k}", in_count=12, out_count=9) for k in range(2)],
        occupancy=OccupancyStats(avg=3.4, max=7), zones=zones,
        heatmap=Heatmap(cols=32, rows=18,
                        cells=[round(rng.random() * 5, 2) for _ in range(32 * 18)]),
        demographics=Demographics(age_bands={"25-34": 4, "unknown": 6},
                                  genders={"female": 5, "male": 3, "unknown": 2}),
        paths=[Trajectory(points=[(rng.random(), rng.random()) for _ in range(12)],
                          duration_s=14.0) for _ in range(20)],
    )


def bytes_per_window(workdir: Path, make: str, n: int = 2000) -> float:
    path = workdir / f"size-{make}.sqlite"
    ob = Outbox(path)
    rng = random.Random(1)
    for i in range(n):
        w = heavy_window(i, rng) if make == "heavy" else window("store-0042", "entrance", i, 60)
        ob.put("storesense/v1/store-0042/entrance/agg", w)
    ob.close()
    size = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + "-*"))
    return size / n


def real_windows(video: Path, models_dir: Path) -> list[WindowAggregate]:
    """The real pipeline over PETS09 with a line, two zones and 60 s windows."""
    import cv2

    from edge.pipeline import CameraPipeline
    from edge.vision.detector import load_detector
    from storesense.schema import AnalyticsConfig

    cfg = AnalyticsConfig.model_validate({
        "window_s": 60, "detect_every": 2, "demographics": False,
        "lines": [{"name": "mid", "points": [0.0, 0.5, 1.0, 0.5]}],
        "zones": [{"name": "left", "polygon": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]},
                  {"name": "right", "polygon": [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]}],
    })
    det = load_detector("yolox_nano", models_dir=models_dir)
    pipe = CameraPipeline("store-0042", "entrance", cfg, det)
    cap = cv2.VideoCapture(str(video))
    out: list[WindowAggregate] = []
    n = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out += pipe.process(img, 1_800_000_000 + n / 7.0)
        n += 1
    return out + pipe.flush(1_800_000_000 + n / 7.0)


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        print(f"replay, throttle off: {replay_rate(work, 3000, 0):.0f} msgs/s")
        default = OutboxConfig().replay_rate
        print(f"replay, default {default:g}/s: {replay_rate(work, 300, default):.1f} msgs/s")
        for rate in (0, default):
            n = 3000 if rate == 0 else 300
            print(f"replay with end-to-end confirmation, rate {rate:g}: "
                  f"{replay_rate(work, n, rate, confirm=True):.1f} msgs/s")
        for make in ("minimal", "heavy"):
            b = bytes_per_window(work, make)
            per_day = b * 3 * 86_400 / 60
            print(f"outbox {make}: {b:.0f} B/window, 3 cameras x 60 s windows: "
                  f"{per_day / 1e6:.1f} MB/day")
        from tests.conftest import EVAL_DIR, MODELS_DIR

        wins = real_windows(EVAL_DIR / "PETS09-S2L1" / "video.mp4", MODELS_DIR)
        sizes = [len(w.to_json()) for w in wins]
        print(f"real PETS09 60 s windows: JSON {sizes} B, frames {[w.frames for w in wins]}")


if __name__ == "__main__":
    main()
