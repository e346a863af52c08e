"""StreamLag on plain times: when a live stream's reader is behind, and when it has caught up."""

from __future__ import annotations

import pytest

from edge.vision.live_lag import MAX_LAG_S, StreamLag

FPS = 25.0
WAIT, QUEUED = 0.02, 0.0002  # seconds the reader waited for a frame's data: on time, queued


def test_a_reader_that_keeps_up_is_never_late_through_network_jitter():
    lag = StreamLag()
    for i in range(2500):  # 100 s; every frame delayed 0-80 ms on the way
        late = lag.observe(10.0 + i / FPS + (i * 37 % 80) / 1000, i / FPS, WAIT)
        assert late == 0.0 and not lag.behind


def test_a_slow_reader_is_behind_past_the_limit_and_on_time_once_it_waits_again():
    lag = StreamLag()
    now, lates = 0.0, []
    for i in range(40):  # each frame takes 70 ms to process, the stream sends one every 40 ms
        lates.append(lag.observe(now, i / FPS, WAIT if i == 0 else QUEUED))
        if lag.behind:  # this frame is not processed
            break
        now += 0.070
    assert lag.behind == 1 and lates[-1] > MAX_LAG_S and lates[-2] <= MAX_LAG_S
    i += 1
    while i / FPS <= now:  # frames already sent wait in the socket: read at a decode's cost
        assert lag.observe(now, i / FPS, QUEUED) > 0 and lag.behind
        now, i = now + 0.005, i + 1
    assert lag.observe(i / FPS, i / FPS, WAIT) == 0.0 and not lag.behind  # waited for


@pytest.mark.parametrize("rate", [1.0002, 0.9998, 1.2, 0.8, 0.0])
def test_a_camera_clock_that_drifts_runs_wrong_or_stands_still_is_not_lag(rate):
    """Media time advancing at ``rate`` times real time (0: timestamps that never move), read
    by a reader that keeps up: it waits for every frame, whatever the stamps say."""
    lag = StreamLag()
    for i in range(0, 2 * 3600 * 25, 25):  # two hours, a frame a second
        assert lag.observe(i / FPS, rate * i / FPS, WAIT) == 0.0 and not lag.behind


def test_a_stream_whose_clock_goes_back_is_not_lag_once_a_frame_is_waited_for():
    lag = StreamLag()
    for i in range(100):
        lag.observe(1000.0 + i / FPS, 95000.0 + i / FPS, WAIT)
    # MPEG-TS timestamps wrap after 26.5 hours: media time restarts near 0, on time
    assert lag.observe(1000.0 + 100 / FPS, 0.0, WAIT) == 0.0 and not lag.behind
    assert lag.observe(1000.0 + 101 / FPS, 1 / FPS, WAIT) == pytest.approx(0.0)


def test_far_behind_keeps_no_frame_and_back_within_the_limit_keeps_the_needed_ones():
    lag = StreamLag()
    lag.observe(0.0, 0.0, WAIT)
    assert lag.observe(0.6, 0.04, QUEUED) > MAX_LAG_S and lag.behind == 1
    assert lag.observe(1.2, 0.08, QUEUED) > 2 * MAX_LAG_S and lag.behind == 2
    assert lag.observe(1.21, 0.92, QUEUED) < MAX_LAG_S and lag.behind == 1  # shedding
    assert lag.observe(1.22, 1.20, QUEUED) > 0 and lag.behind == 1
    assert lag.observe(1.24, 1.24, WAIT) == 0.0 and lag.behind == 0
