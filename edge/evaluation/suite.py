"""`storesense eval --suite [EVAL_DIR]`: every sequence, its mosaics, lines swept across it.

One line can be tuned to; fourteen lines over three scales of crowd cannot, not without it
showing. For every MOT folder in EVAL_DIR the suite scores the original and its 2x2 and 3x3
mosaics (``edge.evaluation.mosaic``, built once into ``--work`` and reused while the source is
unchanged), each in ONE pipeline pass that counts on every sweep line at once: vertical lines
x = 0.2 ... 0.8 and horizontal lines y = 0.2 ... 0.8, each spanning the frame (a mosaic's
lines that lie on a seam between its tiles are left out: nobody crosses them).

Per (sequence, variant), pooled over the lines (count errors summed per line, so lines do not
cancel): count accuracy and event F1 (``edge.evaluation.evaluate``) against the strict truth (README
rule 4) and the banded truth (rule 8, band 0.01 of min(width, height)); ids per true person;
dwell error; occupancy error. The definitions are in docs/accuracy.md, "The evaluation
suite". A last row, "all", pools every row.

``--gt-tracks`` feeds the true tracks to the analytics instead
(``edge.evaluation.gt_tracks``), two rows
per variant: the counter set to the truth's definition, which must reproduce the banded truth
exactly, and the counter at its defaults.

``--truth-boxes [MIN_VISIBILITY]`` runs the pipeline with the true boxes, without their ids,
in the detector's place (``edge.evaluation.truth_boxes``): what the tracker and the counter
make of a detector that finds every annotated person, or every one at least MIN_VISIBILITY
visible.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from edge.analytics.counting import CrossingEvent
from edge.evaluation import analyze
from edge.evaluation.detection_cache import DetectionCache
from edge.evaluation.error_kinds import (
    EXTRA,
    MISSED,
    line_error_kinds,
    pooled_kinds,
    track_people,
)
from edge.evaluation.evaluate import scores, tally
from edge.evaluation.file_stamp import content_stamp
from edge.evaluation.gt_tracks import count_lines, truth_counting
from edge.evaluation.mosaic import build_mosaic
from edge.evaluation.mot import SeqInfo, gt_boxes, read_gt, read_seqinfo, true_crossings
from edge.evaluation.truth_boxes import TruthDetector, frame_digests, truth_detections
from edge.vision.detector import Detector, load_detectors
from storesense.errors import ConfigError
from storesense.schema import AnalyticsConfig, LineSpec

F64 = npt.NDArray[np.float64]
Detectors = tuple[Detector, Detector | None]  # the camera's cheap (or pinned) and crowd ones
SWEEP = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
BAND = 0.01  # the banded truth's band, a fraction of min(width, height) (eval README rule 8)
VARIANTS = (1, 2, 3)  # 1 = the sequence itself, n = its n x n mosaic
MATCH_IOU = 0.5
MIN_DWELL_S = 1.0
MIN_ID_S = 0.5  # a person paired with a track for less than this is a flicker of the matching
# Bump when edge/evaluation/mosaic.py changes what it writes: cached mosaics are then rebuilt.
MOSAIC_VERSION = 1
REPO = Path(__file__).resolve().parents[2]


def default_eval_dir() -> Path:
    shared = os.environ.get("STORESENSE_SHARED")
    return Path(shared) / "data" / "eval" if shared else REPO.parent / "shared" / "data" / "eval"


def default_work_dir() -> Path:
    return Path.home() / ".cache" / "storesense" / "eval-suite"


def sweep_lines() -> list[LineSpec]:
    """x = 0.2..0.8 drawn top to bottom, then y = 0.2..0.8 drawn left to right."""
    vertical = [LineSpec(name=f"x{c:g}", points=(c, 0.0, c, 1.0)) for c in SWEEP]
    horizontal = [LineSpec(name=f"y{c:g}", points=(0.0, c, 1.0, c)) for c in SWEEP]
    return vertical + horizontal


def off_seams(lines: list[LineSpec], n: int) -> list[LineSpec]:
    """The lines of an n x n mosaic that do not lie on a seam between its tiles. Nobody walks
    from one tile into the next, so a seam line has no banded true crossing by construction
    (the strict truth only counts the feet of people cut off by their tile's edge swaying on
    it); all it could measure is a track joining people of adjacent tiles, which no camera
    has."""
    seams = [k / n for k in range(1, n)]

    def on_seam(line: LineSpec) -> bool:
        x1, y1, x2, y2 = line.points
        return any((x1 == x2 and abs(x1 - s) < 1e-9) or (y1 == y2 and abs(y1 - s) < 1e-9)
                   for s in seams)

    return [ln for ln in lines if not on_seam(ln)]


# ------------------------------------------------------------------------------ sequences


def find_sequences(eval_dir: Path, names: list[str] | None) -> list[Path]:
    found = sorted(
        d for d in eval_dir.iterdir()
        if (d / "gt.txt").is_file() and (d / "seqinfo.ini").is_file()
    ) if eval_dir.is_dir() else []
    if not found:
        raise ConfigError(f"--suite: no MOT sequence folders (gt.txt, seqinfo.ini) in {eval_dir}")
    if names is None:
        return found
    by_name = {d.name: d for d in found}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ConfigError(f"--sequences: not in {eval_dir}: {', '.join(missing)} "
                          f"(there: {', '.join(by_name)})")
    return [by_name[n] for n in names]


def source_key(seq_dir: Path, n: int) -> dict[str, Any]:
    """What a cached mosaic was built from: a change to any input file's content rebuilds it
    (a touched file with the same bytes does not)."""
    info = read_seqinfo(seq_dir)
    files = {path.name: content_stamp(path)
             for path in (info.video, seq_dir / "gt.txt", seq_dir / "seqinfo.ini")}
    return {"source": str(seq_dir.resolve()), "tiles": n, "version": MOSAIC_VERSION,
            "files": files}


def variant_dir(seq_dir: Path, n: int, work: Path) -> Path:
    """The sequence itself for n = 1, else its n x n mosaic, built into ``work`` if the cached
    one is missing or was built from other inputs."""
    if n == 1:
        return seq_dir
    target = work / f"{seq_dir.name}-mosaic{n}"
    key = source_key(seq_dir, n)
    stamp = target / "source.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == key:
        return target
    print(f"suite: building the {n}x{n} mosaic of {seq_dir.name} in {target}", file=sys.stderr)
    tmp = work / f".{target.name}.{os.getpid()}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    build_mosaic(seq_dir, tmp, n)
    (tmp / "source.json").write_text(json.dumps(key))
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)  # whole or not at all: an interrupted build is never taken as done
    return target


# ------------------------------------------------------------------------------ measures


def iou(a: F64, b: F64) -> F64:
    """IoU of every box in ``a`` with every box in ``b`` (x1, y1, x2, y2)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


