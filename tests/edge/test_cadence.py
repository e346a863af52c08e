"""The detector cadence from frame timestamps (plain floats) and in the pipeline's loop."""

from __future__ import annotations

import pytest

from edge.analytics.cadence import MIN_INTERVALS, FrameRate, detect_every_for


@pytest.mark.parametrize(
    ("fps", "k"), [(7.0, 1), (12.5, 1), (15.0, 2), (25.0, 2), (30.0, 3), (60.0, 6), (1000.0, 30)]
)
def test_about_ten_detections_a_second(fps, k):
    assert detect_every_for(fps) == k


def feed(rate: FrameRate, times: list[float]) -> FrameRate:
    for t in times:
        rate.observe(t)
    return rate


def test_every_frame_until_the_rate_is_known():
    rate = feed(FrameRate(), [i / 30 for i in range(MIN_INTERVALS)])  # MIN_INTERVALS - 1 gaps
    assert rate.fps() is None and rate.detect_every() == 1
    rate.observe(MIN_INTERVALS / 30)
    assert rate.fps() == pytest.approx(30.0) and rate.detect_every() == 3


def test_a_stall_or_dropped_frames_move_the_median_little():
    times = [i / 30 for i in range(40)]
    times += [times[-1] + 2.0]  # the stream stalled for two seconds
    times += [times[-1] + (i + 1) / 30 for i in range(5)]
    times += [times[-1] + 2 / 30]  # a dropped frame
    assert feed(FrameRate(), times).detect_every() == 3


def test_a_node_that_falls_behind_follows_the_frames_it_gets():
    rate = feed(FrameRate(window=20), [i / 30 for i in range(30)])
    assert rate.detect_every() == 3
    t = 29 / 30
    for _ in range(20):  # processing now keeps up with only 12 frames a second
        t += 1 / 12
        rate.observe(t)
    assert rate.detect_every() == 1


def test_repeated_or_backward_times_are_not_intervals():
    rate = feed(FrameRate(), [0.0, 0.0, -1.0] + [i / 10 for i in range(1, 12)])
    assert rate.fps() == pytest.approx(10.0)
