"""A full outbox disk, made real with SQLite's max_page_count on the node's own outbox
connection (SQLITE_FULL, "database or disk is full", as on a full file system)."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge.node.config import EdgeConfig
from edge.node.outbox import DISK_FULL, Outbox
from edge.node.service import EdgeNode
from storesense.schema import WindowAggregate
from storesense.topics import Topics
from tests.brokers import free_port
from tests.edge_node.helpers import NoAnalytics, window
from tests.waiting import wait_until

TOPIC = Topics().aggregate("s1", "cam1")


def _fill(outbox: Outbox) -> None:
    """No page beyond those the file has now: the next write that needs one fails."""
    db = outbox._db  # the outbox's own connection: max_page_count is per connection
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def _free(outbox: Outbox) -> None:
    outbox._db.execute("PRAGMA max_page_count = 1073741823")


def test_a_full_disk_is_reported_as_such_and_clears_when_space_returns(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    ob.put(TOPIC, window("s1", "cam1", 0))
    _fill(ob)
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        for i in range(1, 200):  # the last page has room for a few rows at most
            ob.put(TOPIC, window("s1", "cam1", i))
    assert ob.stats().error == DISK_FULL
    _free(ob)
    ob.put(TOPIC, window("s1", "cam1", 500))
    assert ob.stats().error is None


@dataclass
class _Frame:
    image: Any
    t: float


class _Camera:
    state, since, last_error = "ok", 0.0, None
    dropped_frames = frames_total = 0
    fps, ended = 20.0, False

    def read(self, timeout: float | None = None) -> _Frame:
        time.sleep(0.05)
        return _Frame(None, time.time())

    def close(self) -> None:
        pass


class _WindowPerFrame(NoAnalytics):
    """Closes a (distinct) window at every frame: 20 windows a second to store."""

    def __init__(self) -> None:
        self.n = 0

    def process(self, image: Any, t: float) -> list[WindowAggregate]:
        self.n += 1
        return [window("s1", "cam1", self.n)]


def test_a_node_on_a_full_disk_says_so_once_backs_off_and_keeps_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    # no broker: nothing leaves the outbox, so nothing frees its pages meanwhile
    cfg = EdgeConfig.model_validate({
        "store_id": "s1", "device_id": "edge1", "state_dir": str(tmp_path / "state"),
        "demographics": False, "broker": {"host": "127.0.0.1", "port": free_port()},
        "outbox": {"confirm": False},
        "cameras": [{"camera_id": "cam1", "source": "rtsp://camera.invalid/live"}],
    })
    node = EdgeNode(cfg, lambda cam: _Camera(), lambda cam, a: _WindowPerFrame())
    worker = node.workers["cam1"]
    attempts: list[float] = []
    sink = worker._sink
    worker._sink = lambda w: (attempts.append(time.monotonic()), sink(w))[1]
    _fill(node.outbox)
    stop = threading.Event()
    run = threading.Thread(target=node.run, args=(stop,))
    run.start()
    try:
        wait_until(lambda: node.problems() == [DISK_FULL], 10, "the full disk reported")
        frames, attempts[:] = worker.frames, []
        time.sleep(3.0)
        assert worker.frames > frames + 20 and run.is_alive()  # still running
        # every frame closed a window; the held ones were tried again after 1, 2, ... s
        # (a try per frame before: 60 here, with 60 warnings)
        assert 1 <= len(attempts) <= 3
        cam = json.loads(node.status_payload())["cameras"][0]
        status = json.loads(node.status_payload())
        assert cam["last_error"] == DISK_FULL and status["outbox_full"] is True
        _free(node.outbox)
        wait_until(lambda: node.problems() == [], 10, "the disk usable again")
        held = worker.frames
        wait_until(lambda: node.outbox.stats().depth >= held, 10,
                   "the held windows stored")
    finally:
        stop.set()
        run.join(20)
    logged = [r.getMessage() for r in caplog.records if DISK_FULL in r.getMessage()]
    assert "cannot rollback" not in caplog.text
    # once when the camera's writes start failing, once for the node's health, once each
    # when they work again
    assert len([m for m in logged if m.startswith("camera cam1: outbox disk full")]) == 1
    assert len([m for m in logged if m.startswith("node health: outbox disk full")]) == 1
    assert "storing windows works again" in caplog.text
