"""A detector that returns the ground truth's boxes: the suite's ``--truth-boxes`` mode.

Where is the suite's error made, in the detector or after it? ``--gt-tracks`` hands the true
tracks (ids and boxes) straight to the analytics, so it measures the counter alone. This mode
sits between that and the real pipeline: the considered true boxes of each frame, without
their ids, go in where the detector's output would, and everything after it runs as deployed:
cadence, line focus, tracker, re-identification on the frame's real pixels, lifetimes,
counting. What it scores is what the tracker and the counter make of a detector that finds
every annotated person, exactly, and nobody else.

MOT17's truth annotates people wholly hidden behind others (visibility 0); no camera-side
detector finds those. ``min_visibility`` keeps only boxes at least that visible, a detector
that finds everyone it can partly see. Sequences without visibility (MOT15's -1) keep every
box at any setting.

The detector is called with pixels only, so a frame is recognised by a digest of its pixels,
taken from one decoding of the whole file beforehand.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.evaluation.mot import gt_boxes
from edge.vision.detections import Detections
from edge.vision.detector import LAYOUTS, Detector
from edge.vision.sources import file_frames
from storesense.schema import ModelInfo

SCORE = 0.9  # above the tracker's thresholds for a confident box and for a new track
NAME = "ground truth boxes"


def pixel_digest(image: npt.NDArray[np.uint8]) -> bytes:
    """Which frame this is: every 8th pixel of every 8th row is enough to tell a video's frames
    apart (the rare exact repeat is resolved by order, ``TruthDetector.__call__``)."""
    return hashlib.blake2b(np.ascontiguousarray(image[::8, ::8]).data, digest_size=16).digest()


def frame_digests(video: str | Path) -> dict[bytes, list[int]]:
    """Digest -> the 1-based frames with those pixels, decoding every frame as the suite does."""
    _, frames = file_frames(str(video), lambda: True, wants_ahead=lambda _n: True)
    out: dict[bytes, list[int]] = {}
    for index, _t, image in frames:
        if image is not None:
            out.setdefault(pixel_digest(image), []).append(index)
    return out


def truth_detections(gt: npt.NDArray[np.float64], min_visibility: float) -> dict[int, Detections]:
    """Frame -> its considered true boxes (``gt``: ``read_gt(..., visibility=True)``) at least
    ``min_visibility`` visible, or of unknown visibility."""
    rows = gt[(gt[:, 6] < 0) | (gt[:, 6] >= min_visibility)] if min_visibility > 0 else gt
    out: dict[int, Detections] = {}
    for f in np.unique(rows[:, 0]).astype(int).tolist():
        r = rows[rows[:, 0] == f]
        out[f] = Detections(gt_boxes(r).astype(np.float32), np.full(len(r), SCORE, np.float32),
                            np.zeros(len(r), np.int64))
    return out


class TruthDetector(Detector):
    """Detector stand-in: a frame's true boxes, found by its pixels. It keeps a real detector's
    layout (the pipeline asks it for scales) but has no model."""

    def __init__(self, by_frame: dict[int, Detections], digests: dict[bytes, list[int]]) -> None:
        self.name, self.sha256, self.layout = NAME, "", LAYOUTS["yolox_nano"]
        self.score_threshold, self.nms_iou = SCORE, 1.0
        self._trim = True
        self.by_frame, self.digests = by_frame, digests
        self.last_frame = 0

    def __call__(
        self,
        image_bgr: npt.NDArray[np.uint8],
        frame_hw: tuple[int, int] | None = None,
        *,
        zoom: float = 1.0,
    ) -> Detections:
        if frame_hw is not None and frame_hw != image_bgr.shape[:2]:
            raise ValueError("truth boxes: give full frames (no --prescale)")
        frames = self.digests.get(pixel_digest(image_bgr))
        if not frames:
            raise ValueError("truth boxes: a frame the file's own decoding did not give")
        # Frames are detected in order; of identical frames, the first not yet passed.
        later = [f for f in frames if f > self.last_frame]
        self.last_frame = later[0] if later else frames[-1]
        return self.by_frame.get(self.last_frame, Detections.empty())

    def model_infos(self) -> list[ModelInfo]:
        return [ModelInfo(name="ground-truth", sha256="0" * 64)]