# frame 1, 2, ...: that frame's track ids and boxes (x1, y1, x2, y2)
Tracks = list[tuple[npt.NDArray[np.int64], F64]]


def overlaps(gt: F64, tracks: Tracks) -> Iterator[tuple[int, F64, npt.NDArray[np.int64], F64]]:
    """(frame, its considered gt rows, its track ids, IoU of every gt box with every track box)
    for each frame that has both."""
    for f, (ids, boxes) in enumerate(tracks, start=1):
        rows = gt[gt[:, 0] == f]
        if len(rows) and len(ids):
            yield f, rows, ids, iou(gt_boxes(rows), boxes)


def person_tracks(gt: F64, tracks: Tracks) -> dict[int, dict[int, int]]:
    """True id -> frame -> the track that covered that person there: per frame, one-to-one
    (Hungarian on IoU) between considered gt boxes and the pipeline's tracks, IoU >= MATCH_IOU."""
    out: dict[int, dict[int, int]] = {}
    for f, rows, ids, m in overlaps(gt, tracks):
        r, c = linear_sum_assignment(-m)
        for i, j in zip(r, c, strict=True):
            if m[i, j] >= MATCH_IOU:
                out.setdefault(int(rows[i, 1]), {})[f] = int(ids[j])
    return out


def pairs_of(covered: dict[int, dict[int, int]]) -> Counter[tuple[int, int]]:
    """Frames on which each (true id, track id) pair was matched."""
    return Counter((pid, tid) for pid, frames in covered.items() for tid in frames.values())


