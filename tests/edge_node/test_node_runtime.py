"""A running edge node (in-process, real pipeline, real video, real Mosquitto): remote
configuration, a camera whose file disappears, systemd notifications, graceful stop, a camera
the node is too slow for."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.node.camera_worker import CameraWorker, Sink
from edge.node.config import EdgeConfig
from edge.node.service import EdgeNode, real_parts
from storesense.topics import Topics
from tests.brokers import Mosquitto
from tests.edge_node.helpers import Collector, NodeThread, wait_until

TOPICS = Topics()
pytestmark = [pytest.mark.broker, pytest.mark.video]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, eval_dir: Path) -> Path:
    """The first 21 frames (3 s at 7 fps) of PETS09 as a file that loops quickly."""
    src = cv2.VideoCapture(str(eval_dir / "PETS09-S2L1" / "video.mp4"))
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 7.0, (768, 576))
    for _ in range(21):
        ok, img = src.read()
        assert ok
        out.write(img)
    out.release()
    src.release()
    return path


def make_config(tmp: Path, broker: Mosquitto, models_dir: Path, cameras: list[dict[str, Any]],
                ) -> EdgeConfig:
    return EdgeConfig.model_validate({
        "store_id": "s1", "device_id": "edge1", "state_dir": str(tmp / "state"),
        "models_dir": str(models_dir), "status_interval_s": 0.5, "demographics": False,
        "broker": {"host": broker.host, "port": broker.port, "keepalive_s": 5,
                   "reconnect_min_s": 0.5, "reconnect_max_s": 1.0},
        # a Collector stands in for the gateway: the PUBACK is the end of the line
        "outbox": {"confirm": False},
        "cameras": cameras,
    })


class Running(NodeThread):
    """A node with its real camera and analytics parts."""

    def __init__(self, cfg: EdgeConfig) -> None:
        super().__init__(EdgeNode(cfg, *real_parts(cfg)))


def camera(status: Collector, camera_id: str) -> dict[str, Any] | None:
    """The camera's entry in the latest status message, or None."""
    payloads = status.payloads()
    if not payloads:
        return None
    cams = json.loads(payloads[-1]).get("cameras", [])
    return next((c for c in cams if c["camera_id"] == camera_id), None)


def last_status(status: Collector) -> dict[str, Any]:
    return dict(json.loads(status.payloads()[-1]))


def publish_config(broker: Mosquitto, camera_id: str, payload: bytes) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hq", protocol=mqtt.MQTTv311)
    c.connect(broker.host, broker.port, 10)
    c.loop_start()
    c.publish(TOPICS.config("s1", camera_id), payload, qos=1, retain=True).wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


def config_message(camera_id: str, version: str, analytics: dict[str, Any]) -> bytes:
    return json.dumps({"store_id": "s1", "camera_id": camera_id, "config_version": version,
                       "kind": "camera_config", "schema_version": 1,
                       "analytics": analytics}).encode()


