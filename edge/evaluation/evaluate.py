"""`storesense eval SEQ_DIR`: score the pipeline against MOT ground truth.

Count accuracy = 1 - (|in error| + |out error|) / true crossings. Event precision, recall
and F1: a predicted crossing matches a true one of the same direction within one second,
one-to-one (Hungarian on the time difference). With several ``--line``s each is scored on its
own and the top-level figures pool them (errors and matches summed over the lines): one
run then shows whether the counts hold wherever a line is drawn, not only where one line
happened to fall. Occupancy error: mean absolute difference between people tracked in view
and considered gt boxes per frame. Dwell: mean time in view of tracks vs gt ids (both only
for those seen at least one second).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from edge.evaluation.analyze import RunResult, add_common, build_config, run_video
from edge.evaluation.mot import (
    SeqInfo,
    TrueCrossing,
    people_per_frame,
    read_gt,
    read_seqinfo,
    true_crossings,
)
from storesense.errors import ConfigError
from storesense.schema import LineSpec

MATCH_WINDOW_S = 1.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "seq_dir", nargs="?", help="MOT-format folder: video.mp4, gt.txt, seqinfo.ini"
    )
    p.add_argument(
        "--line", action="append", help="X1,Y1,X2,Y2 normalised; repeatable (scored each, pooled)"
    )
    add_common(p)
    s = p.add_argument_group("suite (edge/evaluation/suite.py, docs/accuracy.md)")
    s.add_argument(
        "--suite", nargs="?", const="", default=None, metavar="EVAL_DIR",
        help="every sequence in EVAL_DIR (default $STORESENSE_SHARED/data/eval, else "
        "../shared/data/eval) and its 2x2, 3x3 mosaics, on 14 swept lines; one table",
    )
    s.add_argument("--work", default=None,
                   help="where the suite's mosaics are built and kept "
                   "(default ~/.cache/storesense/eval-suite)")
    s.add_argument("--json", default=None, metavar="OUT", help="write every suite figure here")
    s.add_argument("--variants", default=None,
                   help="e.g. 1,2: 1 = the sequence, n = its n x n mosaic (default 1,2,3)")
    s.add_argument("--sequences", default=None, help="NAME,... (default: every folder)")
    s.add_argument("--detections-cache", default=None, metavar="DIR",
                   help="keep every detected frame's detector output in DIR and replay it on "
                   "later runs (keyed by model, video, zoom and detector settings; a frame not "
                   "there is detected and added); tracker and counter changes are then judged "
                   "in a fraction of the time. Off by default")
    s.add_argument("--gt-tracks", action="store_true",
                   help="count on the true tracks instead of detector + tracker")
    s.add_argument("--truth-boxes", type=float, nargs="?", const=0.0, default=None,
                   metavar="MIN_VISIBILITY",
                   help="the true boxes (no ids) in the detector's place, the tracker and "
                   "counter as deployed; only boxes at least MIN_VISIBILITY visible (default 0: "
                   "every annotated person)")


def matched_pairs(
    pred: list[tuple[int, str]], truth: list[TrueCrossing], fps: float
) -> list[tuple[int, int]]:
    """One-to-one matches (index into ``pred``, index into ``truth``): same direction, frames
    within MATCH_WINDOW_S, Hungarian on the time difference."""
    out: list[tuple[int, int]] = []
    for direction in ("in", "out"):
        pi = [i for i, (_, d) in enumerate(pred) if d == direction]
        ti = [i for i, c in enumerate(truth) if c.direction == direction]
        if not pi or not ti:
            continue
        p = np.array([pred[i][0] for i in pi], float)
        t = np.array([truth[i].frame for i in ti], float)
        cost = np.abs(p[:, None] - t[None, :]) / fps
        rows, cols = linear_sum_assignment(np.where(cost > MATCH_WINDOW_S, 1e6, cost))
        out += [(pi[r], ti[c]) for r, c in zip(rows, cols, strict=True)
                if cost[r, c] <= MATCH_WINDOW_S]
    return out


def match_events(pred: list[tuple[int, str]], truth: list[TrueCrossing], fps: float) -> int:
    """Number of one-to-one matches: same direction, frames within MATCH_WINDOW_S."""
    return len(matched_pairs(pred, truth, fps))


def tally(pred: list[tuple[int, str]], truth: list[TrueCrossing], fps: float) -> dict[str, int]:
    """Counts behind the scores; tallies of several lines add up to their pooled scores (the
    count error is summed per line, so one line's over-count does not hide another's miss)."""
    n_in = sum(d == "in" for _, d in pred)
    t_in = sum(c.direction == "in" for c in truth)
    n_out, t_out = len(pred) - n_in, len(truth) - t_in
    return {"p_in": n_in, "p_out": n_out, "t_in": t_in, "t_out": t_out,
            "error": abs(n_in - t_in) + abs(n_out - t_out),
            "matched": match_events(pred, truth, fps)}


def scores(c: dict[str, int]) -> dict[str, Any]:
    n_pred, n_true, m = c["p_in"] + c["p_out"], c["t_in"] + c["t_out"], c["matched"]
    precision = m / n_pred if n_pred else 1.0
    recall = m / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "true": {"in": c["t_in"], "out": c["t_out"]},
        "predicted": {"in": c["p_in"], "out": c["p_out"]},
        "count_accuracy": round(1 - c["error"] / max(n_true, 1), 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
    }


def line_scores(
    res: RunResult, lines: list[LineSpec], gt: npt.NDArray[np.float64], info: SeqInfo
) -> dict[str, Any]:
    """Scores of one line, or of several pooled with each line's under ``per_line``."""
    tallies = []
    for line in lines:
        truth = true_crossings(gt, line.points, (info.width, info.height))
        pred: list[tuple[int, str]] = [
            (frame, e.direction) for frame, e in res.events if e.line == line.name
        ]
        tallies.append(tally(pred, truth, info.fps))
    pooled = scores({k: sum(t[k] for t in tallies) for k in tallies[0]})
    if len(lines) == 1:
        return {"line": list(lines[0].points), **pooled}
    per_line = [
        {"line": list(ln.points), **scores(t)} for ln, t in zip(lines, tallies, strict=True)
    ]
    return {**pooled, "per_line": per_line}


