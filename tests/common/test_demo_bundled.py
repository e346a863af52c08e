"""What a fresh clone has is enough for real detection: the package's yolox_nano weights and
its clip, run by a real `storesense edge run` node as the demo writes it, with an empty models
directory and no ../shared, give windows with people in them through a real Mosquitto."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models import registry
from storesense import demo
from storesense.broker import Mosquitto
from storesense.demo_setup import write_edge_config
from storesense.schema import WindowAggregate
from storesense.simulate import DEMO_STORES
from tests.edge_node.helpers import Collector

pytestmark = pytest.mark.broker


def test_the_package_carries_the_pinned_detector_and_the_clip() -> None:
    weights = registry.bundled_path(demo.OPEN_DETECTOR)
    assert weights is not None
    assert registry.sha256_of(weights) == registry.spec(demo.OPEN_DETECTOR).sha256
    clip = demo.bundled_clip()
    assert clip.is_file() and clip.stat().st_size < 5_000_000
    assert "University of Reading" in (clip.parent / "NOTICE").read_text()


def test_bundled_weights_and_clip_give_real_windows(tmp_path: Path, broker: Mosquitto) -> None:
    empty_models = tmp_path / "models"
    empty_models.mkdir()
    store = DEMO_STORES[0]
    config = write_edge_config(tmp_path, store, str(demo.bundled_clip()), broker.host,
                               broker.port, window_s=10, demographics=False,
                               detector=demo.OPEN_DETECTOR, reid=False)
    collector = Collector(broker, f"storesense/v1/{store.store_id}/+/agg")
    log = (tmp_path / "edge.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "storesense.cli", "edge", "run", "--config", str(config)],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "STORESENSE_MODELS_DIR": str(empty_models),
             "STORESENSE_DEMO_EVAL": str(tmp_path / "no-eval")})
    try:
        deadline = time.monotonic() + 60
        windows: list[WindowAggregate] = []
        while time.monotonic() < deadline and not any(w.occupancy.max for w in windows):
            assert proc.poll() is None, (tmp_path / "edge.log").read_text()
            windows = [WindowAggregate.from_json(p) for p in collector.payloads()]
            time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(20)
        collector.close()
    seen = [w for w in windows if w.frames > 0]
    assert seen, f"no window from the node; log:\n{(tmp_path / 'edge.log').read_text()}"
    assert not any(w.simulated for w in seen)
    # PETS09-S2L1's clip has 5-8 people in view at every moment: the detector sees them
    assert max(w.occupancy.max for w in seen) >= 3, [w.occupancy for w in seen]
    assert list(empty_models.iterdir()) == []  # nothing downloaded, nothing copied