@pytest.fixture
def notify_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET; yields what it received."""
    d = tempfile.mkdtemp(dir="/tmp")  # AF_UNIX paths are limited to ~108 bytes
    path = Path(d) / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    got: list[str] = []
    done = threading.Event()

    def receive() -> None:
        while not done.is_set():
            try:
                got.append(sock.recv(256).decode())
            except TimeoutError:
                continue

    t = threading.Thread(target=receive)
    t.start()
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    yield got
    done.set()
    t.join(5)
    sock.close()
    shutil.rmtree(d)


def test_remote_config_rejected_with_reason_applied_and_kept_across_restart(
    tmp_path: Path, broker: Mosquitto, eval_dir: Path, models_dir: Path,
    notify_socket: list[str],
) -> None:
    video = eval_dir / "PETS09-S2L1" / "video.mp4"
    cfg = make_config(tmp_path, broker, models_dir, [{
        "camera_id": "cam1", "source": str(video), "loop": True,
        "analytics": {"window_s": 10, "detect_every": 2, "demographics": False},
    }])
    aggs = Collector(broker, TOPICS.all_aggregates())
    status = Collector(broker, TOPICS.status("s1", "edge1"), client_id="status")
    node = Running(cfg)
    try:
        wait_until(lambda: len(aggs.payloads()) >= 1, 60, "the first window")
        cases = [
            (b"{not json", "not valid JSON"),
            (config_message("cam9", "x", {}), "camera 'cam9'"),
            (config_message("cam1", "v1", {"window_s": 5}), "analytics.window_s"),
        ]
        for payload, reason in cases:
            publish_config(broker, "cam1", payload)
            wait_until(lambda r=reason: r in ((camera(status, "cam1") or {}).get(
                "config_error") or ""), 15, f"status to report {reason!r}")
            assert (camera(status, "cam1") or {}).get("config_version") is None
        counted = len(aggs.payloads())
        wait_until(lambda: len(aggs.payloads()) >= counted + 2, 60, "windows after rejections")
        good = {"window_s": 10, "detect_every": 2, "demographics": False,
                "lines": [{"name": "door", "points": [0.0, 0.6, 1.0, 0.6]}]}
        publish_config(broker, "cam1", config_message("cam1", "v2", good))
        wait_until(lambda: (camera(status, "cam1") or {}).get("config_version") == "v2",
                   15, "status to show config v2 applied")
        assert (camera(status, "cam1") or {}).get("config_error") is None
        wait_until(lambda: "door" in json.dumps(json.loads(aggs.payloads()[-1])["lines"]),
                   60, "a window counted with the remote config's line")
    finally:
        node.close()
    wait_until(lambda: last_status(status)["state"] == "offline", 10,
               "the goodbye status of a graceful stop")
    assert {"READY=1", "WATCHDOG=1", "STOPPING=1"} <= set(notify_socket)
    # A reboot keeps the applied remote config (and the saved file is the message itself).
    rebooted = EdgeNode(cfg, *real_parts(cfg))
    try:
        worker = rebooted.workers["cam1"]
        assert worker.config_version == "v2"
        assert worker.applied is not None and worker.applied.analytics.lines[0].name == "door"
    finally:
        rebooted.outbox.close()


def test_camera_whose_file_disappears_is_reported_retried_and_others_keep_running(
    tmp_path: Path, broker: Mosquitto, clip: Path, models_dir: Path,
) -> None:
    files = {cam: tmp_path / f"{cam}.mp4" for cam in ("door", "aisle")}
    for f in files.values():
        shutil.copy(clip, f)
    analytics = {"window_s": 10, "detect_every": 2, "demographics": False}
    cfg = make_config(tmp_path, broker, models_dir, [
        {"camera_id": cam, "source": str(f), "loop": True, "realtime": True,
         "analytics": analytics} for cam, f in files.items()
    ])
    status = Collector(broker, TOPICS.status("s1", "edge1"), client_id="status")
    node = Running(cfg)
    try:
        def state(cam: str) -> str | None:
            return (camera(status, cam) or {}).get("state")

        wait_until(lambda: state("door") == state("aisle") == "ok", 30, "both cameras ok")
        hidden = tmp_path / "moved-away.mp4"
        files["door"].rename(hidden)
        wait_until(lambda: state("door") in ("reconnecting", "failed"), 30,
                   "the missing file to be reported")
        door = camera(status, "door") or {}
        assert "door.mp4" in (door.get("last_error") or "")
        frames = (camera(status, "aisle") or {})["frames_total"]
        wait_until(lambda: (camera(status, "aisle") or {})["frames_total"] > frames + 7, 30,
                   "the other camera to keep processing")
        assert state("aisle") == "ok"
        assert (camera(status, "aisle") or {})["fps"] > 0  # frames processed per second
        hidden.rename(files["door"])
        wait_until(lambda: state("door") == "ok", 40, "the camera to recover")
    finally:
        node.close()


def _pets09_worker(video: str, models_dir: Path, sink: Sink) -> CameraWorker:
    """A started camera worker running the real pipeline over ``video`` into ``sink``."""
    from edge.pipeline import CameraPipeline
    from edge.vision.detector import load_detector
    from edge.vision.sources import open_source
    from storesense.schema import AnalyticsConfig

    cfg = AnalyticsConfig(window_s=10, detect_every=3, demographics=False)
    pipeline = CameraPipeline("s1", "cam1", cfg, load_detector("yolox_nano",
                                                               models_dir=models_dir))
    worker = CameraWorker("cam1", lambda: open_source(video), pipeline, sink, live=False)
    worker.start()
    return worker


def test_windows_the_outbox_refused_are_kept_and_stored_later(
    tmp_path: Path, eval_dir: Path, models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk must not cost windows: the worker holds them and retries."""
    import sqlite3

    from edge.node.outbox import Outbox
    from storesense.schema import WindowAggregate

    outbox = Outbox(tmp_path / "outbox.sqlite")
    failures = {"left": 2}

    def flaky_disk(w: WindowAggregate) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        outbox.put("t", w)

    video = str(eval_dir / "PETS09-S2L1" / "video.mp4")
    worker = _pets09_worker(video, models_dir, flaky_disk)

    wait_until(lambda: outbox.stats().depth >= 4, 90, "windows stored despite failed writes")
    worker.stop()
    assert failures["left"] == 0
    assert "camera cam1: outbox disk full; holding 1 windows" in caplog.text
    starts = sorted(json.loads(r.payload)["window_start"] for r in outbox.oldest(100))
    assert len(starts) == len(set(starts)) >= 4
    ids = [json.loads(r.payload)["message_id"] for r in outbox.oldest(100)]
    first = json.loads(outbox.oldest(1)[0].payload)["window_start"]
    origin = Path(video).stat().st_mtime - 795 / 7  # PETS09-S2L1: 795 frames at 7 fps
    # the first window, the one holding the video's first frame, was not lost
    assert datetime.fromisoformat(first).timestamp() == origin // 1, ids[:2]


