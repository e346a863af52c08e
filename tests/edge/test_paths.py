from __future__ import annotations

import numpy as np
import pytest

from edge.analytics.paths import MAX_POINTS, PathRecorder, TransitionCounter


def test_trajectory_is_short_anonymous_and_normalised():
    rec = PathRecorder()
    for i in range(300):
        rec.update(np.array([5]), np.array([[i / 300, 0.5 + 0.6 * np.sin(i / 20)]]), i * 0.1)
    assert rec.end([7]) == []  # a track it never saw
    out = rec.end([5])
    assert len(out) == 1
    tr = out[0]
    assert 2 <= len(tr.points) <= MAX_POINTS
    assert all(0 <= x <= 1 and 0 <= y <= 1 for x, y in tr.points)
    assert tr.duration_s == pytest.approx(29.9)
    assert "track_id" not in tr.to_dict()


def test_a_standing_track_has_no_path():
    rec = PathRecorder()
    for i in range(10):
        rec.update(np.array([1]), np.array([[0.5, 0.5]]), i * 0.1)
    assert rec.finish() == []


def test_transitions_between_zones():
    tc = TransitionCounter()
    assert tc.on_visit_start(1, "entrance", 0.0) is None
    tc.on_visit_end(1, "entrance", 2.0)
    assert tc.on_visit_start(1, "display", 5.0) == ("entrance", "display")
    assert tc.on_visit_start(2, "display", 5.0) is None
    tc.expire(10_000.0)
    assert tc.on_visit_start(1, "checkout", 10_001.0) is None  # forgotten after memory_s
