"""`storesense analyze VIDEO`: run the pipeline over a video file, write every line crossing.

The defaults (model, detector cadence, tracker and counting settings) are the ones
docs/accuracy.md was measured with.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np
import numpy.typing as npt

from edge.analytics.cadence import DETECT_HZ, detect_every_for
from edge.analytics.counting import CrossingEvent
from edge.pipeline import LINE_FOCUS, CameraPipeline, make_tracker
from edge.vision.detector import AUTO, LAYOUTS, Detector, load_detectors
from edge.vision.sources import FileInfo, file_frames
from storesense.config import load_toml
from storesense.errors import ConfigError
from storesense.schema import AnalyticsConfig, LineSpec


def parse_line(text: str) -> tuple[float, float, float, float]:
    try:
        x1, y1, x2, y2 = (float(v) for v in text.split(","))
    except ValueError as e:
        raise ConfigError(f"--line {text!r}: expected X1,Y1,X2,Y2 (normalised 0..1)") from e
    return x1, y1, x2, y2


def build_config(args: argparse.Namespace) -> AnalyticsConfig:
    config = load_toml(args.config, AnalyticsConfig) if args.config else AnalyticsConfig()
    if args.line:
        try:
            lines = [
                LineSpec(name=f"line{i + 1}", points=parse_line(s)) for i, s in enumerate(args.line)
            ]
        except ValueError as e:
            raise ConfigError(f"--line: {e}") from e
        config = config.model_copy(update={"lines": lines})
    return config


def file_pipeline(store_id: str, camera_id: str, config: AnalyticsConfig,
                  detectors: tuple[Detector, Detector | None], info: FileInfo,
                  args: argparse.Namespace) -> CameraPipeline:
    """The pipeline `analyze`, `eval` and `bench edge` run over a file: the cadence from
    --detect-every or the video's frame rate, --line-focus, and no demographics."""
    k = args.detect_every or detect_every_for(info.fps)  # the file says its rate up front
    config = config.model_copy(update={"detect_every": k, "demographics": False})
    tracker = make_tracker(config, args.models_dir, getattr(args, "threads", 1))  # bench: 1
    return CameraPipeline(store_id, camera_id, config, detectors[0], tracker=tracker,
                          crowd_detector=detectors[1], frame_size=(info.width, info.height),
                          line_focus=args.line_focus)


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=AUTO,
        help=f"detector: {AUTO} (each camera's profile chosen from what it sees), "
        f"{', '.join(LAYOUTS)} or a pinned file path",
    )
    p.add_argument("--models-dir", default=None, help="directory holding the ONNX models")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    p.add_argument("--config", default=None, help="TOML file validating as AnalyticsConfig")
    p.add_argument(
        "--detect-every",
        type=int,
        default=None,
        help=f"run the detector on every k-th frame (default: ~{DETECT_HZ:g} per video second)",
    )
    p.add_argument(
        "--line-focus",
        type=float,
        default=LINE_FOCUS,
        help="with --detect-every > 1, still detect every frame while a track this close to a "
        "line (normalised) is lost, tentative or overlaps someone; 0 = off",
    )
    p.add_argument(
        "--prescale",
        action="store_true",
        help="scale frames to the detector's input size before the colour conversion (faster; "
        "the detector then sees a slightly different image, see docs/accuracy.md)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", help="video file")
    p.add_argument("--line", action="append", help="X1,Y1,X2,Y2 normalised; repeatable")
    p.add_argument("--events", default=None, help="write crossings here as JSON lines")
    add_common(p)


@dataclass
class RunResult:
    frames: int = 0
    seconds: float = 0.0
    fps_video: float = 0.0
    events: list[tuple[int, CrossingEvent]] = field(default_factory=list)
    track_counts: list[tuple[int, int]] = field(default_factory=list)  # (frame, people in view)
    spans: dict[int, tuple[int, int]] = field(default_factory=dict)  # track id -> first, last frame
    zoom_frames: dict[str, int] = field(default_factory=dict)  # CameraPipeline.zoom_summary()
    costs: dict[str, int] = field(default_factory=dict)  # CameraPipeline.cost_summary()
    # with keep_tracks: every frame's (track ids, boxes x1 y1 x2 y2), for identity measures
    tracks: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = field(
        default_factory=list)