def test_an_invalid_window_is_dropped_and_does_not_hold_back_the_next(
    tmp_path: Path, eval_dir: Path, models_dir: Path,
) -> None:
    """A window that breaks the schema cannot be fixed by retrying, unlike a full disk."""
    import msgspec

    from edge.node.outbox import Outbox
    from storesense.schema import WindowAggregate

    outbox = Outbox(tmp_path / "outbox.sqlite")
    spoiled: list[str] = []

    def sink(w: WindowAggregate) -> None:
        if not spoiled:  # the first window gets an impossible value, as a bug would give it
            spoiled.append(w.message_id)
            w = msgspec.structs.replace(w, frames=-1)
        outbox.put("t", w)

    worker = _pets09_worker(str(eval_dir / "PETS09-S2L1" / "video.mp4"), models_dir, sink)
    wait_until(lambda: outbox.stats().depth >= 3, 90, "later windows stored")
    worker.stop()
    ids = [json.loads(r.payload)["message_id"] for r in outbox.oldest(100)]
    assert spoiled and spoiled[0] not in ids
    assert "window dropped, invalid" in (worker.process_error or "")
    assert "frames" in (worker.process_error or "")


def test_a_camera_worker_behind_its_live_camera_keeps_pace_and_reports_its_lag(
    models_dir: Path,
) -> None:
    """A live H.264 stream at 7 frames/s, and a camera whose every analysed frame takes twice
    the stream's interval (a detector too slow for the camera): the worker keeps pace by
    handing frames on without their image, and its status says how far behind it is."""
    import time

    from edge.evaluation.live_replay import replay
    from edge.pipeline import CameraPipeline
    from edge.vision.detector import load_detector
    from edge.vision.sources import open_source
    from storesense.demo import bundled_clip
    from storesense.schema import AnalyticsConfig

    cfg = AnalyticsConfig(window_s=10, detect_every=1, demographics=False)
    pipeline = CameraPipeline("s1", "cam1", cfg, load_detector("yolox_nano",
                                                               models_dir=models_dir))
    with replay(bundled_clip(), 60) as url:
        worker = CameraWorker("cam1", lambda: open_source(url), pipeline, lambda w: None,
                              live=True)
        worker.after_frame = lambda f: time.sleep(2 / 7) if f.image is not None else None
        worker.start()
        wait_until(lambda: worker.frames >= 10, 30, "the stream's first frames")
        n0, t0 = worker.frames, time.monotonic()
        time.sleep(8)
        frames, elapsed = worker.frames - n0, time.monotonic() - t0
        status = worker.status()
        worker.stop()
    # Reading every frame in turn, it would process one in two of those sent, ever later.
    assert frames >= 0.8 * 7 * elapsed
    assert status.dropped_frames > 0 and 0 < status.lag_s < 1.5
    assert status.state == "ok" and worker.process_error is None
