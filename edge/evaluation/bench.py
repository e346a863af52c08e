"""`storesense bench edge`: end-to-end frames per second on one core, and memory over time.

One core: onnxruntime with one intra-op thread, OpenCV and the FFmpeg decoder (PyAV, or
OpenCV's without it) limited to one thread. End to end = open, decode, detect, track,
analytics, windows; non-reference frames the detector will not see are not decoded, and
frames it sees are converted straight to its input size (see ``edge.vision.sources.file_frames``).
``--duration`` loops the video for that many seconds and samples RSS, to show memory stays
flat.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

import cv2
import psutil
from pydantic import ValidationError

from edge.evaluation.analyze import file_pipeline
from edge.pipeline import LINE_FOCUS, CameraPipeline
from edge.vision.detector import AUTO, LAYOUTS, load_detectors
from edge.vision.sources import av_available, file_frames
from storesense.errors import ConfigError
from storesense.schema import AnalyticsConfig, DetectorZoom, LineSpec

DEFAULT_VIDEO = (
    Path(__file__).resolve().parents[3] / "shared/data/eval/MOT17-09/video.mp4"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--video", default=str(DEFAULT_VIDEO), help="video file (default: MOT17-09)")
    p.add_argument(
        "--model", default=AUTO, help=f"{AUTO} (profile chosen per camera), " + ", ".join(LAYOUTS)
    )
    p.add_argument("--models-dir", default=None)
    p.add_argument("--detect-every", type=int, default=None, help="default: as analyze")
    p.add_argument("--line-focus", type=float, default=LINE_FOCUS, help="as analyze; 0 = off")
    p.add_argument(
        "--prescale",
        action="store_true",
        help="as analyze: scale frames to the detector size before the colour conversion",
    )
    p.add_argument(
        "--zoom", type=float, default=None, help="pin the detector's zoom (default: auto)"
    )
    p.add_argument("--duration", type=float, default=0.0, help="soak: loop the video this long (s)")
    p.add_argument("--rss-every", type=float, default=10.0, help="soak: RSS sample period (s)")


def _zoom(value: float | None) -> DetectorZoom:
    if value is None:
        return DetectorZoom()
    try:
        return DetectorZoom(mode="fixed", zoom=value)
    except ValidationError as e:
        raise ConfigError(f"--zoom {value}: {e.errors()[0]['msg']}") from e


def _rss_mb() -> float:
    return round(float(psutil.Process().memory_info().rss) / 2**20, 1)


def bench(args: argparse.Namespace) -> dict[str, Any]:
    line = LineSpec(name="line1", points=(0.5, 0.0, 0.5, 1.0))
    config = AnalyticsConfig(lines=[line], zoom=_zoom(args.zoom))
    cv2.setNumThreads(1)
    detectors = load_detectors(args.model, models_dir=args.models_dir, threads=1)
    detector = detectors[0]
    frames = 0
    not_decoded = 0
    busy = 0.0
    rss: list[tuple[float, float]] = []
    t_media = 0.0
    start = time.perf_counter()
    pipe: CameraPipeline | None = None

    def wants_image() -> bool:  # convert to BGR only for frames the detector will see
        return pipe is None or pipe.detects_next()

    def wants_ahead(n: int) -> bool:  # decode non-reference frames only if they may be seen
        return pipe is None or pipe.needs_frame(n)

    while True:
        t0 = time.perf_counter()
        info, it = file_frames(
            args.video,
            wants_image,
            wants_ahead=wants_ahead,
            scale_to=detector.input_size if args.prescale else None,
        )
        if pipe is None:
            pipe = file_pipeline("bench", "cam", config, detectors, info, args)
        offset = t_media
        for _, t, image in it:
            t_media = offset + t
            pipe.process(image, t_media, decoded=image is not None)
            frames += 1
            now = time.perf_counter()
            if args.duration and (not rss or now - start - rss[-1][0] >= args.rss_every):
                rss.append((round(now - start, 1), _rss_mb()))
        busy += time.perf_counter() - t0
        not_decoded += info.not_decoded
        t_media += 1.0 / info.fps
        if time.perf_counter() - start >= args.duration:
            break
    return {
        "video": args.video,
        "model": args.model,
        "detect_every": pipe.config.detect_every if pipe else args.detect_every,
        "line_focus": args.line_focus,
        "detector_frames": pipe.detector_frames if pipe else 0,
        "detector_zoom_frames": pipe.zoom_summary() if pipe else {},
        "costs": pipe.cost_summary() if pipe else {},
        "decoder": "pyav" if av_available() else "opencv",
        "prescale": bool(args.prescale),
        "frames": frames,
        "frames_not_decoded": not_decoded,
        "frames_per_second": round(frames / busy, 1),
        "ms_per_frame": round(busy / frames * 1000, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_mb_over_time": rss,
    }


def run(args: argparse.Namespace) -> int:
    print(json.dumps(bench(args)))
    return 0