def mean_dwell(spans: list[tuple[int, int]], fps: float) -> float:
    d = [(b - a + 1) / fps for a, b in spans if (b - a + 1) / fps >= 1.0]
    return round(float(np.mean(d)), 2) if d else 0.0


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    if args.seq_dir is None:
        raise ConfigError("eval needs SEQ_DIR (or --suite [EVAL_DIR])")
    info = read_seqinfo(args.seq_dir)
    config = build_config(args)
    if not config.lines:
        raise ConfigError("eval needs a counting line: give --line X1,Y1,X2,Y2")
    gt = read_gt(args.seq_dir)
    res: RunResult = run_video(str(info.video), config, args)
    per_frame = people_per_frame(gt, info.length)
    tracked = np.zeros(info.length, float)
    for frame, n in res.track_counts:
        if 1 <= frame <= info.length:
            tracked[frame - 1] = n
    gt_spans = [
        (int(gt[gt[:, 1] == i, 0].min()), int(gt[gt[:, 1] == i, 0].max()))
        for i in np.unique(gt[:, 1])
    ]
    return {
        "sequence": info.name,
        "model": args.model,
        "detect_every": args.detect_every or "auto",
        "frames": res.frames,
        "frames_per_second": round(res.frames / max(res.seconds, 1e-9), 1),
        "detector_zoom_frames": res.zoom_frames,
        **line_scores(res, config.lines, gt, info),
        "occupancy_mae": round(float(np.abs(tracked - per_frame).mean()), 3),
        "occupancy_mean": {
            "true": round(float(per_frame.mean()), 2),
            "tracked": round(float(tracked.mean()), 2),
        },
        "dwell_mean_s": {
            "true": mean_dwell(gt_spans, info.fps),
            "tracked": mean_dwell(list(res.spans.values()), info.fps),
        },
        "tracks": {"true_ids": len(gt_spans), "track_ids": len(res.spans)},
    }


def run(args: argparse.Namespace) -> int:
    if args.suite is not None:
        from edge.evaluation import suite  # the suite imports this module: imported when asked for

        return suite.run(args)
    if args.detections_cache:
        raise ConfigError("--detections-cache is a suite option: give --suite too")
    print(json.dumps(evaluate(args)))
    return 0