def id_pairs(gt: F64, tracks: Tracks) -> Counter[tuple[int, int]]:
    """Frames on which each (true id, track id) pair was matched (``person_tracks``)."""
    return pairs_of(person_tracks(gt, tracks))


def ids_tally(gt: F64, pairs: Counter[tuple[int, int]], min_frames: int = 1) -> dict[str, int]:
    """Of the (true id, track id) ``pairs`` (``id_pairs``): pairs in all, and pairs that lasted
    ``min_frames`` (MIN_ID_S of video): where two people overlap, the per-frame matching
    itself can hand a person to the other's track for a frame or two while both tracks keep
    their people; only a pairing that lasts is an identity."""
    lasting = {p for p, n in pairs.items() if n >= min_frames}
    return {"pairs": len(pairs), "lasting_pairs": len(lasting),
            "persons": len({p for p, _ in lasting}), "true_persons": len(np.unique(gt[:, 1]))}


def idf1_tally(gt: F64, tracks: Tracks) -> dict[str, int]:
    """Counts behind IDF1 (Ristani et al., 2016, as py-motmetrics computes it): every true id is
    paired with at most one track id, one to one over the whole sequence, so as to maximise
    the frames on which a pair's boxes overlap at IoU >= MATCH_IOU (``idtp``). A track that
    follows two people in turn, or a person split over two tracks, is matched for one part
    only: unlike ids per person, it counts merges as well as breaks."""
    together: Counter[tuple[int, int]] = Counter()
    for _, rows, ids, m in overlaps(gt, tracks):
        for i, j in zip(*np.nonzero(m >= MATCH_IOU), strict=True):
            together[(int(rows[i, 1]), int(ids[j]))] += 1
    idtp = 0
    if together:
        people = {p: k for k, p in enumerate(sorted({p for p, _ in together}))}
        tids = {t: k for k, t in enumerate(sorted({t for _, t in together}))}
        m = np.zeros((len(people), len(tids)))
        for (p, t), n in together.items():
            m[people[p], tids[t]] = n
        r, c = linear_sum_assignment(-m)
        idtp = int(m[r, c].sum())
    return {"idtp": idtp, "true_boxes": len(gt),
            "track_boxes": sum(len(ids) for ids, _ in tracks)}


def dwell_tally(true_spans: list[tuple[int, int]], tracked_spans: list[tuple[int, int]],
                fps: float) -> dict[str, float]:
    """Sums and counts of time in view (first to last frame) of those seen >= MIN_DWELL_S."""
    def seconds(spans: list[tuple[int, int]]) -> list[float]:
        s = [(b - a + 1) / fps for a, b in spans]
        return [x for x in s if x >= MIN_DWELL_S]
    t, p = seconds(true_spans), seconds(tracked_spans)
    return {"true_s": sum(t), "true_n": len(t), "tracked_s": sum(p), "tracked_n": len(p)}


def gt_spans(gt: F64) -> list[tuple[int, int]]:
    return [(int(gt[gt[:, 1] == i, 0].min()), int(gt[gt[:, 1] == i, 0].max()))
            for i in np.unique(gt[:, 1])]


def occupancy_tally(gt: F64, tracked: F64, length: int) -> dict[str, float]:
    """Per frame: people tracked in view against considered gt boxes."""
    true = np.bincount(gt[:, 0].astype(int), minlength=length + 1)[1 : length + 1]
    return {"abs_error": float(np.abs(tracked - true).sum()), "true": float(true.sum()),
            "frames": length}


