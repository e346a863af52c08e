from __future__ import annotations

import json

import numpy as np
import pytest

from edge.evaluation.mot import people_per_frame, read_gt, read_seqinfo, true_crossings


@pytest.mark.parametrize("seq", ["PETS09-S2L1", "MOT17-09"])
def test_truth_reproduces_the_published_figures(eval_dir, seq):
    d = eval_dir / seq
    stats = json.loads((d / "stats.json").read_text())
    info = read_seqinfo(d)
    gt = read_gt(d)
    line = tuple(stats["line_normalised_x1y1x2y2"])
    tc = true_crossings(gt, line, (info.width, info.height))
    # The line points down the image: image-left -> image-right is "out".
    assert sum(c.direction == "out" for c in tc) == stats["crossing_events"]["left_to_right"]
    assert sum(c.direction == "in" for c in tc) == stats["crossing_events"]["right_to_left"]
    assert people_per_frame(gt, info.length).mean() == pytest.approx(
        stats["mean_people_per_frame"], abs=0.01
    )


# Banded truth (eval README rule 8) on a 100 x 50 frame: band 0.1 of min(100, 50) = 5 px.
# One person's foot x per frame (y = 40), against the vertical line x = 50 drawn top to
# bottom (so image-left -> image-right is "out"). Events: (frame, direction).
SIZE, BAND, LINE_X = (100, 50), 0.1, (0.5, 0.0, 0.5, 1.0)


@pytest.mark.parametrize(
    ("case", "xs", "banded", "strict"),
    [
        ("clean crossing: dated where it passed the line", [30, 40, 52, 60], [(3, "out")],
         [(3, "out")]),
        ("swaying on the line: none", [40, 49, 51, 49, 51, 49], [],
         [(3, "out"), (4, "in"), (5, "out"), (6, "in")]),
        ("into the band and back: none", [40, 46, 54, 46, 40], [], [(3, "out"), (4, "in")]),
        ("sways, then leaves on the other side: dated by the last pass",
         [40, 51, 49, 52, 56], [(4, "out")], [(2, "out"), (3, "in"), (4, "out")]),
        ("exactly at the band's edge is inside it", [40, 55, 60], [(2, "out")], [(2, "out")]),
        ("exactly at the band's edge, and back: none", [40, 55, 40], [], [(2, "out"), (3, "in")]),
        ("starts inside the band: no side until it leaves", [49, 51, 58, 40],
         [(4, "in")], [(2, "out"), (4, "in")]),
        ("on the line counts as side B (x >= c), as rule 3 says", [40, 50, 60], [(2, "out")],
         [(2, "out")]),
        ("right to left", [70, 52, 47, 30], [(3, "in")], [(3, "in")]),
    ],
)
def test_banded_truth_on_one_track(case, xs, banded, strict):
    gt = np.array([[f, 7, x - 2, 30, 4, 10] for f, x in enumerate(xs, start=1)], float)
    got = true_crossings(gt, LINE_X, SIZE, band=BAND)
    assert [(c.frame, c.direction) for c in got] == banded, case
    assert {c.track_id for c in got} <= {7}
    assert [(c.frame, c.direction) for c in true_crossings(gt, LINE_X, SIZE)] == strict, case


def test_banded_truth_keeps_a_side_across_skipped_frames_and_per_id():
    # id 1 is left, unseen for 50 frames, then seen right: one event where it reappears.
    # id 2 crosses a horizontal line y = 25 (drawn left to right: top -> bottom is "in")
    # on the same frames; the band is 5 px whichever way the line runs (min(w, h) based).
    gt = np.array([
        [1, 1, 38, 30, 4, 10], [2, 1, 38, 30, 4, 10], [53, 1, 58, 30, 4, 10],
        [1, 2, 10, 5, 4, 10], [2, 2, 10, 11, 4, 10], [3, 2, 10, 21, 4, 10],
    ], float)
    got = true_crossings(gt, LINE_X, SIZE, band=BAND)
    assert [(c.frame, c.track_id, c.direction) for c in got] == [(53, 1, "out")]
    # id 2's foot y: 15, 21 (inside the band, 4 px above the line), 31
    got = true_crossings(gt, (0.0, 0.5, 1.0, 0.5), SIZE, band=BAND)
    assert [(c.frame, c.track_id, c.direction) for c in got] == [(3, 2, "in")]


@pytest.mark.parametrize("seq", ["PETS09-S2L1", "MOT17-09"])
def test_strict_and_banded_truths_agree_on_the_development_line(eval_dir, seq):
    """The README: on the development lines (x = 0.5) the two truths agree; event for event,
    since a banded event is dated where the person passed the line."""
    d = eval_dir / seq
    info, gt = read_seqinfo(d), read_gt(d)
    size = (info.width, info.height)
    strict = true_crossings(gt, (0.5, 0, 0.5, 1), size)
    assert strict == true_crossings(gt, (0.5, 0, 0.5, 1), size, band=0.01)
    assert len(strict) == {"PETS09-S2L1": 32, "MOT17-09": 13}[seq]  # the README's table
    # ... and the band is not idle: somewhere in the sweep the two truths differ.
    sweep = [(c, 0, c, 1) for c in (0.2, 0.3, 0.4, 0.6, 0.7, 0.8)]
    assert any(
        true_crossings(gt, ln, size) != true_crossings(gt, ln, size, band=0.01) for ln in sweep
    )
