from __future__ import annotations

import numpy as np
import pytest

from edge.analytics.zones import ZoneTracker, inside_polygon
from edge.tracking.track_life import TrackLife
from storesense.schema import ZoneSettings, ZoneSpec

SQUARE = ZoneSpec(name="display", polygon=[(0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6)])


def feed(zone: ZoneTracker, xs: list[float | None], dt: float = 1.0):
    """One track (id 1) at x (y = 0.4) per second; None = not seen."""
    started, ended, occ = [], [], []
    for i, x in enumerate(xs):
        ids = np.array([1] if x is not None else [], np.int64)
        feet = np.array([[x, 0.4]] if x is not None else [], float).reshape(-1, 2)
        s, e = zone.update(ids, feet, i * dt)
        started += s
        ended += e
        occ.append(zone.occupancy())
    return started, ended, occ


def test_inside_polygon():
    assert inside_polygon(SQUARE.polygon, np.array([[0.4, 0.4], [0.9, 0.4]])).tolist() == [
        True,
        False,
    ]


def test_visit_dwell_and_occupancy():
    z = ZoneTracker(SQUARE, ZoneSettings(inertia_frames=2, exit_grace_s=1.5, stop_threshold_s=3))
    started, ended, occ = feed(z, [0.1, 0.3, 0.3, 0.3, 0.3, 0.8, 0.8, 0.8, 0.8])
    assert [v.start for v in started] == [1.0]
    assert len(ended) == 1 and ended[0].dwell_s == pytest.approx(3.0)  # inside from t=1 to t=4
    assert occ == [0, 0, 1, 1, 1, 1, 0, 0, 0]


def test_inertia_ignores_a_flicker():
    z = ZoneTracker(SQUARE, ZoneSettings(inertia_frames=3))
    started, ended, _ = feed(z, [0.1, 0.3, 0.1, 0.3, 0.1, 0.1, 0.1, 0.1])
    assert started == [] and ended == []


def test_exit_grace_bridges_a_short_step_outside():
    z = ZoneTracker(SQUARE, ZoneSettings(inertia_frames=1, exit_grace_s=2.5))
    started, ended, _ = feed(z, [0.3, 0.3, 0.8, 0.8, 0.3, 0.3, 0.8, 0.8, 0.8, 0.8])
    assert len(started) == 1 and len(ended) == 1
    assert ended[0].dwell_s == pytest.approx(5.0)


def test_a_hidden_person_keeps_the_visit_until_the_track_ends():
    z = ZoneTracker(SQUARE, ZoneSettings(inertia_frames=1, exit_grace_s=1.0))
    started, ended, occ = feed(z, [0.3, 0.3, None, None, None, None, 0.3, None, None])
    assert len(started) == 1 and ended == [] and occ[-1] == 1
    assert z.end([2]) == []  # another track's end closes nothing
    (visit,) = z.end([1])
    assert visit.dwell_s == pytest.approx(6.0) and z.occupancy() == 0


def test_finish_closes_open_visits_and_forgets_tracks():
    z = ZoneTracker(SQUARE, ZoneSettings(inertia_frames=1))
    feed(z, [0.3, 0.3, 0.3])
    assert [v.dwell_s for v in z.finish()] == [pytest.approx(2.0)]
    assert z.occupancy() == 0


def test_people_who_vanish_inside_are_forgotten_when_their_tracks_end():
    z = ZoneTracker(SQUARE, ZoneSettings(inertia_frames=5, exit_grace_s=1.0))
    life = TrackLife(timeout_s=2.0)
    for i in range(200):  # a new person every frame, each seen once inside, then gone
        ids = np.array([i])
        z.update(ids, np.array([[0.4, 0.4]]), float(i))
        _, gone = life.update(ids.tolist(), float(i))
        z.end(gone)
    assert len(z._states) <= 3