def line_tallies(
    events: list[tuple[int, CrossingEvent]], lines: list[LineSpec], gt: F64, info: SeqInfo,
    covered: dict[int, dict[int, int]] | None = None,
) -> dict[str, Any]:
    """Per line: tallies against the strict and the banded truth, and whether the predicted
    events are the banded truth's exactly (same frames, track ids and directions); given which
    track ``covered`` which true person when, also what each banded error is
    (``edge.evaluation.error_kinds``)."""
    size = (info.width, info.height)
    by_track = None if covered is None else track_people(covered)
    out = []
    for line in lines:
        pred = [(f, e) for f, e in events if e.line == line.name]
        strict = true_crossings(gt, line.points, size)
        banded = true_crossings(gt, line.points, size, band=BAND)
        fd: list[tuple[int, str]] = [(f, e.direction) for f, e in pred]
        exact = sorted((f, e.track_id, e.direction) for f, e in pred) == sorted(
            (c.frame, c.track_id, c.direction) for c in banded)
        out.append({"line": line.name, "strict": tally(fd, strict, info.fps),
                    "banded": tally(fd, banded, info.fps), "exact": exact})
        if covered is not None:
            out[-1]["kinds"] = line_error_kinds(pred, banded, covered, info.fps, by_track)
    return {"per_line": out}


def pooled(tallies: list[dict[str, int]]) -> dict[str, int]:
    return {k: sum(t[k] for t in tallies) for k in tallies[0]}


# ------------------------------------------------------------------------------ runs


def run_pipeline(name: str, seq: Path, variant: int, config: AnalyticsConfig,
                 lines: list[LineSpec], args: argparse.Namespace,
                 detectors: Detectors, cache: DetectionCache | None = None) -> dict[str, Any]:
    """One pass of the pipeline over the variant ``seq`` of sequence ``name``, counting on
    every line at once; with ``cache``, detector output is replayed from it where it can be."""
    info, gt = read_seqinfo(seq), read_gt(seq)
    cfg = config.model_copy(update={"lines": lines})
    cached = None if cache is None else cache.wrap_pair(detectors, info.video, seq.name)
    res = analyze.run_video(str(info.video), cfg, args, keep_tracks=True,
                            detectors=detectors if cached is None else cached)
    extra: dict[str, Any] = {}
    if cached is not None:
        used = [d for d in cached if d is not None]
        for d in used:
            d.save()
        extra["detections_cache"] = {"replayed": sum(d.replayed for d in used),
                                     "detected": sum(d.detected for d in used)}
        print(f"suite: detections cache: {extra['detections_cache']['replayed']} replayed, "
              f"{extra['detections_cache']['detected']} detected", file=sys.stderr)
    covered = person_tracks(gt, res.tracks)  # the matching behind both ids and error kinds
    tracked = np.zeros(info.length, float)
    for frame, n in res.track_counts:
        if 1 <= frame <= info.length:
            tracked[frame - 1] = n
    return {
        "sequence": name, "variant": variant, "mode": "pipeline", "frames": res.frames,
        "seconds": round(res.seconds, 2), "detector_zoom_frames": res.zoom_frames,
        **line_tallies(res.events, lines, gt, info, covered),
        "ids": {**ids_tally(gt, pairs_of(covered), max(1, round(MIN_ID_S * info.fps))),
                **idf1_tally(gt, res.tracks)},
        "costs": res.costs,
        "dwell": dwell_tally(gt_spans(gt), list(res.spans.values()), info.fps),
        "occupancy": occupancy_tally(gt, tracked, info.length),
        **extra,
    }


def run_truth_boxes(name: str, seq: Path, variant: int, config: AnalyticsConfig,
                    lines: list[LineSpec], args: argparse.Namespace,
                    min_visibility: float) -> dict[str, Any]:
    """The pipeline with the true boxes, without ids, as its detections
    (``edge.evaluation.truth_boxes``)."""
    info = read_seqinfo(seq)
    truth = TruthDetector(truth_detections(read_gt(seq, visibility=True), min_visibility),
                          frame_digests(info.video))
    row = run_pipeline(name, seq, variant, config, lines, args, (truth, None))
    row["mode"] = truth_mode(min_visibility)
    return row


def truth_mode(min_visibility: float) -> str:
    return "truth boxes" + (f", vis >= {min_visibility:g}" if min_visibility > 0 else "")


