"""Wall-clock steps on the edge: the pure parts with plain numbers, then a real node (real
outbox, real Mosquitto, the real window accumulator) whose wall clock the test steps."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from edge.analytics.windows import WindowAccumulator
from edge.node.clock import ClockWatch, StepDetector
from edge.node.config import EdgeConfig
from edge.node.outbox import Outbox
from edge.node.service import CLOCK_EPOCH, EdgeNode
from storesense.schema import AnalyticsConfig, WindowAggregate
from tests.brokers import Mosquitto
from tests.edge_node.helpers import Collector
from tests.waiting import wait_until


def test_step_detector_sees_steps_both_ways_and_follows_drift() -> None:
    d = StepDetector(threshold_s=2.0)
    assert d.observe(wall=1000.0, mono=10.0) is None  # first reading
    assert d.observe(wall=1001.5, mono=11.0) is None  # 0.5 s of drift: followed
    assert d.observe(wall=1003.0, mono=12.0) is None  # again, 0.5 s from the last reading
    assert d.observe(wall=933.0, mono=13.0) == pytest.approx(-71.0)  # NTP step back
    assert d.observe(wall=934.0, mono=14.0) is None
    assert d.observe(wall=4535.0, mono=15.0) == pytest.approx(3600.0)  # an hour ahead


def test_clock_watch_counts_one_step_once_and_saves_the_epoch() -> None:
    wall, mono, saved = [1000.0], [10.0], []
    w = ClockWatch(epoch=4, save_epoch=saved.append, wall=lambda: wall[0],
                   mono=lambda: mono[0])
    assert w.check() == 4
    wall[0] -= 70.0
    mono[0] += 0.1
    assert [w.check(), w.check()] == [5, 5]  # two cameras seeing the same step
    assert saved == [5]
    step = w.last_step
    assert step is not None and step.jump_s == pytest.approx(-70.1) and step.epoch == 5


def _span(w: WindowAggregate) -> tuple[float, float]:
    return w.window_start.timestamp(), w.window_end.timestamp()


def test_after_a_step_back_windows_never_start_where_an_earlier_one_did() -> None:
    acc = WindowAccumulator("s1", "cam1", window_s=60)
    out = []
    for t in (120.0, 185.5):
        out += acc.roll(t)
        acc.add_frame(t, 1, {})
    out += acc.close(early_at=190.2)  # a clock step at 190.2 (old clock): close there
    for t in (125.3, 150.0, 185.2, 200.0, 245.5, 300.0):  # the new clock is 65 s behind
        out += acc.roll(t)
        acc.add_frame(t, 1, {})
    out += acc.close()
    assert [_span(w) for w in out] == [
        (120, 180), (180, 191),  # the old clock's run, closed at the step
        (125, 185), (185, 245),  # behind 191: shifted 5 s off the grid (125.3's phase)
        (245, 300), (300, 360),  # past 191: a partial window back to the grid
    ]
    assert len({w.message_id for w in out}) == len(out)


def test_a_step_back_onto_the_grid_shifts_by_all_but_one_second() -> None:
    acc = WindowAccumulator("s1", "cam1", window_s=60)
    acc.add_frame(130.0, 1, {})
    (first,) = acc.close(early_at=200.0)  # [130, 180)
    acc.add_frame(120.4, 1, {})  # back onto a minute boundary
    (after,) = acc.close()
    assert _span(first) == (130, 180) and _span(after) == (119, 179)


# --------------------------------------------------------------------------- a real node

WINDOW_S = 2
T0 = 1_800_000_000.0  # a multiple of WINDOW_S


class SteppableClock:
    """Wall time that advances with the monotonic clock and can be stepped."""

    def __init__(self, start: float) -> None:
        self._base = start - time.monotonic()

    def __call__(self) -> float:
        return self._base + time.monotonic()

    def step(self, seconds: float) -> None:
        self._base += seconds


@dataclass
class _Frame:
    image: Any
    t: float


class LiveSource:
    """A live camera at 20 frames/s, each frame stamped with the node's wall clock."""

    state, since, last_error = "ok", 0.0, None
    dropped_frames = frames_total = 0
    fps, ended = 20.0, False

    def __init__(self, clock: SteppableClock) -> None:
        self.clock = clock

    def read(self, timeout: float | None = None) -> _Frame:
        time.sleep(0.05)
        return _Frame(None, self.clock())

    def close(self) -> None:
        pass


