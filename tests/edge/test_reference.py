"""The reference pipeline's own parts that need neither trackers nor supervision: the probe
that measures LineZone's direction against our rule, the translation of LineZone's per-frame
result into the suite's events, and the message when the optional packages are missing."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from edge.analytics.counting import signed_distance
from edge.evaluation import reference
from edge.evaluation.mot import true_crossings

SIZE = (200, 100)
LINES_PX = [
    (100.0, 0.0, 100.0, 100.0),  # vertical, drawn downwards (the suite's x lines)
    (100.0, 100.0, 100.0, 0.0),  # the same, drawn upwards
    (0.0, 50.0, 200.0, 50.0),  # horizontal, drawn rightwards (the suite's y lines)
    (0.0, 0.0, 200.0, 100.0),  # diagonal
]


@pytest.mark.parametrize("line_px", LINES_PX)
def test_probe_starts_on_the_left_and_ends_on_the_right(line_px):
    left, right = reference.probe_feet(line_px, 20.0)
    d = signed_distance(line_px, np.array([left, right]))
    np.testing.assert_allclose(d, [-20.0, 20.0], atol=1e-9)


@pytest.mark.parametrize("line_px", LINES_PX)
def test_a_walk_along_the_probe_is_in_by_the_truths_rule(line_px):
    """The probe's walk is what the ground truth (edge.evaluation.mot) calls "in"."""
    left, right = reference.probe_feet(line_px, 20.0)
    size = 10.0
    rows = [[f, 7, *_ltwh(reference.probe_box(foot, size))]
            for f, foot in enumerate((left, left, right, right), start=1)]
    normalised = (line_px[0] / SIZE[0], line_px[1] / SIZE[1],
                  line_px[2] / SIZE[0], line_px[3] / SIZE[1])
    crossings = true_crossings(np.array(rows, float), normalised, SIZE)
    assert [(c.frame, c.direction) for c in crossings] == [(3, "in")]


def _ltwh(box: list[float]) -> list[float]:
    x1, y1, x2, y2 = box
    return [x1, y1, x2 - x1, y2 - y1]


def test_zone_events_carry_our_direction_and_the_track_id():
    ids = np.array([4, 9, -1, 12])
    crossed_in = np.array([True, False, False, False])
    crossed_out = np.array([False, False, False, True])
    events = reference.zone_events(31, 1.0, "x0.5", ids, crossed_in, crossed_out,
                                   {"in": "out", "out": "in"})
    assert [(f, e.line, e.track_id, e.direction) for f, e in events] == [
        (31, "x0.5", 4, "out"), (31, "x0.5", 12, "in")]


@pytest.mark.skipif(importlib.util.find_spec("supervision") is not None
                    and importlib.util.find_spec("trackers") is not None,
                    reason="the optional packages are installed here")
def test_missing_packages_name_the_install_command(capsys):
    assert reference.main(["--variants", "1"]) == 2
    err = capsys.readouterr().err
    assert "pip install -e . trackers supervision" in err
    assert "python -m edge.evaluation.reference" in err