def check_modes(args: argparse.Namespace, truth: float | None) -> None:
    if truth is None:
        return
    if not 0 <= truth <= 1:
        raise ConfigError(f"--truth-boxes: a visibility from 0 to 1, got {truth}")
    clash = [flag for flag, on in (("--gt-tracks", args.gt_tracks),
                                   ("--detections-cache", args.detections_cache),
                                   ("--prescale", getattr(args, "prescale", False))) if on]
    if clash:
        raise ConfigError(f"--truth-boxes replaces the detector: drop {', '.join(clash)}")


def run_gt_tracks(name: str, seq: Path, variant: int, config: AnalyticsConfig,
                  lines: list[LineSpec]) -> list[dict[str, Any]]:
    """Two rows: the counter set to the banded truth's definition, and at its defaults."""
    info, gt = read_seqinfo(seq), read_gt(seq)
    cfg = config.model_copy(update={"lines": lines})
    size = (info.width, info.height)

    def as_truth(line: LineSpec) -> Any:
        return truth_counting(line.points, size, BAND, config.counting)

    modes: list[tuple[str, Callable[[LineSpec], Any] | None]] = [
        ("gt, truth's counting", as_truth), ("gt, default counting", None)]
    rows = []
    for mode, settings_for in modes:
        t0 = time.perf_counter()
        events = count_lines(gt, info, cfg, settings_for)
        rows.append({"sequence": name, "variant": variant, "mode": mode,
                     "frames": info.length, "seconds": round(time.perf_counter() - t0, 2),
                     **line_tallies(events, lines, gt, info)})
    return rows


# ------------------------------------------------------------------------------ figures


def figures(row: dict[str, Any]) -> dict[str, Any]:
    """The table's figures of one row (or of the pooled rows) from its tallies."""
    per_line = row["per_line"]
    out: dict[str, Any] = {}
    for truth in ("strict", "banded"):
        s = scores(pooled([p[truth] for p in per_line]))
        out[truth] = {"true": s["true"]["in"] + s["true"]["out"],
                      "count_accuracy": s["count_accuracy"], "f1": s["f1"],
                      "precision": s["precision"], "recall": s["recall"]}
    out["exact_lines"] = sum(p["exact"] for p in per_line)
    out["lines"] = len(per_line)
    out["per_line"] = [{"line": p["line"], "exact": p["exact"], "strict": scores(p["strict"]),
                        "banded": scores(p["banded"])} for p in per_line]
    if per_line and all("kinds" in p for p in per_line):
        out["error_kinds"] = pooled_kinds([p["kinds"] for p in per_line])
    ids = row.get("ids")
    out["ids_per_person"] = (round(ids["lasting_pairs"] / ids["persons"], 3)
                             if ids and ids["persons"] else None)
    boxes = ids["true_boxes"] + ids["track_boxes"] if ids and "idtp" in ids else 0
    out["idf1"] = round(2 * ids["idtp"] / boxes, 3) if ids and boxes else None
    err = dwell_error(row.get("dwell"))
    out["dwell_error"] = None if err is None else round(err, 3)
    if "dwell_rows" in row:  # pooled: one sequence's long stays must not offset another's short
        errs = [e for d in row["dwell_rows"] if (e := dwell_error(d)) is not None]
        out["dwell_abs_error"] = round(sum(abs(e) for e in errs) / len(errs), 3) if errs else None
    o = row.get("occupancy")
    if o and o["frames"]:
        mae = o["abs_error"] / o["frames"]
        out["occupancy_mae"] = round(mae, 3)
        out["occupancy_rel"] = round(mae / (o["true"] / o["frames"]), 3) if o["true"] else None
    else:
        out["occupancy_mae"] = out["occupancy_rel"] = None
    return out


def dwell_error(d: dict[str, float] | None) -> float | None:
    """(tracked - true) / true mean time in view, of a dwell tally (not rounded)."""
    if not d or not d["true_n"] or not d["tracked_n"]:
        return None
    true_mean, tracked_mean = d["true_s"] / d["true_n"], d["tracked_s"] / d["tracked_n"]
    return (tracked_mean - true_mean) / true_mean