class WindowsOnly:
    """The pipeline's window bookkeeping alone: the real WindowAccumulator, no detector."""

    def __init__(self) -> None:
        self.windows = WindowAccumulator("s1", "cam1", WINDOW_S)

    def process(self, image: Any, t: float) -> list[WindowAggregate]:
        closed = self.windows.roll(t)
        self.windows.add_frame(t, 0, {})
        return closed

    def reconfigure(self, config: AnalyticsConfig) -> None:
        pass

    def flush(self, t: float) -> list[WindowAggregate]:
        return self.windows.close(early_at=t)

    def model_infos(self) -> list[Any]:
        return []


def _run_node(tmp_path: Path, broker: Mosquitto, clock: SteppableClock,
              during: Any) -> EdgeNode:
    cfg = EdgeConfig.model_validate({
        "store_id": "s1", "device_id": "edge1", "state_dir": str(tmp_path / "state"),
        "demographics": False,
        "broker": {"host": broker.host, "port": broker.port},
        "outbox": {"confirm": False, "replay_rate": 0},  # the collector is the far end
        "cameras": [{"camera_id": "cam1", "source": "rtsp://camera.invalid/live"}],
    })
    node = EdgeNode(cfg, lambda cam: LiveSource(clock), lambda cam, a: WindowsOnly(),
                    wall_clock=clock)
    stop = threading.Event()
    run = threading.Thread(target=node.run, args=(stop,))
    run.start()
    try:
        during(node)
    finally:
        stop.set()
        run.join(20)
    assert not run.is_alive()
    return node


def _windows(col: Collector) -> list[dict[str, Any]]:
    with col.lock:
        return [json.loads(p) for t, p in col.messages if t.endswith("/agg")]


def _t(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("jump", [-70.0, 3600.0])
def test_a_node_closes_its_window_at_a_clock_step_and_never_reuses_an_id(
    tmp_path: Path, jump: float,
) -> None:
    clock = SteppableClock(T0 + 0.5)
    marks: dict[str, float] = {}

    def step_then_run(node: EdgeNode) -> None:
        wait_until(lambda: clock() > T0 + 3.0, 10, "a window closed, the next open")
        marks["before"] = clock()
        clock.step(jump)
        marks["after"] = clock()
        # published at once, not when the old clock's window end comes round again
        wait_until(lambda: any(w["window_end"] and _t(w["window_end"]) <= marks["before"] + 1
                               and _t(w["window_start"]) >= T0 + 2 for w in _windows(col)),
                   5, "the window open at the step")
        wait_until(lambda: clock() > marks["after"] + 2.5 * WINDOW_S, 15, "windows after it")

    with Mosquitto(tmp_path / "broker") as broker:
        col = Collector(broker, "storesense/v1/#")
        try:
            _run_node(tmp_path, broker, clock, step_then_run)
            wait_until(lambda: len(_windows(col)) >= 5, 10, "the windows")
        finally:
            col.close()
    ws = [(_t(w["window_start"]), _t(w["window_end"])) for w in _windows(col)]
    ids = [w["message_id"] for w in _windows(col)]
    assert len(set(ids)) == len(ids)
    # one discontinuity, at the step; contiguous, non-overlapping windows on either side
    breaks = [i for i in range(1, len(ws)) if ws[i][0] != ws[i - 1][1]]
    assert len(breaks) == 1
    old, new = ws[:breaks[0]], ws[breaks[0]:]
    assert old[-1][1] <= marks["before"] + 1  # closed at the step
    assert new[0][0] == int(marks["after"])  # opened at the step
    reopened = Outbox(tmp_path / "state" / "outbox.sqlite")
    assert reopened.meta(CLOCK_EPOCH) == 1  # the step is counted, across restarts too
    reopened.close()
