"""Heatmaps moved onto the floor plan through a homography: plain lists in and out."""

from __future__ import annotations

import pytest

from gateway.floorplan import to_floor

IDENTITY = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
MIRROR = [[-1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # x -> 1 - x
CELLS = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]  # 4 x 2, row-major


def test_identity_keeps_every_cell():
    floor, outside = to_floor(CELLS, 4, 2, IDENTITY)
    assert floor == pytest.approx(CELLS) and outside == 0.0


def test_a_mirror_reverses_each_row():
    floor, outside = to_floor(CELLS, 4, 2, MIRROR)
    assert floor == pytest.approx([4.0, 3.0, 2.0, 1.0, 8.0, 7.0, 6.0, 5.0]) and outside == 0.0


def test_a_camera_seeing_the_plan_s_left_half_puts_its_seconds_there():
    half = [[0.5, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # x -> x / 2
    floor, outside = to_floor(CELLS, 4, 2, half)
    assert floor[2:4] == floor[6:8] == [0.0, 0.0]
    assert floor[:2] == pytest.approx([1.0 + 2.0, 3.0 + 4.0])
    assert sum(floor) + outside == pytest.approx(sum(CELLS))


def test_seconds_off_the_plan_are_counted_not_lost():
    shifted = [[1.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # x -> x + 0.5
    floor, outside = to_floor(CELLS, 4, 2, shifted)
    assert outside == pytest.approx(3.0 + 4.0 + 7.0 + 8.0)  # the right half ran off
    assert floor == pytest.approx([0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 5.0, 6.0])


def test_a_perspective_homography_conserves_seconds():
    tilt = [[1.0, 0.2, 0.0], [0.0, 0.8, 0.1], [0.0, 0.3, 1.0]]
    floor, outside = to_floor(CELLS, 4, 2, tilt)
    assert min(floor) >= 0.0 and sum(floor) + outside == pytest.approx(sum(CELLS))
    assert floor != pytest.approx(CELLS)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="expected 4x2=8"):
        to_floor([1.0], 4, 2, IDENTITY)
    with pytest.raises(ValueError, match="3x3"):
        to_floor(CELLS, 4, 2, [[1.0, 0.0], [0.0, 1.0]])
