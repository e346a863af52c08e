"""Groups at a line on a real sequence, for docs/retail-figures.md: on the true tracks
(ground truth through ``edge.pipeline.Analytics``, so only the group rule is judged) and
through the whole pipeline (detector, tracker, re-identification), each crossing 'in' with
the group it joined.

    python -m edge.evaluation.retail_run ../shared/data/eval/PETS09-S2L1 --line 0.5,0,0.5,1

Both directions of the line are run ('in' as the line says, then reversed), since a group is
counted on 'in' crossings only.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from typing import Any

import numpy as np

from edge.analytics.groups import GroupCounter
from edge.evaluation.analyze import add_common, file_pipeline, parse_line
from edge.evaluation.gt_tracks import frames_of
from edge.evaluation.mot import SeqInfo, read_gt, read_seqinfo
from edge.pipeline import Analytics
from edge.vision.detector import load_detectors
from edge.vision.sources import file_frames
from storesense.schema import AnalyticsConfig, LineSpec


def _config(points: tuple[float, float, float, float], reverse: bool) -> AnalyticsConfig:
    way = "right_to_left" if reverse else "left_to_right"
    return AnalyticsConfig(lines=[LineSpec(name="line", points=points, in_direction=way)])


def _groups(log: list[tuple[int, float, int]]) -> list[list[tuple[int, float]]]:
    by: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for tid, t, g in log:
        by[g].append((tid, round(t, 2)))
    return [by[g] for g in sorted(by)]


def on_truth(seq: str, config: AnalyticsConfig) -> dict[str, Any]:
    gt, info = read_gt(seq), read_seqinfo(seq)
    a = Analytics(config, track_timeout_s=math.inf)
    a.groups = GroupCounter(log=[])
    w, h = info.width, info.height
    last = {int(i): int(gt[gt[:, 1] == i, 0].max()) for i in np.unique(gt[:, 1])}
    ins = groups = 0
    for i, rows in enumerate(frames_of(gt, info.length)):
        ids = rows[:, 1].astype(np.int64)
        feet = np.stack([(rows[:, 2] + rows[:, 4] / 2) / w, (rows[:, 3] + rows[:, 5]) / h], 1)
        out = a.update(ids, feet, i / info.fps, rows[:, 5] / h,
                       ended=[t for t in ids.tolist() if last[t] == i + 1], frame_size=(w, h))
        ins += sum(e.direction == "in" for e in out.crossings)
        groups += out.groups
    out = a.finish()
    ins += sum(e.direction == "in" for e in out.crossings)
    assert a.groups.log is not None
    return {"ins": ins, "groups": groups + out.groups, "members": _groups(a.groups.log)}


def on_video(info: SeqInfo, config: AnalyticsConfig, args: argparse.Namespace) -> dict[str, Any]:
    detectors = load_detectors(args.model, models_dir=args.models_dir, threads=args.threads)
    pipe = None
    fi, frames = file_frames(str(info.video), lambda: pipe is None or pipe.detects_next(),
                             wants_ahead=lambda n: pipe is None or pipe.needs_frame(n))
    pipe = file_pipeline("eval", "video", config, detectors, fi, args)
    pipe.analytics.groups.log = []
    decisions: list[tuple[float, bool, bool]] = []  # (t, unique, had a look) per 'in'
    memory_on_in = pipe.reentry.on_in

    def on_in(look: Any, t: float, *rest: Any) -> bool:
        unique = memory_on_in(look, t, *rest)
        decisions.append((round(t, 2), unique, look is not None))
        return unique

    setattr(pipe.reentry, "on_in", on_in)  # noqa: B010 (an instance attribute, for this run)
    windows = []
    t = 0.0
    for _, t, image in frames:
        windows += pipe.process(image, t, decoded=image is not None)
    windows += pipe.flush(t)
    log = pipe.analytics.groups.log
    return {"ins": sum(x.in_count for w in windows for x in w.lines),
            "groups": sum(w.groups or 0 for w in windows),
            "unique_visitors": sum(w.unique_visitors or 0 for w in windows),
            "members": _groups(log),
            "with_look": sum(d[2] for d in decisions),
            "reentries_at": [d[0] for d in decisions if not d[1]]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("seq", help="a MOT sequence folder (gt.txt, seqinfo.ini, video.mp4)")
    p.add_argument("--line", default="0.5,0,0.5,1", help="X1,Y1,X2,Y2 normalised")
    add_common(p)
    args = p.parse_args()
    points = parse_line(args.line)
    info = read_seqinfo(args.seq)
    for reverse in (False, True):
        config = _config(points, reverse)
        print(json.dumps({"line": args.line, "in": "reversed" if reverse else "as drawn",
                          "truth": on_truth(args.seq, config),
                          "pipeline": on_video(info, config, args)}))


if __name__ == "__main__":
    main()
