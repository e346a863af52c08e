"""`python -m edge.evaluation.reference`: the library pipeline a user would assemble, on the suite.

The reference of issue 14: the project's own ``yolox_nano`` detector
(``edge.vision.detector.load_detector``: the same fitted canvas, score >= 0.1, NMS IoU 0.6) on
**every frame**, the Roboflow ``trackers`` package's ``ByteTrackTracker`` with its defaults
(only the video's frame rate given), and one ``supervision.LineZone`` per sweep line with its
defaults (all four box corners must be across the line; one observation on the new side).
Every row of ``storesense eval --suite`` (each sequence and its 2x2 and 3x3 mosaics, the 14
sweep lines) is scored by ``edge.evaluation.suite``'s own functions, and the same table is
printed, mode ``reference``.

Neither library is a dependency of the project: ``trackers`` needs ``opencv-python``, which
conflicts with the project's ``opencv-python-headless``. Run it in a venv of its own::

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install -e . trackers supervision      # from the checkout
    /tmp/refvenv/bin/python -m edge.evaluation.reference [EVAL_DIR] [--json OUT]

Direction: ``LineZone`` calls "in" an arrival on the side where its cross product is negative.
Rather than trust that reading, each line's mapping to ``LineSpec``'s rule (left side ->
right side seen along the line is "in", docs/accuracy.md "Direction rule") is measured by
walking a probe box across a fresh ``LineZone`` from our left side to our right side.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.analytics.counting import CrossingEvent, Direction
from edge.evaluation import suite
from edge.evaluation.mot import read_gt, read_seqinfo
from edge.vision.detector import DEFAULT_MODEL, Detector, load_detector
from edge.vision.sources import file_frames
from storesense.errors import ConfigError, StoresenseError
from storesense.schema import LineSpec

INSTALL = ("python3 -m venv /tmp/refvenv && "
           "/tmp/refvenv/bin/pip install -e . trackers supervision  (from the checkout)")
ANCHORS = ("corners", "foot")  # LineZone's default, or the foot point (bottom centre) we count
PROBE_PX = 20.0  # how far either side of the line the probe box walks
Line = tuple[float, float, float, float]


class Libraries:
    """``supervision`` and ``trackers``, imported only when the reference runs."""

    def __init__(self) -> None:
        try:
            self.sv: Any = importlib.import_module("supervision")
            self.trackers: Any = importlib.import_module("trackers")
        except ImportError as e:
            raise ConfigError(
                f"the reference pipeline needs the optional packages trackers and supervision "
                f"({e}); they are not project dependencies (trackers needs opencv-python, which "
                f"conflicts with opencv-python-headless). In a separate venv: {INSTALL}, then "
                f"/tmp/refvenv/bin/python -m edge.evaluation.reference"
            ) from e

    def versions(self) -> dict[str, str]:
        return {m.__name__: version_of(m) for m in (self.sv, self.trackers)}

    def line_zone(self, line_px: Line, anchors: str) -> Any:
        sv = self.sv
        start, end = sv.Point(line_px[0], line_px[1]), sv.Point(line_px[2], line_px[3])
        if anchors == "foot":
            return sv.LineZone(start=start, end=end,
                               triggering_anchors=[sv.Position.BOTTOM_CENTER])
        return sv.LineZone(start=start, end=end)

    def detections(self, xyxy: npt.NDArray[np.float32], confidence: npt.NDArray[np.float32],
                   class_id: npt.NDArray[np.int64]) -> Any:
        return self.sv.Detections(xyxy=xyxy.astype(np.float64), confidence=confidence,
                                  class_id=class_id)


def version_of(module: ModuleType) -> str:
    from importlib.metadata import version

    return version(module.__name__)


# ------------------------------------------------------------------------------ direction


def probe_feet(line_px: Line, distance: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Two foot points off the line's middle, ``distance`` pixels on its left side and on its
    right side in ``LineSpec``'s sense (``edge.analytics.counting.signed_distance`` < 0 left)."""
    x1, y1, x2, y2 = line_px
    length = float(np.hypot(x2 - x1, y2 - y1))
    nx, ny = -(y2 - y1) / length, (x2 - x1) / length  # signed_distance grows along (nx, ny)
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    return (mx - distance * nx, my - distance * ny), (mx + distance * nx, my + distance * ny)


