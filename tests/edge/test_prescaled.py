"""The pre-resized detector input and the pipeline's frame-need answers (PyAV skipping)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.pipeline import CameraPipeline
from edge.vision.detector import load_detector
from edge.vision.sources import file_frames
from storesense.schema import AnalyticsConfig, LineSpec

DOOR = LineSpec(name="door", points=(0.5, 0.0, 0.5, 1.0))


@pytest.fixture(scope="module")
def detector(models_dir):
    return load_detector("yolox_nano", models_dir=models_dir)


def test_prescaled_input_gives_the_boxes_of_the_full_frame(detector, eval_dir: Path):
    _, it = file_frames(str(eval_dir / "MOT17-09/video.mp4"), lambda: True)
    frame = next(it)[2]
    assert frame is not None
    h, w = frame.shape[:2]
    size = detector.input_size(w, h)
    assert size == (416, 234)
    full = detector(frame)
    # The same resize the letterbox does, done before: the detector sees the same pixels.
    small = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
    mapped = detector(small, (h, w))
    assert len(full) >= 5 and len(mapped) == len(full)
    np.testing.assert_allclose(mapped.xyxy, full.xyxy, atol=0.05)
    unmapped = detector(small)  # without frame_hw the boxes stay in the small image's pixels
    assert unmapped.xyxy[:, 2].max() <= 416 < full.xyxy[:, 2].max()


def test_needs_frame_follows_the_cadence_and_undecoded_frames_are_predicted(detector):
    black = np.zeros((200, 200, 3), np.uint8)
    config = AnalyticsConfig(lines=[DOOR], detect_every=3)
    pipe = CameraPipeline("s", "c", config, detector)
    assert [pipe.needs_frame(n) for n in range(7)] == [1, 0, 0, 1, 0, 0, 1]
    pipe.process(black, 0.0)
    assert [pipe.needs_frame(n) for n in range(3)] == [0, 0, 1]
    pipe.process(None, 0.1)
    pipe.process(None, 0.2)
    assert pipe.detects_next()
    # The source did not decode this frame: no detector run, no error, the frame is counted.
    pipe.process(None, 0.3, decoded=False)
    assert pipe.frames == 4 and pipe.detector_frames == 1
    pipe.process(None, 0.4)
    pipe.process(None, 0.5)
    with pytest.raises(ValueError, match="needs the image"):
        pipe.process(None, 0.6)  # a decoded frame without its image is still refused
