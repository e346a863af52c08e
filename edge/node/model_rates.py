"""The evidence behind the model update's collapse rule (edge/node/model_update.py).

For each evaluation video and each pair of detectors (a model replaced by itself, by the
other, and back), every detector frame is tried as the moment of a swap: the new model's
confident detections per frame over its first ``--check`` frames against the old model's
over the ``--previous`` frames before. A healthy swap's worst ratio is the floor the
rollback threshold must stay clear of; a blind model's ratio is 0.

    .venv/bin/python -m edge.node.model_rates ../shared/data/eval ../shared/models
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import cv2
import numpy as np

from edge.node.model_update import COUNTED_SCORE, PREVIOUS_FRAMES
from edge.vision.detector import load_detector
from models.registry import AUTO_DETECTORS


def detections_per_frame(video: Path, model: str, models_dir: Path, every: int) -> list[int]:
    detector = load_detector(model, models_dir=models_dir)
    cap = cv2.VideoCapture(str(video))
    counts = []
    for i in itertools.count():
        ok, image = cap.read()
        if not ok:
            break
        if i % every == 0:
            dets = detector(np.asarray(image, np.uint8))
            counts.append(int((dets.confidence >= COUNTED_SCORE).sum()))
    cap.release()
    return counts


def swap_ratios(old: list[int], new: list[int], check: int, previous: int,
                min_rate: float) -> list[float]:
    """New rate over its first ``check`` frames / old rate over ``previous`` frames before,
    at every frame where the old rate is high enough to judge."""
    out = []
    for s in range(check, len(old) - check):
        before = float(np.mean(old[max(0, s - previous):s]))
        if before >= min_rate:
            out.append(float(np.mean(new[s:s + check])) / before)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("eval_dir", type=Path)
    ap.add_argument("models_dir", type=Path)
    ap.add_argument("--every", type=int, default=3, help="detect on every k-th frame")
    ap.add_argument("--check", type=int, default=30, help="the new model's frames judged")
    ap.add_argument("--previous", type=int, default=PREVIOUS_FRAMES)
    ap.add_argument("--min-rate", type=float, default=0.5)
    args = ap.parse_args()
    for seq in sorted(p for p in args.eval_dir.iterdir() if (p / "video.mp4").exists()):
        rates = {m: detections_per_frame(seq / "video.mp4", m, args.models_dir, args.every)
                 for m in AUTO_DETECTORS}
        for old, new in itertools.product(AUTO_DETECTORS, repeat=2):
            r = swap_ratios(rates[old], rates[new], args.check, args.previous, args.min_rate)
            print(f"{seq.name:12} {old:21} -> {new:21} mean {np.mean(rates[new]):5.2f}/frame  "
                  f"swaps {len(r):4}  worst ratio {min(r):.2f}  median {np.median(r):.2f}")


if __name__ == "__main__":
    main()