def probe_box(foot: tuple[float, float], size: float) -> list[float]:
    """A ``size``-pixel box standing on ``foot`` (all its corners near it)."""
    x, y = foot
    return [x - size / 2, y - size, x + size / 2, y]


def zone_directions(libs: Libraries, line_px: Line, anchors: str) -> dict[str, Direction]:
    """What ``LineZone``'s "in" and "out" are in our rule, measured: a confirmed track walks
    a small box from our left side to our right side ("in" for us) of a fresh zone."""
    zone = libs.line_zone(line_px, anchors)
    left, right = probe_feet(line_px, PROBE_PX)
    size = PROBE_PX / 2  # wholly on one side: the default anchors are the four corners
    for foot in (left, left, right, right):
        det = libs.sv.Detections(xyxy=np.array([probe_box(foot, size)]),
                                 tracker_id=np.array([1]))
        zone.trigger(det)
    if (zone.in_count, zone.out_count) == (1, 0):
        return {"in": "in", "out": "out"}
    if (zone.in_count, zone.out_count) == (0, 1):
        return {"in": "out", "out": "in"}
    raise RuntimeError(f"LineZone probe across {line_px}: in {zone.in_count}, "
                       f"out {zone.out_count}; expected one crossing")


def zone_events(
    frame: int, t: float, line: str, tracker_ids: npt.NDArray[np.int64],
    crossed_in: npt.NDArray[np.bool_], crossed_out: npt.NDArray[np.bool_],
    directions: dict[str, Direction],
) -> list[tuple[int, CrossingEvent]]:
    """One frame's ``LineZone.trigger`` result as the suite's (frame, event) pairs, in our
    directions."""
    out: list[tuple[int, CrossingEvent]] = []
    for zone_dir, hits in (("in", crossed_in), ("out", crossed_out)):
        out.extend((frame, CrossingEvent(line, int(tid), directions[zone_dir], t))
                   for tid in tracker_ids[hits].tolist())
    return out


# ------------------------------------------------------------------------------ one row


def line_px(line: LineSpec, size: tuple[int, int]) -> Line:
    w, h = size
    x1, y1, x2, y2 = line.points
    return x1 * w, y1 * h, x2 * w, y2 * h


def run_reference(libs: Libraries, detector: Detector, name: str, seq: Path, variant: int,
                  lines: list[LineSpec], anchors: str) -> dict[str, Any]:
    """One pass over the variant ``seq``: detect every frame, track, trigger every line."""
    info, gt = read_seqinfo(seq), read_gt(seq)
    tracker = libs.trackers.ByteTrackTracker(frame_rate=info.fps)
    size = (info.width, info.height)
    zones = []
    for ln in lines:
        px = line_px(ln, size)
        zones.append((ln.name, libs.line_zone(px, anchors), zone_directions(libs, px, anchors)))
    events: list[tuple[int, CrossingEvent]] = []
    tracks: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = []
    spans: dict[int, tuple[int, int]] = {}
    tracked = np.zeros(info.length, float)
    _, frames = file_frames(str(info.video), lambda: True)
    t0 = time.perf_counter()
    n = 0
    for index, t, image in frames:
        if image is None:  # every frame is wanted, so none is skipped: a decoding failure
            raise RuntimeError(f"{info.video}: frame {index} was not decoded")
        dets = detector(image)
        out = tracker.update(libs.detections(dets.xyxy, dets.confidence, dets.class_id))
        ids = np.asarray(out.tracker_id, np.int64)
        for line, zone, directions in zones:
            crossed_in, crossed_out = zone.trigger(out)
            events.extend(zone_events(index, t, line, ids, crossed_in, crossed_out, directions))
        confirmed = ids >= 0  # trackers' -1: a track not yet confirmed, or a box left unmatched
        tracks.append((ids[confirmed].copy(), np.asarray(out.xyxy, np.float64)[confirmed]))
        if 1 <= index <= info.length:
            tracked[index - 1] = int(confirmed.sum())
        for tid in ids[confirmed].tolist():
            spans[tid] = (spans.get(tid, (index, index))[0], index)
        n = index
    return {
        "sequence": name, "variant": variant, "mode": "reference", "frames": n,
        "seconds": round(time.perf_counter() - t0, 2),
        "directions": {z[0]: z[2] for z in zones},
        **suite.line_tallies(events, lines, gt, info),
        "ids": {**suite.ids_tally(gt, suite.id_pairs(gt, tracks),
                                  max(1, round(suite.MIN_ID_S * info.fps))),
                **suite.idf1_tally(gt, tracks)},
        "dwell": suite.dwell_tally(suite.gt_spans(gt), list(spans.values()), info.fps),
        "occupancy": suite.occupancy_tally(gt, tracked, info.length),
    }


