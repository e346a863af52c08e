from __future__ import annotations

import numpy as np
import pytest

from edge.analytics.heatmap import HeatmapGrid, render


def test_seconds_accumulate_in_the_foot_cell():
    hm = HeatmapGrid(cols=4, rows=2)
    for i in range(11):
        hm.add(np.array([[0.1, 0.1], [0.9, 0.9]]), i * 0.5)
    g = hm.take()
    assert g[0, 0] == pytest.approx(5.0) and g[1, 3] == pytest.approx(5.0)
    assert g.sum() == pytest.approx(10.0)
    assert hm.take().sum() == 0  # take() starts a fresh window


def test_a_stall_adds_at_most_max_step():
    hm = HeatmapGrid(cols=2, rows=2, max_step_s=1.0)
    hm.add(np.array([[0.1, 0.1]]), 0.0)
    hm.add(np.array([[0.1, 0.1]]), 100.0)
    assert hm.take().sum() == pytest.approx(1.0)


def test_homography_maps_to_the_floor_plan():
    flip = np.array([[-1.0, 0, 1], [0, 1, 0], [0, 0, 1]])  # x -> 1 - x
    hm = HeatmapGrid(cols=2, rows=1, homography=flip)
    hm.add(np.array([[0.1, 0.5]]), 0.0)
    hm.add(np.array([[0.1, 0.5]]), 1.0)
    assert hm.take().tolist() == [[0.0, 1.0]]


def test_points_off_the_grid_are_dropped_and_render_is_separate():
    hm = HeatmapGrid(cols=2, rows=2)
    hm.add(np.array([[1.5, 0.5]]), 0.0)
    hm.add(np.array([[1.5, 0.5]]), 1.0)
    g = hm.take()
    assert g.sum() == 0
    assert render(g + 1, (40, 20)).shape == (20, 40, 3)
