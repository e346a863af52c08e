"""kill -9 of a real `storesense edge run` process: no completed window is lost.

The node runs the real pipeline over a real video (10 s windows of video time). The broker
is stopped after the first window arrived, so windows pile up in the outbox; the node is
killed with SIGKILL; the broker comes back; the node is restarted with its video gone, so
only the outbox can deliver what was completed before the kill.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.vision.sources import open_source
from storesense.topics import Topics
from tests.brokers import Mosquitto
from tests.edge_node.helpers import Collector, wait_until

REPO = Path(__file__).resolve().parents[2]
TOPICS = Topics()
WINDOW_S = 10

pytestmark = [pytest.mark.broker, pytest.mark.video]


def node_toml(tmp: Path, broker: Mosquitto, video: Path, models_dir: Path) -> Path:
    p = tmp / "edge.toml"
    p.write_text(f"""
store_id = "s1"
device_id = "edge1"
state_dir = "{tmp / 'state'}"
models_dir = "{models_dir}"
status_interval_s = 1
demographics = false
[broker]
host = "{broker.host}"
port = {broker.port}
keepalive_s = 5
reconnect_min_s = 0.5
reconnect_max_s = 1
[outbox]
replay_rate = 0
# a subscriber stands in for the gateway here: the PUBACK is the end of the line
confirm = false
[[cameras]]
camera_id = "cam1"
source = "{video}"
[cameras.analytics]
window_s = {WINDOW_S}
detect_every = 1
demographics = false
""")
    return p


def start_node(config: Path, tmp: Path, name: str) -> subprocess.Popen[bytes]:
    log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "storesense.cli", "edge", "run", "--config", str(config)],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )


def outbox_ids(path: Path) -> set[str]:
    """Read the node's outbox from outside, as another SQLite connection (WAL allows it)."""
    if not path.exists():
        return set()
    with sqlite3.connect(path, timeout=5) as db:
        return {r[0] for r in db.execute("SELECT message_id FROM outbox")}


def received_ids(col: Collector) -> set[str]:
    return {json.loads(p)["message_id"] for p in col.payloads()}


def window_ids(video: Path, n: int) -> set[str]:
    """The first n windows of a file read faster than real time, dated from its recording
    start (edge.vision.sources: modification time minus duration)."""
    src = open_source(str(video))
    assert src.read(timeout=10) is not None and src.origin is not None
    src.close()
    # the first window starts at the first frame (whole second), the next ones on the grid
    starts = [src.origin // 1] + [src.origin // WINDOW_S * WINDOW_S + i * WINDOW_S
                                   for i in range(1, n)]
    return {f"s1/cam1/{datetime.fromtimestamp(t, UTC):%Y%m%dT%H%M%SZ}/v1" for t in starts}


def test_sigkill_mid_run_loses_no_completed_window(
    tmp_path: Path, broker: Mosquitto, eval_dir: Path, models_dir: Path
) -> None:
    video = tmp_path / "video.mp4"
    shutil.copy(eval_dir / "PETS09-S2L1" / "video.mp4", video)
    config = node_toml(tmp_path, broker, video, models_dir)
    outbox = tmp_path / "state" / "outbox.sqlite"
    col = Collector(broker, TOPICS.all_aggregates())
    status = Collector(broker, TOPICS.status("s1", "edge1"), client_id="status-watch")
    node = start_node(config, tmp_path, "first")
    try:
        wait_until(lambda: len(received_ids(col)) >= 1, 90, "the first window at the broker")
        broker.stop()
        wait_until(lambda: len(outbox_ids(outbox)) >= 2, 60, "windows piling up in the outbox")
        assert node.poll() is None, "the node finished before it could be killed mid-run"
        node.send_signal(signal.SIGKILL)
        node.wait(10)
        delivered, pending = received_ids(col), outbox_ids(outbox)
        completed = delivered | pending
        video_kept = video.rename(tmp_path / "kept.mp4")  # keeps its modification time
        # the restarted node cannot redo the windows: only the outbox can
        subs = col.subscriptions
        broker.start()
        col.wait_resubscribed(subs)
        node = start_node(config, tmp_path, "second")
        wait_until(lambda: completed <= received_ids(col), 60, "the outbox backlog")
        wait_until(lambda: not outbox_ids(outbox), 10, "acks emptying the outbox")
    finally:
        node.kill()
        node.wait(10)
    got = received_ids(col)
    n = len(got)
    assert n >= 3
    # No completed window lost: the ids are exactly windows 0..n-1 of the video, no gap.
    assert got == window_ids(video_kept, n)
    assert got == completed
    # SIGKILL with the broker up: the broker publishes the retained last will.
    wait_until(
        lambda: any(json.loads(p)["state"] == "offline" for p in status.payloads()[-1:]),
        15, "the retained offline last will",
    )
    col.close()
    status.close()


def test_sigterm_flushes_the_open_window_and_says_offline(
    tmp_path: Path, broker: Mosquitto, eval_dir: Path, models_dir: Path
) -> None:
    video = eval_dir / "PETS09-S2L1" / "video.mp4"
    config = node_toml(tmp_path, broker, video, models_dir)
    col = Collector(broker, TOPICS.all_aggregates())
    status = Collector(broker, TOPICS.status("s1", "edge1"), client_id="status-watch")
    node = start_node(config, tmp_path, "node")
    try:
        wait_until(lambda: len(received_ids(col)) >= 1, 90, "the first window")
        node.send_signal(signal.SIGTERM)
        assert node.wait(30) == 0
    finally:
        node.kill()
        node.wait(10)
    wait_until(lambda: json.loads(status.payloads()[-1])["state"] == "offline", 10,
               "the goodbye status")
    windows = {json.loads(p)["message_id"]: json.loads(p) for p in col.payloads()}
    assert set(windows) == window_ids(video, len(windows))
    last = windows[max(windows)]
    # Complete windows hold 10 s x 7 fps = 70 frames; the last one was cut short by the
    # stop, so only the flush can have published it (the video had ~113 s left).
    assert 0 < last["frames"] < WINDOW_S * 7
    assert not outbox_ids(tmp_path / "state" / "outbox.sqlite")
    col.close()
    status.close()