def pool_rows(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """All rows as one: per-line tallies side by side, id pairs and occupancy errors summed.
    Dwell is not summed (rows' errors of opposite sign would cancel): the pooled row keeps
    each row's tally and reports the mean of their absolute errors."""
    pooled_row: dict[str, Any] = {
        "sequence": name, "variant": "-", "mode": rows[0]["mode"],
        "frames": sum(r["frames"] for r in rows), "seconds": sum(r["seconds"] for r in rows),
        "per_line": [p for r in rows for p in r["per_line"]],
        "dwell_rows": [r.get("dwell") for r in rows],
    }
    for key in ("ids", "occupancy"):
        parts = [r.get(key) for r in rows]
        pooled_row[key] = pooled(parts) if parts and all(parts) else None  # type: ignore[arg-type]
    return pooled_row


def orientation_rows(rows: list[dict[str, Any]], lines: list[LineSpec]) -> list[dict[str, Any]]:
    """Per mode, the counting figures of every row pooled over its vertical lines and over its
    horizontal ones. People walking towards or away from the camera cross horizontal lines:
    there the foot point moves along the box's least steady edge. Identity, dwell and occupancy
    are not per line, so these rows carry none."""
    axis = {ln.name: "vertical" if ln.points[0] == ln.points[2] else "horizontal"
            for ln in lines if ln.points[0] == ln.points[2] or ln.points[1] == ln.points[3]}
    out = []
    for mode in dict.fromkeys(r["mode"] for r in rows):
        mine = [r for r in rows if r["mode"] == mode]
        for which in ("vertical", "horizontal"):
            per = [p for r in mine for p in r["per_line"] if axis.get(p["line"]) == which]
            if per:
                out.append({"sequence": "all", "variant": f"{which} lines", "mode": mode,
                            "frames": sum(r["frames"] for r in mine), "seconds": 0.0,
                            "per_line": per})
    return out


COLUMNS: list[tuple[str, Callable[[dict[str, Any], dict[str, Any]], Any]]] = [
    ("sequence", lambda r, f: r["sequence"]),
    ("variant", lambda r, f: variant_name(r["variant"])),
    ("mode", lambda r, f: r["mode"]),
    ("frames", lambda r, f: r["frames"]),
    ("true", lambda r, f: f["strict"]["true"]),
    ("acc", lambda r, f: f"{f['strict']['count_accuracy']:.3f}"),
    ("F1", lambda r, f: f"{f['strict']['f1']:.3f}"),
    ("true b", lambda r, f: f["banded"]["true"]),
    ("acc b", lambda r, f: f"{f['banded']['count_accuracy']:.3f}"),
    ("F1 b", lambda r, f: f"{f['banded']['f1']:.3f}"),
    ("exact b", lambda r, f: f"{f['exact_lines']}/{f['lines']}"),
    ("ids/person", lambda r, f: num(f["ids_per_person"])),
    ("IDF1", lambda r, f: num(f["idf1"])),
    ("dwell err", lambda r, f: dwell_cell(f)),
    ("occ MAE", lambda r, f: num(f["occupancy_mae"])),
    ("occ rel", lambda r, f: num(f["occupancy_rel"])),
    ("s", lambda r, f: f"{r['seconds']:.1f}"),
]


def num(v: float | None) -> str | None:
    return None if v is None else f"{v:.3f}"


def dwell_cell(f: dict[str, Any]) -> str | None:
    """A row's signed error; the pooled row's mean absolute error, as |0.140|."""
    if "dwell_abs_error" in f:
        return None if f["dwell_abs_error"] is None else f"|{f['dwell_abs_error']:.3f}|"
    return None if f["dwell_error"] is None else f"{f['dwell_error']:+.3f}"


def variant_name(n: int | str) -> str:
    return str(n) if isinstance(n, str) else "original" if n == 1 else f"{n}x{n}"


def table(rows: list[dict[str, Any]]) -> str:
    cells = [[name for name, _ in COLUMNS]]
    for r in rows:
        f = figures(r)
        cells.append(["-" if (v := get(r, f)) is None else str(v) for _, get in COLUMNS])
    return aligned(cells, 3)


def aligned(cells: list[list[str]], left: int) -> str:
    """Rows of cells as text columns: the first ``left`` to the left, the figures right."""
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in
                  enumerate(zip(line, widths, strict=True))).rstrip()
        for line in cells
    )