# ------------------------------------------------------------------------------ command


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m edge.evaluation.reference",
        description="The reference pipeline (yolox_nano every frame, trackers ByteTrack, "
        "supervision LineZone, all at their defaults) on the evaluation suite; the table of "
        f"`storesense eval --suite`. Needs: {INSTALL}")
    p.add_argument("suite", nargs="?", default=None, metavar="EVAL_DIR",
                   help="MOT sequence folders (default as `storesense eval --suite`)")
    p.add_argument("--work", default=None, help="where the mosaics are built and kept "
                   "(default ~/.cache/storesense/eval-suite, shared with the suite)")
    p.add_argument("--variants", default=None, help="e.g. 1,2 (default 1,2,3)")
    p.add_argument("--sequences", default=None, help="NAME,... (default: every folder)")
    p.add_argument("--anchors", choices=ANCHORS, default="corners",
                   help="LineZone's triggering anchors: corners (its default) or foot "
                   "(bottom centre, the point our counter uses)")
    p.add_argument("--models-dir", default=None, help="directory holding the ONNX models")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    p.add_argument("--json", default=None, metavar="OUT", help="write every figure here")
    return p.parse_args(argv)


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    libs = Libraries()
    eval_dir = Path(args.suite) if args.suite else suite.default_eval_dir()
    work = Path(args.work) if args.work else suite.default_work_dir()
    variants = [int(v) for v in suite.parse_subset(args.variants, "variants") or suite.VARIANTS]
    if any(v not in (1, 2, 3, 4) for v in variants):
        raise ConfigError(f"--variants: 1 (the sequence), 2, 3 or 4 (mosaics), got {variants}")
    seqs = suite.find_sequences(eval_dir, suite.parse_subset(args.sequences, "sequences"))
    lines = suite.sweep_lines()
    cv2.setNumThreads(1)
    detector = load_detector(DEFAULT_MODEL, models_dir=args.models_dir, threads=args.threads)
    t0 = time.perf_counter()
    rows = []
    for seq in seqs:
        for n in variants:
            d = suite.variant_dir(seq, n, work)
            print(f"reference: {seq.name} {n}x{n}", file=sys.stderr)
            rows.append(run_reference(libs, detector, seq.name, d, n, suite.off_seams(lines, n),
                                      args.anchors))
    return {"eval_dir": str(eval_dir), "lines": [ln.name for ln in lines], "band": suite.BAND,
            "pipeline": {"detector": DEFAULT_MODEL, "detect_every": 1,
                         "tracker": "trackers.ByteTrackTracker (defaults, frame_rate=fps)",
                         "line_zone": f"supervision.LineZone (anchors: {args.anchors})"},
            "versions": libs.versions(), "rows": rows, "all": [suite.pool_rows(rows, "all")],
            "wall_seconds": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run_all(args)
    except StoresenseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(suite.table(result["rows"] + result["all"]))
    print(f"wall time {result['wall_seconds']:.1f} s; "
          + ", ".join(f"{k} {v}" for k, v in result["versions"].items()))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        for r in result["rows"] + result["all"]:
            r["figures"] = suite.figures(r)
        out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
