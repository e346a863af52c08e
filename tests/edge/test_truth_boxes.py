"""`eval --suite --truth-boxes`: the true boxes, without their ids, in the detector's place.

The detector stand-in on hand-made arrays (which boxes it keeps, how it knows a frame by its
pixels), then the mode end to end on the first 60 frames of PETS09-S2L1 against the real
detectors on the same clip."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.evaluation import suite
from edge.evaluation.evaluate import add_arguments
from edge.evaluation.mot import read_gt
from edge.evaluation.truth_boxes import TruthDetector, pixel_digest, truth_detections
from edge.vision.detections import Detections
from storesense.errors import ConfigError

# frame, id, left, top, width, height, visibility (-1: not annotated, as in MOT15)
GT = np.array([
    [1, 1, 10, 20, 5, 40, 0.2],
    [1, 2, 30, 20, 5, 40, 0.6],
    [2, 3, 0, 0, 4, 8, -1.0],
])


def test_every_considered_box_goes_in_as_a_detection_without_its_id():
    by_frame = truth_detections(GT, 0.0)
    assert sorted(by_frame) == [1, 2]
    assert by_frame[1].xyxy.tolist() == [[10, 20, 15, 60], [30, 20, 35, 60]]
    assert by_frame[1].tracker_id is None
    assert (by_frame[1].confidence > 0.6).all()  # confident enough to start a track


def test_a_visibility_floor_drops_the_hidden_and_keeps_the_unannotated():
    by_frame = truth_detections(GT, 0.5)
    assert by_frame[1].xyxy.tolist() == [[30, 20, 35, 60]]
    assert by_frame[2].xyxy.tolist() == [[0, 0, 4, 8]]


def frame(value: int) -> np.ndarray:
    img = np.zeros((32, 48, 3), np.uint8)
    img[0, 0, 0] = value  # a pixel the digest samples
    return img


def one_box(x: float) -> Detections:
    return Detections.from_arrays([[x, 0, x + 4, 8]], [0.9], [0])


def test_frames_are_known_by_their_pixels_and_repeats_by_their_order():
    a, b = frame(1), frame(2)
    det = TruthDetector({1: one_box(1), 2: one_box(2), 3: one_box(3)},
                        {pixel_digest(a): [1, 3], pixel_digest(b): [2]})
    assert [det(img).xyxy[0, 0] for img in (a, b, a)] == [1, 2, 3]
    with pytest.raises(ValueError, match="did not give"):
        det(frame(9))
    with pytest.raises(ValueError, match="prescale"):
        det(a, (64, 96))


def test_a_frame_without_true_boxes_gives_none():
    a = frame(1)
    det = TruthDetector({}, {pixel_digest(a): [1]})
    assert len(det(a)) == 0


def args_of(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(list(argv))


def test_truth_boxes_refuse_what_would_not_replace_the_detector(tmp_path):
    for extra in (["--gt-tracks"], ["--detections-cache", str(tmp_path)], ["--prescale"]):
        with pytest.raises(ConfigError, match="--truth-boxes replaces the detector"):
            suite.run_suite(args_of("--suite", str(tmp_path), "--truth-boxes", *extra))
    with pytest.raises(ConfigError, match="visibility from 0 to 1"):
        suite.run_suite(args_of("--suite", str(tmp_path), "--truth-boxes", "2"))


def clip_row(clip_eval: Path, models_dir: Path, *extra: str) -> dict[str, Any]:
    args = args_of("--suite", str(clip_eval), "--variants", "1", "--quiet",
                   "--models-dir", str(models_dir), *extra)
    (row,) = suite.run_suite(args, lines=suite.sweep_lines()[:3])["rows"]
    assert isinstance(row, dict)
    return row


@pytest.mark.video
def test_on_real_video_the_tracker_follows_every_true_person_given_their_boxes(
        clip_eval, models_dir):
    truth = clip_row(clip_eval, models_dir, "--truth-boxes")
    real = clip_row(clip_eval, models_dir)
    assert truth["mode"] == "truth boxes" and real["mode"] == "pipeline"
    assert truth["costs"]["detector_frames_pinned"] > 0  # the stand-in was asked, frame by frame
    gt = read_gt(clip_eval / "PETS-clip")
    present = np.unique(gt[:, 1])
    ids = truth["ids"]
    assert ids["persons"] == len(present)  # every true person was matched by a track
    # Exact boxes leave no person uncounted in view, and no identity break the detectors' do not
    f_truth, f_real = suite.figures(truth), suite.figures(real)
    assert f_truth["occupancy_mae"] < f_real["occupancy_mae"]
    assert f_truth["ids_per_person"] <= f_real["ids_per_person"]
