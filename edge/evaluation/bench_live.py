"""`storesense bench live`: the pipeline as a node runs it, on a sequence sent as a live stream.

A live camera does not wait: a node slower than it catches up by handing frames on without
their image (``edge.vision.live_lag``), and what it counts is what it had time to see. This
sends an evaluation sequence live at its own frame rate (``edge.evaluation.live_replay``),
reads it as the node reads a camera (``FrameSource``, frames dated when sent, onnxruntime and
OpenCV on one thread), and scores the crossings on the suite's 14 lines against the sequence's
truth. ``storesense eval --suite`` gives the same pipeline all the time it needs; the
difference is what a box too slow for its camera loses.
"""

from __future__ import annotations

import argparse
import bisect
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.analytics.counting import CrossingEvent
from edge.evaluation.analyze import file_pipeline
from edge.evaluation.evaluate import scores
from edge.evaluation.live_replay import replay
from edge.evaluation.mot import read_gt, read_seqinfo
from edge.evaluation.suite import BAND, default_eval_dir, line_tallies, pooled, sweep_lines
from edge.pipeline import LINE_FOCUS
from edge.vision.detector import AUTO, LAYOUTS, load_detectors
from edge.vision.sources import FileInfo, open_source
from storesense.errors import SourceError
from storesense.schema import AnalyticsConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sequence", default=None,
                   help="MOT-format folder (default: MOT17-09 in the evaluation data)")
    p.add_argument(
        "--model", default=AUTO, help=f"{AUTO} (profile chosen per camera), " + ", ".join(LAYOUTS)
    )
    p.add_argument("--models-dir", default=None)
    p.add_argument("--line-focus", type=float, default=LINE_FOCUS, help="as analyze; 0 = off")


def bench(args: argparse.Namespace) -> dict[str, Any]:
    seq = Path(args.sequence) if args.sequence else default_eval_dir() / "MOT17-09"
    info, gt = read_seqinfo(seq), read_gt(seq)
    cv2.setNumThreads(1)
    detectors = load_detectors(args.model, models_dir=args.models_dir, threads=1)
    lines = sweep_lines()
    run = argparse.Namespace(detect_every=None, line_focus=args.line_focus,
                             models_dir=args.models_dir, threads=1)
    pipe = file_pipeline("bench", "live", AnalyticsConfig(lines=lines), detectors,
                         FileInfo(info.fps, info.length, info.width, info.height), run)
    events: list[CrossingEvent] = []
    stamps: list[tuple[float, int]] = []  # (frame time, 1-based frame) of every frame read
    lags: list[float] = []
    with replay(info.video, (info.length - 0.5) / info.fps) as url:
        src = open_source(url)
        src.attach(pipe.detects_next, pipe.needs_frame, pipe.detects_on_cadence)
        start = None
        while not stamps or stamps[-1][1] < info.length:
            f = src.read(timeout=30)
            if f is None:
                raise SourceError(f"live replay of {info.video}: {src.last_error}")
            start = time.monotonic() if start is None else start
            pipe.process(f.image if f.decoded else None, f.t, decoded=f.decoded)
            events.extend(pipe.last_events)
            stamps.append((f.t, f.index))
            lags.append(time.time() - f.t)
        wall = time.monotonic() - (start or 0.0)
        withheld = src.dropped_frames
        src.close()
    pipe.flush(stamps[-1][0])
    events.extend(pipe.last_events)
    times = [t for t, _ in stamps]
    framed = [(stamps[max(0, bisect.bisect_right(times, e.t) - 1)][1], e) for e in events]
    per_line = line_tallies(framed, lines, gt, info)["per_line"]
    strict = scores(pooled([r["strict"] for r in per_line]))
    banded = scores(pooled([r["banded"] for r in per_line]))
    return {
        "sequence": info.name, "model": args.model, "video_s": round(info.length / info.fps, 1),
        "wall_s": round(wall, 1), "frames": stamps[-1][1], "frames_withheld": withheld,
        "detector_frames": pipe.detector_frames, "profile_frames": dict(pipe.profile_frames),
        "lag_s": {"p50": round(float(np.median(lags)), 2),
                  "p95": round(float(np.percentile(lags, 95)), 2),
                  "max": round(float(np.max(lags)), 2)},
        "lines": len(lines), "band": BAND,
        "banded": {"count_accuracy": banded["count_accuracy"], "f1": banded["f1"]},
        "strict": {"count_accuracy": strict["count_accuracy"], "f1": strict["f1"]},
    }


def run(args: argparse.Namespace) -> int:
    print(json.dumps(bench(args)))
    return 0
