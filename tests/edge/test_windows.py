from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from edge.analytics.counting import CrossingEvent
from edge.analytics.windows import WindowAccumulator, dwell_histogram, window_start
from edge.analytics.zones import Visit
from storesense.schema import DWELL_BIN_EDGES_S, Trajectory, message_id


def test_windows_are_aligned_to_multiples():
    assert window_start(125.0, 60) == 120.0
    assert window_start(119.999, 60) == 60.0


def test_dwell_histogram_bins():
    h = dwell_histogram([0.5, 2.0, 4.9, 3000.0])
    assert len(h) == len(DWELL_BIN_EDGES_S)
    assert h[0] == 1 and h[1] == 2 and h[-1] == 1


def test_a_window_aggregate_from_plain_inputs():
    w = WindowAccumulator("store-1", "cam-1", 60, stop_threshold_s=5.0)
    t0 = 1_700_000_040.0  # a multiple of 60
    for i in range(10):
        t = t0 + i
        assert w.roll(t) == []
        w.add_frame(t, occupancy=i % 3, zone_occupancy={"display": 1})
        w.add_crossings(t, [CrossingEvent("door", 1, "in", t)] if i == 2 else [], ["door"])
    w.add_visits(t0 + 5, [Visit("display", 1, t0, None)], [Visit("display", 1, t0, t0 + 8.0)])
    w.add_visits(t0 + 6, [], [Visit("display", 2, t0, t0 + 1.0)])
    w.add_transitions(t0 + 6, [("entrance", "display")])
    w.add_paths(t0 + 6, [Trajectory(points=[(0.1, 0.1), (0.2, 0.2)], duration_s=3.0)])
    w.add_demographics(t0 + 6, [("25-34", "female"), ("unknown", "unknown")])
    [agg] = w.roll(t0 + 61)
    start = datetime.fromtimestamp(t0, UTC)
    assert agg.window_start == start and (agg.window_end - start).total_seconds() == 60
    assert agg.message_id == message_id("store-1", "cam-1", start)
    assert agg.frames == 10
    assert agg.occupancy.max == 2 and agg.occupancy.avg == pytest.approx(
        np.mean([i % 3 for i in range(10)])
    )
    assert [(x.line, x.in_count, x.out_count) for x in agg.lines] == [("door", 1, 0)]
    [z] = agg.zones
    assert (z.entries, z.visits, z.stops) == (1, 2, 1)
    assert z.dwell_total_s == pytest.approx(9.0) and z.dwell_p50_s == pytest.approx(4.5)
    assert sum(z.dwell_histogram) == 2
    assert agg.transitions[0].from_zone == "entrance"
    assert agg.demographics.age_bands == {"25-34": 1, "unknown": 1}
    assert len(agg.paths) == 1


def test_no_frames_no_window():
    w = WindowAccumulator("s", "c", 60)
    assert w.close() == []


def test_restart_mid_window_gives_two_distinct_partial_windows():
    """A node stopped and restarted inside one window must not reuse the window's message id:
    the gateway keeps the first copy of an id, so a reused id would lose the second half."""
    t0 = 1_700_000_040.0  # a multiple of 60
    before = WindowAccumulator("s", "c", 60)
    for t in (t0 + 5.2, t0 + 20.0):
        before.add_frame(t, 1, {})
    [first] = before.close(early_at=t0 + 20.4)
    after = WindowAccumulator("s", "c", 60)
    for t in (t0 + 31.7, t0 + 50.0):
        after.add_frame(t, 2, {})
    [second] = after.roll(t0 + 61.0)
    assert first.window_start == datetime.fromtimestamp(t0 + 5, UTC)
    assert first.window_end == datetime.fromtimestamp(t0 + 21, UTC)
    assert second.window_start == datetime.fromtimestamp(t0 + 31, UTC)
    assert second.window_end == datetime.fromtimestamp(t0 + 60, UTC)
    assert first.message_id != second.message_id
    after.add_frame(t0 + 61.0, 0, {})
    [third] = after.roll(t0 + 121.0)
    assert third.window_start == datetime.fromtimestamp(t0 + 60, UTC)  # aligned again
