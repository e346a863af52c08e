"""Queues: length, waits of served visits and abandonment, from small synthetic walks."""

from __future__ import annotations

import numpy as np
import pytest

from edge.analytics.queues import QueueTracker, nearest_edge
from edge.analytics.windows import WindowAccumulator
from edge.pipeline import Analytics
from storesense.schema import AnalyticsConfig, ZoneSettings, ZoneSpec

# A queue lane from y = 0.2 to 0.8 at x 0.4..0.6; the till is below it: edge 2 (vertex 2 to 3,
# the bottom edge) is where the served leave.
LANE = [(0.4, 0.2), (0.6, 0.2), (0.6, 0.8), (0.4, 0.8)]
QUEUE = ZoneSpec(name="till-queue", polygon=LANE, kind="queue", exit_edge=2)
SETTINGS = ZoneSettings(inertia_frames=2, exit_grace_s=1.0)


def visit(enter_t: float, wait_s: float, leave_to: tuple[float, float],
          start: tuple[float, float] = (0.5, 0.1)) -> list[tuple[float, float, float]]:
    """Walk into the lane from ``start``, stand in it ``wait_s`` s, then step out to
    ``leave_to`` and stay there 3 s; 10 samples a second."""
    path = [(enter_t - 0.2, *start)]
    n = int(wait_s * 10)
    for i in range(n + 1):
        path.append((enter_t + i / 10, 0.5, 0.25 + 0.5 * i / max(n, 1)))
    for i in range(1, 31):
        path.append((enter_t + wait_s + i / 10, *leave_to))
    return [(round(t, 3), x, y) for t, x, y in path]


def run(walks: list[list[tuple[float, float, float]]], *, end_tracks_at: float | None = None):
    q = QueueTracker(QUEUE, SETTINGS)
    frames: dict[float, list[tuple[int, float, float]]] = {}
    for tid, path in enumerate(walks, start=1):
        for t, x, y in path:
            frames.setdefault(t, []).append((tid, x, y))
    visits, lengths = [], []
    for t in sorted(frames):
        rows = frames[t]
        if end_tracks_at is not None and t >= end_tracks_at:
            break
        visits += q.update(np.array([r[0] for r in rows]),
                           np.array([[r[1], r[2]] for r in rows]), t)
        lengths.append(q.length())
    visits += q.end(range(1, len(walks) + 1))
    return visits, lengths


@pytest.mark.parametrize(("case", "walk", "outcome"), [
    ("waits 30 s and reaches the till", visit(0, 30, (0.5, 0.9)), "served"),
    ("waits 30 s and walks off to the side", visit(0, 30, (0.8, 0.5)), "abandoned"),
    ("waits 30 s and goes back where they came from", visit(0, 30, (0.5, 0.1)), "abandoned"),
    ("crosses the lane in 3 s", visit(0, 3, (0.8, 0.5)), "passed"),
])
def test_outcome_of_a_visit(case: str, walk: list[tuple[float, float, float]],
                            outcome: str) -> None:
    visits, _ = run([walk])
    assert [v.outcome for v in visits] == [outcome], case
    assert visits[0].wait_s == pytest.approx(walk[-31][0] - walk[1][0], abs=0.11)


def test_a_track_that_ends_inside_the_queue_is_lost_not_abandoned() -> None:
    visits, _ = run([visit(0, 30, (0.5, 0.9))], end_tracks_at=20)
    assert [v.outcome for v in visits] == ["lost"]


def test_length_counts_the_people_waiting() -> None:
    visits, lengths = run([visit(0, 30, (0.5, 0.9)), visit(5, 30, (0.5, 0.9)),
                           visit(10, 5, (0.9, 0.5))])
    assert max(lengths) == 3
    assert sorted(v.outcome for v in visits) == ["passed", "served", "served"]


def test_nearest_edge() -> None:
    assert [nearest_edge(LANE, p) for p in [(0.5, 0.1), (0.7, 0.5), (0.5, 0.9), (0.3, 0.5)]] \
        == [0, 1, 2, 3]


def test_queue_window_carries_a_mergeable_histogram() -> None:
    a = Analytics(AnalyticsConfig(zones=[QUEUE], zone=SETTINGS))
    w = WindowAccumulator("s", "c", 3600)
    walks = [visit(0, 25, (0.5, 0.9)), visit(5, 45, (0.5, 0.9)), visit(10, 20, (0.9, 0.5))]
    frames: dict[float, list[tuple[int, float, float]]] = {}
    for tid, path in enumerate(walks, start=1):
        for t, x, y in path:
            frames.setdefault(t, []).append((tid, x, y))
    for t in sorted(frames):
        rows = frames[t]
        out = a.update(np.array([r[0] for r in rows]), np.array([[r[1], r[2]] for r in rows]), t)
        w.add_frame(t, len(rows), a.zone_occupancy(), a.queue_lengths())
        w.add_queue_visits(t, out.queue_visits)
    [agg] = w.close()
    [q] = agg.queues
    assert (q.served, q.abandoned, q.lost) == (2, 1, 0)
    assert q.length.max == 3
    assert sum(q.wait_histogram) == 2
    # DWELL_BIN_EDGES_S: 25 s falls in 20-30 (bin 4), 45 s in 30-60 (bin 5)
    assert q.wait_histogram[4] == 1 and q.wait_histogram[5] == 1


def test_exit_edge_must_exist_and_belongs_to_queues() -> None:
    with pytest.raises(ValueError, match="exit_edge must be < 4"):
        ZoneSpec(name="q", polygon=LANE, kind="queue", exit_edge=4)
    with pytest.raises(ValueError, match="for kind 'queue' only"):
        ZoneSpec(name="q", polygon=LANE, kind="display", exit_edge=1)
