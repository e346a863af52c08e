from __future__ import annotations

import json

import pytest

from edge.mot import people_per_frame, read_gt, read_seqinfo, true_crossings


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
