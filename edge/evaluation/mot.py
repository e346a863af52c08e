"""MOT-format ground truth: reading gt.txt/seqinfo.ini and the true line crossings.

True crossings follow data/eval/README.md exactly: rows with conf == 1 and class == 1, foot
point = bottom centre, a change of side between consecutive observations of an id. Sides:
for a vertical line x = c, A if x < c else B; horizontal y = c, A if y < c else B; any other
line by the sign of the cross product (see edge.analytics.counting),
on-line counting as B. Direction
then follows the LineSpec rule (left side -> right side seen along the line is "in").

``band > 0`` gives the README's rule 8, the *banded* truth: a foot point has a side only
beyond ``band * min(width, height)`` pixels from the line, keeps the side it had inside that
band, and an event is a change between established sides (a track that starts inside the band
has no side until it leaves it). A person swaying on the line then makes no events.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.analytics.counting import Direction, signed_distance


@dataclass(frozen=True)
class SeqInfo:
    name: str
    fps: float
    length: int
    width: int
    height: int
    video: Path


@dataclass(frozen=True)
class TrueCrossing:
    frame: int  # first frame on the new side
    track_id: int
    direction: Direction


def read_seqinfo(seq_dir: str | Path) -> SeqInfo:
    d = Path(seq_dir)
    cp = configparser.ConfigParser()
    cp.read(d / "seqinfo.ini")
    s = cp["Sequence"]
    return SeqInfo(
        s.get("name", d.name),
        float(s["frameRate"]),
        int(s["seqLength"]),
        int(s["imWidth"]),
        int(s["imHeight"]),
        d / s.get("video", "video.mp4"),
    )


def read_gt(seq_dir: str | Path, *, visibility: bool = False) -> npt.NDArray[np.float64]:
    """Considered rows (conf == 1, class == 1) as (frame, id, left, top, width, height), and
    with ``visibility`` a seventh column, the row's visibility (-1 where not annotated)."""
    raw = np.loadtxt(Path(seq_dir) / "gt.txt", delimiter=",", ndmin=2)
    keep = (raw[:, 6] == 1) & (raw[:, 7] == 1)
    if not visibility:
        return raw[keep, :6]
    vis = raw[keep, 8] if raw.shape[1] > 8 else np.full(int(keep.sum()), -1.0)
    return np.column_stack([raw[keep, :6], vis])


def gt_boxes(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(x1, y1, x2, y2) of gt rows (frame, id, left, top, width, height, ...)."""
    return np.stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5]], 1)


def truth_sides(
    line: tuple[float, float, float, float], feet_px: npt.NDArray[np.float64], size: tuple[int, int]
) -> npt.NDArray[np.int64]:
    """-1 for the line's left side, +1 for its right side (the README's A/B, made oriented)."""
    w, h = size
    x1, y1, x2, y2 = line[0] * w, line[1] * h, line[2] * w, line[3] * h
    cross = signed_distance((x1, y1, x2, y2), feet_px)
    if x1 == x2 or y1 == y2:
        # README: A is x < c (or y < c), B otherwise; B is whichever oriented side has x >= c.
        coord = feet_px[:, 0] - x1 if x1 == x2 else feet_px[:, 1] - y1
        # B is the oriented side that holds x >= c (vertical) or y >= c (horizontal).
        b_sign = (-1 if y2 > y1 else 1) if x1 == x2 else (1 if x2 > x1 else -1)
        return np.where(coord < 0, -b_sign, b_sign).astype(np.int64)
    return np.where(cross < 0, -1, 1).astype(np.int64)


def true_crossings(
    gt: npt.NDArray[np.float64],
    line: tuple[float, float, float, float],
    size: tuple[int, int],
    band: float = 0.0,
) -> list[TrueCrossing]:
    """Crossings of ``line`` by the gt rows: strict (rule 4) when ``band`` is 0, else banded
    (rule 8) with a dead band of ``band * min(width, height)`` pixels either side.

    A banded event's frame is the one where the foot point last passed the line itself before
    the new side was established (not where it left the band), so a clean crossing has the
    same frame in both truths and only swaying on the line tells them apart.
    """
    feet = np.stack([gt[:, 2] + gt[:, 4] / 2, gt[:, 3] + gt[:, 5]], axis=1)
    line_sides = truth_sides(line, feet, size)
    sides = banded_sides(line, feet, size, band) if band > 0 else line_sides
    out: list[TrueCrossing] = []
    for tid in np.unique(gt[:, 1]):
        rows = np.flatnonzero(gt[:, 1] == tid)
        rows = rows[np.argsort(gt[rows, 0], kind="stable")]
        out.extend(_side_changes(gt[rows, 0], sides[rows], line_sides[rows], int(tid)))
    return sorted(out, key=lambda c: (c.frame, c.track_id))


def banded_sides(
    line: tuple[float, float, float, float],
    feet_px: npt.NDArray[np.float64],
    size: tuple[int, int],
    band: float,
) -> npt.NDArray[np.int64]:
    """-1 left of the line, +1 right, 0 within ``band * min(width, height)`` pixels of it."""
    w, h = size
    px_line = (line[0] * w, line[1] * h, line[2] * w, line[3] * h)
    d = signed_distance(px_line, feet_px)
    limit = band * min(w, h)
    return np.where(d < -limit, -1, np.where(d > limit, 1, 0)).astype(np.int64)


def _side_changes(
    frames: npt.NDArray[np.float64],
    sides: npt.NDArray[np.int64],
    line_sides: npt.NDArray[np.int64],
    tid: int,
) -> list[TrueCrossing]:
    """Events of one id's time-ordered observations. ``sides``: the side each establishes, 0
    for none (inside the band: the side before it holds; leading 0s: no side yet); an event is
    a change between established sides, dated by the last change of ``line_sides`` (the side
    of the line itself) before it. Strict: ``sides`` is ``line_sides``."""
    out: list[TrueCrossing] = []
    side = line_side = passed = 0
    for frame, s, ls in zip(frames.tolist(), sides.tolist(), line_sides.tolist(), strict=True):
        if ls != line_side:
            line_side, passed = ls, int(frame)
        if s == 0 or s == side:
            continue
        if side != 0:
            direction: Direction = "in" if side < 0 else "out"
            out.append(TrueCrossing(passed, tid, direction))
        side = s
    return out


def people_per_frame(gt: npt.NDArray[np.float64], length: int) -> npt.NDArray[np.int64]:
    counts = np.bincount(gt[:, 0].astype(int), minlength=length + 1)[1 : length + 1]
    return counts.astype(np.int64)
