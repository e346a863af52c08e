"""StreamLag on plain times: when a live stream's reader is behind, and when it has caught up."""

from __future__ import annotations

import pytest

from edge.vision.live_lag import MAX_LAG_S, StreamLag

FPS = 25.0


def test_a_reader_that_keeps_up_is_never_late_through_network_jitter():
    lag = StreamLag()
    for i in range(2500):  # 100 s; every frame delayed 0-80 ms on the way
        late = lag.observe(10.0 + i / FPS + (i * 37 % 80) / 1000, i / FPS)
        assert late < 0.1 and not lag.behind


def test_a_slow_reader_is_behind_past_the_limit_and_on_time_once_it_waits_again():
    lag = StreamLag()
    now, lates = 0.0, []
    for i in range(40):  # each frame takes 70 ms to process, the stream sends one every 40 ms
        lates.append(lag.observe(now, i / FPS))
        if lag.behind:  # this frame is not processed
            break
        now += 0.070
    assert lag.behind and lates[-1] > MAX_LAG_S and lates[-2] <= MAX_LAG_S
    i += 1
    while now > i / FPS:  # frames queued in the socket: read at a decode's cost, 5 ms each
        lag.observe(now, i / FPS)
        assert lag.behind
        now, i = now + 0.005, i + 1
    late = lag.observe(i / FPS, i / FPS)  # waited for, though less than one interval
    late = lag.observe((i + 1) / FPS, (i + 1) / FPS)  # waited for, one interval
    assert not lag.behind and late == pytest.approx(0.0, abs=0.01)


def test_a_camera_clock_that_drifts_is_not_lag():
    for ppm in (-200, 200):
        lag = StreamLag()
        for i in range(0, 7200 * 25, 5):  # two hours, every fifth frame
            media = i / FPS
            lag.observe(media * (1 + ppm * 1e-6), media)
            assert not lag.behind, (ppm, media)


def test_a_stream_whose_clock_goes_back_starts_afresh():
    lag = StreamLag()
    for i in range(100):
        lag.observe(1000.0 + i / FPS, 95000.0 + i / FPS)
    # MPEG-TS timestamps wrap after 26.5 hours: media time restarts near 0 on time
    assert lag.observe(1000.0 + 100 / FPS, 0.0) == 0.0 and not lag.behind
    assert lag.observe(1000.0 + 101 / FPS, 1 / FPS) == pytest.approx(0.0)
