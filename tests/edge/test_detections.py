from __future__ import annotations

import numpy as np
import pytest

from edge.vision.detections import Detections


def test_shapes_are_validated_with_expected_and_actual():
    with pytest.raises(ValueError, match=r"expected shape \(n, 4\), got \(2, 3\)"):
        Detections(np.zeros((2, 3), np.float32), np.zeros(2, np.float32), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match=r"confidence: expected shape \(2,\), got \(3,\)"):
        Detections(np.zeros((2, 4), np.float32), np.zeros(3, np.float32), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match=r"tracker_id: expected shape \(2,\), got \(1,\)"):
        Detections.from_arrays(np.zeros((2, 4)), tracker_id=[1])


def test_mask_returns_a_new_instance():
    d = Detections.from_arrays([[0, 0, 10, 20], [5, 5, 15, 25]], [0.9, 0.2], tracker_id=[7, 8])
    sub = d[d.confidence > 0.5]
    assert len(sub) == 1 and sub.tracker_id is not None and sub.tracker_id.tolist() == [7]
    sub.xyxy[0, 0] = 99
    assert d.xyxy[0, 0] == 0


def test_foot_point_is_bottom_centre():
    d = Detections.from_arrays([[10, 20, 30, 80]])
    assert d.foot_points().tolist() == [[20.0, 80.0]]


def test_empty():
    assert len(Detections.empty()) == 0