def kinds_table(rows: list[dict[str, Any]]) -> str | None:
    """The banded errors of each row by kind (``edge.evaluation.error_kinds``); None when the
    rows carry none (the ground-truth-track mode has no tracks of its own to blame)."""
    kinded = [(r, k) for r in rows if (k := figures(r).get("error_kinds"))]
    if not kinded:
        return None
    head = ["sequence", "variant"] + [f"missed: {k}" for k in MISSED] + [
        f"extra: {k}" for k in EXTRA]
    cells = [head] + [[r["sequence"], variant_name(r["variant"])]
                      + [str(k["missed"][m]) for m in MISSED] + [str(k["extra"][x]) for x in EXTRA]
                      for r, k in kinded]
    return aligned(cells, 2)


# ------------------------------------------------------------------------------ command


def parse_subset(text: str | None, what: str) -> list[str] | None:
    if text is None:
        return None
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise ConfigError(f"--{what}: empty list")
    return items


def run_suite(args: argparse.Namespace, lines: list[LineSpec] | None = None) -> dict[str, Any]:
    """Every row of the suite and the pooled ones; ``lines`` replaces the sweep (tests)."""
    eval_dir = Path(args.suite) if args.suite else default_eval_dir()
    work = Path(args.work) if args.work else default_work_dir()
    names = parse_subset(args.sequences, "sequences")
    variants = [int(v) for v in parse_subset(args.variants, "variants") or VARIANTS]
    if any(v not in (1, 2, 3, 4) for v in variants):
        raise ConfigError(f"--variants: 1 (the sequence), 2, 3 or 4 (mosaics), got {variants}")
    config = analyze.build_config(args)
    lines = lines or sweep_lines()
    truth = getattr(args, "truth_boxes", None)
    check_modes(args, truth)
    t0 = time.perf_counter()
    detectors = None if args.gt_tracks or truth is not None else load_detectors(
        args.model, models_dir=args.models_dir, threads=args.threads)  # once, for every row
    cache = DetectionCache(args.detections_cache) if args.detections_cache else None
    rows: list[dict[str, Any]] = []
    for seq in find_sequences(eval_dir, names):
        for n in variants:
            d = variant_dir(seq, n, work)
            print(f"suite: {seq.name} {n}x{n}", file=sys.stderr)
            own = off_seams(lines, n)
            if args.gt_tracks:
                rows.extend(run_gt_tracks(seq.name, d, n, config, own))
            elif truth is not None:
                rows.append(run_truth_boxes(seq.name, d, n, config, own, args, truth))
            else:
                assert detectors is not None
                rows.append(run_pipeline(seq.name, d, n, config, own, args, detectors, cache))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    alls = [pool_rows([r for r in rows if r["mode"] == m], "all") for m in modes]
    return {"eval_dir": str(eval_dir), "lines": [ln.name for ln in lines],
            "band": BAND, "model": args.model, "detect_every": args.detect_every or "auto",
            "gt_tracks": args.gt_tracks, "truth_boxes": truth, "rows": rows, "all": alls,
            "by_orientation": orientation_rows(rows, lines),
            "detections_cache": None if cache is None else str(cache.root),
            "wall_seconds": round(time.perf_counter() - t0, 1)}


def run(args: argparse.Namespace) -> int:
    if args.seq_dir is not None or args.line:
        raise ConfigError("--suite runs its own sequences and lines: give no SEQ_DIR or --line "
                          "(EVAL_DIR goes after --suite)")
    result = run_suite(args)
    print(table(result["rows"] + result["all"] + result["by_orientation"]))
    kinds = kinds_table(result["rows"] + result["all"] + result["by_orientation"])
    if kinds:
        print(f"\nbanded errors by kind (docs/accuracy.md, \"What each error is\"):\n{kinds}")
    print(f"wall time {result['wall_seconds']:.1f} s")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        for r in result["rows"] + result["all"] + result["by_orientation"]:
            r["figures"] = figures(r)
        out.write_text(json.dumps(result, indent=1))
    return 0