class Progress:
    def __init__(self, total: int, enabled: bool, stream: TextIO = sys.stderr) -> None:
        self.total, self.stream = total, stream
        self.enabled = enabled and stream.isatty()
        self.t0 = self._last = time.monotonic()

    def update(self, n: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < 0.5:
            return
        self._last = now
        rate = n / max(now - self.t0, 1e-9)
        self.stream.write(f"\rframe {n}/{self.total or '?'}  {rate:.1f} frames/s ")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def run_video(
    video: str,
    config: AnalyticsConfig,
    args: argparse.Namespace,
    *,
    keep_tracks: bool = False,
    detectors: tuple[Detector, Detector | None] | None = None,
) -> RunResult:
    """The pipeline over a file; crossings keyed by the 1-based frame they happened at.
    ``keep_tracks``: also keep every frame's track ids and boxes (``RunResult.tracks``).
    ``detectors``: the (cheap or pinned, crowd) pair to run instead of loading --model's (the
    suite passes them loaded once, or wrapped in its detections cache)."""
    cv2.setNumThreads(1)
    if detectors is None:
        detectors = load_detectors(args.model, models_dir=args.models_dir, threads=args.threads)
    detector = detectors[0]
    pipe: CameraPipeline | None = None
    res = RunResult()
    info, frames = file_frames(
        video,
        lambda: pipe is None or pipe.detects_next(),
        wants_ahead=lambda n: pipe is None or pipe.needs_frame(n),
        scale_to=detector.input_size if args.prescale else None,
    )
    pipe = file_pipeline("analyze", "video", config, detectors, info, args)
    res.fps_video = info.fps
    progress = Progress(info.frames, not args.quiet)
    t0 = time.perf_counter()
    t = 0.0
    for index, t, image in frames:
        pipe.process(image, t, decoded=image is not None)
        res.events.extend((_frame_of(e.t, info.fps), e) for e in pipe.last_events)
        tracks = pipe.last_tracks
        ids = tracks.tracker_id if tracks.tracker_id is not None else np.zeros(0, np.int64)
        res.track_counts.append((index, pipe.people_in_view))
        for tid in ids.tolist():
            res.spans[tid] = (res.spans.get(tid, (index, index))[0], index)
        if keep_tracks:
            res.tracks.append((ids.copy(), tracks.xyxy.astype(np.float64)))
        res.frames = index
        progress.update(index)
    pipe.flush(t)
    res.events.extend((_frame_of(e.t, info.fps), e) for e in pipe.last_events)
    res.seconds = time.perf_counter() - t0
    res.zoom_frames = pipe.zoom_summary()
    res.costs = pipe.cost_summary()
    progress.done()
    return res


def _frame_of(t: float, fps: float) -> int:
    return round(t * fps) + 1


def summary(res: RunResult) -> dict[str, object]:
    counts: dict[str, dict[str, int]] = {}
    for _, e in res.events:
        c = counts.setdefault(e.line, {"in": 0, "out": 0})
        c[e.direction] += 1
    return {
        "frames": res.frames,
        "seconds": round(res.seconds, 2),
        "frames_per_second": round(res.frames / max(res.seconds, 1e-9), 1),
        "detector_zoom_frames": res.zoom_frames,
        "costs": res.costs,
        "counts": counts,
    }


def write_events(path: Path, res: RunResult, *, named: bool) -> None:
    """One JSON line per crossing, in frame order; the line's name only when there are several."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for frame, e in sorted(res.events, key=lambda x: x[0]):
            row: dict[str, object] = {
                "frame": frame,
                "direction": e.direction,
                "track_id": e.track_id,
            }
            if named:
                row["line"] = e.line
            f.write(json.dumps(row) + "\n")


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    if not config.lines:
        raise ConfigError("no counting line: give --line X1,Y1,X2,Y2 or lines in --config")
    res = run_video(args.video, config, args)
    if args.events:
        write_events(Path(args.events), res, named=len(config.lines) > 1)
    print(json.dumps(summary(res)))
    return 0
